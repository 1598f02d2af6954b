"""The migrations: they build the tables the models describe, and 0004 fills each request's
identity from its operator row, on both databases."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text
from sqlmodel import SQLModel

from modif_solde.db import create_engine
from modif_solde.migrations import alembic_config, migrer
from tests.conftest import base_pg_jetable

PG_MIGRATION = f"modif_solde_test_{os.getpid()}_migration"
OPERATEUR = (
    "INSERT INTO operateur (id, siret, numero_ans, denomination, adresse_ligne, code_postal, commune, "
    "courriel, cree_le) VALUES (1, '50961588600025', 'pbrMSS0023', 'SCI VOITURE', '0 ESP DE ROUEN', "
    "'80021', 'AMIENS', 'operateur@sci-voiture.example', '2026-01-01 00:00:00+00:00')"
)
DEMANDE = (
    "INSERT INTO demande (id, numero, type, statut, statut_modifie_le, date_depot, operateur_id, dsr, "
    "contact_support_telephone, contact_support_courriel, site_documentation_url, bal_applicatives, "
    "bal_organisationnelles, bal_nominatives, avance_centimes, engagement_solde_centimes, solde_centimes, "
    "titulaire, iban, bic, version, importee_le) VALUES (1, 'FINMSS009266', 'solde', 'en_cours', "
    "'2026-01-01 00:00:00+00:00', '2023-06-05', 1, 'DSR', '06 00 00 00 00', 'a@b.fr', 'https://x.fr', "
    "1, 1, 1, 1, 2, 1, 'T', 'FR7630006000011234567890189', 'AGRIFRPP', 1, '2026-01-01 00:00:00+00:00')"
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def url_vierge(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/migration.db"
        return
    async with base_pg_jetable(PG_MIGRATION) as url:
        yield url


async def test_0004_reprend_l_identite_de_l_operateur_sur_chaque_demande(url_vierge: str) -> None:
    # Alembic's env.py runs its own event loop: give it a thread.
    await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0001")
    engine = create_engine(url_vierge)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(OPERATEUR))
            await conn.execute(text(DEMANDE))
        await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0004")
        async with engine.connect() as conn:
            ligne = (
                await conn.execute(
                    text(
                        "SELECT operateur_numero_ans, operateur_denomination, operateur_adresse_ligne, "
                        "operateur_code_postal, operateur_commune, operateur_courriel FROM demande"
                    )
                )
            ).one()
        assert tuple(ligne) == (
            "pbrMSS0023",
            "SCI VOITURE",
            "0 ESP DE ROUEN",
            "80021",
            "AMIENS",
            "operateur@sci-voiture.example",
        )
        await asyncio.to_thread(command.downgrade, alembic_config(url_vierge), "0001")
        await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0004")
    finally:
        await engine.dispose()


async def test_les_migrations_construisent_les_tables_des_modeles(url_vierge: str) -> None:
    await asyncio.to_thread(migrer, url_vierge)
    engine = create_engine(url_vierge)
    try:
        async with engine.connect() as conn:
            ecarts = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), SQLModel.metadata
                )
            )
    finally:
        await engine.dispose()
    assert ecarts == []


async def test_0007_cree_puis_retire_la_table_des_sessions(url_vierge: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0006")
    engine = create_engine(url_vierge)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0007")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO session_portail (id, sub, csrf, cree_le, vu_le, expire_le) VALUES "
                    "('a', 's', 'c', '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00', "
                    "'2026-01-01 00:30:00+00:00')"
                )
            )
            index = await conn.run_sync(
                lambda c: {i["name"] for i in sa_inspect(c).get_indexes("session_portail")}
            )
        assert index == {"ix_session_portail_courriel", "ix_session_portail_expire_le"}
        await asyncio.to_thread(command.downgrade, alembic_config(url_vierge), "0006")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa_inspect(c).get_table_names()))
        assert "session_portail" not in tables and "gestionnaire" in tables
        await asyncio.to_thread(migrer, url_vierge)
    finally:
        await engine.dispose()


async def test_0009_cree_puis_retire_la_table_des_signalements(url_vierge: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0008")
    engine = create_engine(url_vierge)
    try:
        await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0009")
        async with engine.begin() as conn:
            colonnes = await conn.run_sync(
                lambda c: {k["name"] for k in sa_inspect(c).get_columns("signalement")}
            )
            index = await conn.run_sync(
                lambda c: {i["name"] for i in sa_inspect(c).get_indexes("signalement")}
            )
        assert index == {"ix_signalement_demande_id", "ix_signalement_statut"}
        assert {"description", "champs", "statut", "reponse", "modification_id"} <= colonnes
        await asyncio.to_thread(command.downgrade, alembic_config(url_vierge), "0008")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa_inspect(c).get_table_names()))
        assert "signalement" not in tables and "purge" in tables
        await asyncio.to_thread(migrer, url_vierge)
    finally:
        await engine.dispose()


async def test_0010_cree_puis_retire_les_index_du_pilotage(url_vierge: str) -> None:
    await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0008")
    engine = create_engine(url_vierge)

    async def index() -> set[str]:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: {
                    i["name"] for t in ("modification", "courriel") for i in sa_inspect(c).get_indexes(t)
                }
            )

    pilotage = {"ix_modification_ouverte_le", "ix_modification_cloturee_le", "ix_courriel_echec_cree_le"}
    try:
        assert not pilotage & await index()
        await asyncio.to_thread(command.upgrade, alembic_config(url_vierge), "0010")
        assert pilotage <= await index()
        await asyncio.to_thread(command.downgrade, alembic_config(url_vierge), "0008")
        assert not pilotage & await index()
    finally:
        await engine.dispose()
