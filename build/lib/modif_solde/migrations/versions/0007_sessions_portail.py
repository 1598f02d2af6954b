"""session_portail: the portal's sessions on the server (the cookie holds an opaque identifier)

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import modif_solde.models.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "session_portail",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("sub", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("courriel", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("siret", sqlmodel.sql.sqltypes.AutoString(length=14), nullable=True),
        sa.Column("prenom", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("nom_usage", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("id_token", sa.Text(), nullable=True),
        sa.Column("csrf", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("cree_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("vu_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expire_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("session_portail", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_portail_courriel"), ["courriel"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_portail_expire_le"), ["expire_le"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("session_portail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_portail_expire_le"))
        batch_op.drop_index(batch_op.f("ix_session_portail_courriel"))
    op.drop_table("session_portail")
