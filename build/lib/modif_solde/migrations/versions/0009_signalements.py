"""the operator's reports of an error or omission on its request (signalement)

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import modif_solde.models.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signalement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("demande_id", sa.Integer(), nullable=False),
        sa.Column("statut", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("champs", sa.JSON(), nullable=False),
        sa.Column("par", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("cree_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("traite_par", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("traite_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reponse", sa.Text(), nullable=True),
        sa.Column("modification_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["demande_id"], ["demande.id"]),
        sa.ForeignKeyConstraint(["modification_id"], ["modification.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_signalement_demande_id"), "signalement", ["demande_id"], unique=False)
    op.create_index(op.f("ix_signalement_statut"), "signalement", ["statut"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_signalement_statut"), table_name="signalement")
    op.drop_index(op.f("ix_signalement_demande_id"), table_name="signalement")
    op.drop_table("signalement")
