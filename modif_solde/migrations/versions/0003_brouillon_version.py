"""brouillon_version: the draft's version, for its ETag

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-27 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A column with a constant default: SQLite adds it in place, no table copy needed.
    op.add_column(
        "modification", sa.Column("brouillon_version", sa.Integer(), server_default="0", nullable=False)
    )


def downgrade() -> None:
    # SQLite drops a column by copying the table: batch mode.
    with op.batch_alter_table("modification") as table:
        table.drop_column("brouillon_version")
