"""courriel : statut d'envoi, erreur du serveur, dernière tentative

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import modif_solde.models.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("courriel", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "statut_envoi",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="en_attente",
            )
        )
        batch_op.add_column(sa.Column("erreur_envoi", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "derniere_tentative_le", modif_solde.models.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    # The rows already there: sent if the server accepted them, otherwise still to send.
    op.execute("UPDATE courriel SET statut_envoi = 'envoye' WHERE envoye_le IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("courriel", schema=None) as batch_op:
        batch_op.drop_column("derniere_tentative_le")
        batch_op.drop_column("erreur_envoi")
        batch_op.drop_column("statut_envoi")
