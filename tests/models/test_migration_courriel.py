"""Migration 0002 on a database holding e-mails from before it: each row gets its delivery status."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from modif_solde.migrations import alembic_config


def _colonnes(url: str) -> set[str]:
    moteur = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(moteur).get_columns("courriel")}
    finally:
        moteur.dispose()


async def test_0002_renseigne_le_statut_des_courriels_existants(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/avant.db"
    config = alembic_config(f"sqlite+aiosqlite:///{tmp_path}/avant.db")
    await asyncio.to_thread(command.upgrade, config, "0001")
    assert "statut_envoi" not in _colonnes(url)
    moteur = sa.create_engine(url)
    envoye = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).isoformat()
    with moteur.begin() as conn:
        for cle, envoye_le in (("M1:invitation", envoye), ("M1:relance", None)):
            conn.execute(
                sa.text(
                    "INSERT INTO courriel (demande_id, type, destinataire, sujet, corps_texte, corps_html,"
                    " cle_idempotence, message_id, cree_le, envoye_le, tentatives)"
                    " VALUES (1, 'invitation', 'a@b.fr', 's', 't', 'h', :cle, '<m>', :cree, :envoye, 1)"
                ),
                {"cle": cle, "cree": envoye, "envoye": envoye_le},
            )
    await asyncio.to_thread(command.upgrade, config, "head")
    with moteur.connect() as conn:
        lignes = conn.execute(
            sa.text("SELECT cle_idempotence, statut_envoi, erreur_envoi FROM courriel ORDER BY id")
        ).all()
    moteur.dispose()
    assert [tuple(r) for r in lignes] == [
        ("M1:invitation", "envoye", None),
        ("M1:relance", "en_attente", None),
    ]
    assert {"statut_envoi", "erreur_envoi", "derniere_tentative_le"} <= _colonnes(url)
