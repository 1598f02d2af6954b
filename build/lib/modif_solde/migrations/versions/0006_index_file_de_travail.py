"""index for the gestionnaires' work queue: open modifications by deadline, requests by status

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUVERTE = sa.text("statut = 'ouverte'")


def upgrade() -> None:
    op.create_index(
        "ix_modification_ouverte_expire_le",
        "modification",
        ["expire_le", "demande_id"],
        unique=False,
        sqlite_where=_OUVERTE,
        postgresql_where=_OUVERTE,
    )
    op.create_index("ix_demande_statut_numero", "demande", ["statut", "numero"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_demande_statut_numero", table_name="demande")
    op.drop_index("ix_modification_ouverte_expire_le", table_name="modification")
