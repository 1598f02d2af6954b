"""retention (RGPD): when a request's personal data were erased, and the trace of each purge

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import modif_solde.models.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_A_PURGER = sa.text("purgee_le IS NULL AND statut = 'en_cours'")


def upgrade() -> None:
    with op.batch_alter_table("demande") as batch:
        batch.add_column(
            sa.Column("purgee_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=True)
        )
    # The daily purge's candidates: requests not yet purged, by their last closing.
    op.create_index(
        "ix_demande_a_purger",
        "demande",
        ["statut_modifie_le"],
        unique=False,
        sqlite_where=_A_PURGER,
        postgresql_where=_A_PURGER,
    )
    op.create_table(
        "purge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("demande_numero", sa.String(length=20), nullable=False),
        sa.Column("derniere_cloture_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("purgee_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("duree_conservation", sa.String(length=40), nullable=False),
        sa.Column("modifications", sa.Integer(), nullable=False),
        sa.Column("courriels", sa.Integer(), nullable=False),
        sa.Column("historiques", sa.Integer(), nullable=False),
        sa.Column("pieces", sa.Integer(), nullable=False),
        sa.Column("octets", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_purge_demande_numero"), "purge", ["demande_numero"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_purge_demande_numero"), table_name="purge")
    op.drop_table("purge")
    op.drop_index("ix_demande_a_purger", table_name="demande")
    with op.batch_alter_table("demande") as batch:
        batch.drop_column("purgee_le")
