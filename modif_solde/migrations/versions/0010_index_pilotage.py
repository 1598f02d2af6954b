"""indexes for the steering dashboard: modifications by opening and by closing, failed e-mails

The dashboard's figures read what the service already records (`ouverte_le`, `cloturee_le`,
`relance_envoyee_le`, the e-mails' `statut_envoi`): nothing to fill from the past, only the
indexes its aggregate queries read a period through.

Revision ID: 0010
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ECHEC = sa.text("statut_envoi = 'echec'")


def upgrade() -> None:
    op.create_index("ix_modification_ouverte_le", "modification", ["ouverte_le"], unique=False)
    op.create_index("ix_modification_cloturee_le", "modification", ["cloturee_le"], unique=False)
    op.create_index(
        "ix_courriel_echec_cree_le",
        "courriel",
        ["cree_le", "type"],
        unique=False,
        sqlite_where=_ECHEC,
        postgresql_where=_ECHEC,
    )


def downgrade() -> None:
    op.drop_index("ix_courriel_echec_cree_le", table_name="courriel")
    op.drop_index("ix_modification_cloturee_le", table_name="modification")
    op.drop_index("ix_modification_ouverte_le", table_name="modification")
