"""gestionnaire: the service's list of gestionnaires (by e-mail address)

Revision ID: 0005
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import modif_solde.models.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gestionnaire",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("courriel", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("ajoute_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("gestionnaire", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_gestionnaire_courriel"), ["courriel"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("gestionnaire", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gestionnaire_courriel"))
    op.drop_table("gestionnaire")
