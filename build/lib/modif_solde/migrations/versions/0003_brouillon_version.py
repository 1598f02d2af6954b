"""brouillon_version (the draft's version, for its ETag) and idempotence_action (the keys of
the workflow's actions)

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import modif_solde.models.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A column with a constant default: SQLite adds it in place, no table copy needed.
    op.add_column(
        "modification", sa.Column("brouillon_version", sa.Integer(), server_default="0", nullable=False)
    )
    op.create_table(
        "idempotence_action",
        sa.Column("cle", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("modification_numero", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("par", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("empreinte", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("cree_le", modif_solde.models.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("cle"),
    )


def downgrade() -> None:
    op.drop_table("idempotence_action")
    # SQLite drops a column by copying the table: batch mode.
    with op.batch_alter_table("modification") as table:
        table.drop_column("brouillon_version")
