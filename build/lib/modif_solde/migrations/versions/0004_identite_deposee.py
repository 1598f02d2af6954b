"""identité de l'opérateur déposée avec chaque demande

Each request keeps the operator's identity it was filed with (name, ANS number, address,
e-mail): a later import of the same SIRET no longer rewrites the requests already filed.
The existing requests take the identity their operator row holds today.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-27 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Column of `demande` ← column of `operateur`, with its length.
COLONNES = {
    "operateur_numero_ans": ("numero_ans", 50),
    "operateur_denomination": ("denomination", 200),
    "operateur_adresse_ligne": ("adresse_ligne", 200),
    "operateur_code_postal": ("code_postal", 10),
    "operateur_commune": ("commune", 100),
    "operateur_courriel": ("courriel", 254),
}


def upgrade() -> None:
    # Added NOT NULL with a provisional default, then filled from the operator row: SQLite can
    # add such a column in place (no table rebuild, which its foreign keys would refuse).
    for colonne, (_, longueur) in COLONNES.items():
        op.add_column(
            "demande",
            sa.Column(
                colonne, sqlmodel.sql.sqltypes.AutoString(length=longueur), nullable=False, server_default=""
            ),
        )
    affectations = ", ".join(
        f"{colonne} = (SELECT operateur.{source} FROM operateur WHERE operateur.id = demande.operateur_id)"  # noqa: S608 (fixed names)
        for colonne, (source, _) in COLONNES.items()
    )
    op.execute(f"UPDATE demande SET {affectations}")  # noqa: S608 (fixed names)
    if op.get_bind().dialect.name != "sqlite":
        # The application always sets them; SQLite keeps the default (dropping it means a rebuild).
        for colonne in COLONNES:
            op.alter_column("demande", colonne, server_default=None)


def downgrade() -> None:
    for colonne in COLONNES:
        op.drop_column("demande", colonne)
