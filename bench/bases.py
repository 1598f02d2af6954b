"""The two backends: a SQLite file or a dedicated PostgreSQL database, migrated and filled."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from modif_solde.db import create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.stockage import StockageDossier

journal = logging.getLogger("bench")

EXEMPLE = Path(__file__).resolve().parents[2] / "shared" / "examples" / "demande-FINMSS009266.json"
EXEMPLE_EMBARQUE = Path(__file__).resolve().parents[1] / "modif_solde" / "demo" / "demande-FINMSS009266.json"
PG_ADMIN = "postgresql://127.0.0.1:5432/postgres"
PG_BASE = "modif_solde_bench"
SIRET = "50961588600025"
# One prefix digit per backend: both share one Temporal server, where the workflow id is
# the modification number, so their numbers must not collide.
PREFIXES = {"sqlite": 1, "postgresql": 2, "sablier": 9}


def numeros(base: str, debut: int, fin: int) -> list[str]:
    """FINMSS<prefix><5 digits>, debut..fin inclusive: `^FINMSS\\d{6}$` as the import requires."""
    prefixe = PREFIXES[base]
    return [f"FINMSS{prefixe}{i:05d}" for i in range(debut, fin + 1)]


def seed() -> dict[str, Any]:
    chemin = EXEMPLE if EXEMPLE.exists() else EXEMPLE_EMBARQUE
    return dict(json.loads(chemin.read_text()))


def variante(modele: dict[str, Any], numero: str, pieces: int) -> dict[str, Any]:
    donnees = copy.deepcopy(modele)
    donnees["numero"] = numero
    # The base64 pieces would only cost disk writes: keep `pieces` of them (the page lists them).
    donnees["pieces"] = donnees["pieces"][:pieces]
    return donnees


async def _admin(admin: str) -> asyncpg.Connection:
    return await asyncpg.connect(admin, timeout=10)


async def verifier_pg(admin: str = PG_ADMIN) -> None:
    """Fail in the first second, not after the SQLite half of the run."""
    try:
        conn = await _admin(admin)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        raise RuntimeError(
            f"PostgreSQL injoignable sur {admin} ({err}) : --pg-admin URL, ou --bases sqlite pour s'en passer"
        ) from err
    await conn.close()


async def recreer_pg(admin: str = PG_ADMIN) -> str:
    conn = await _admin(admin)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", PG_BASE
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_BASE}"')
        await conn.execute(f'CREATE DATABASE "{PG_BASE}"')
    finally:
        await conn.close()
    return admin.rsplit("/", 1)[0] + f"/{PG_BASE}"


async def supprimer_pg(admin: str = PG_ADMIN) -> None:
    conn = await _admin(admin)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", PG_BASE
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_BASE}"')
    finally:
        await conn.close()


async def preparer(base: str, dossier: Path, admin: str) -> str:
    """A fresh, migrated database; answers its URL (as MODIF_SOLDE_DATABASE_URL takes it)."""
    if base == "postgresql":
        url = await recreer_pg(admin)
    else:
        url = f"sqlite:///{dossier / f'{base}.db'}"
    # Alembic's env.py runs its own event loop: give it a thread.
    await asyncio.to_thread(migrer, url_async(url))
    return url


def url_async(url: str) -> str:
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return "sqlite+aiosqlite://" + url.split("://", 1)[1]


async def importer(url: str, stockage: Path, liste: Sequence[str], pieces: int, lot: int = 100) -> float:
    """Import through the service (`lire_import` + `importer_demande`), `lot` per transaction;
    answers the imports per second."""
    engine = create_engine(url_async(url))
    sessions = session_factory(engine)
    depot = StockageDossier(stockage)
    modele = seed()
    debut = time.monotonic()
    prochain_journal = 0.0
    try:
        for i in range(0, len(liste), lot):
            async with unit_of_work(sessions) as session:
                for numero in liste[i : i + lot]:
                    await importer_demande(session, depot, lire_import(variante(modele, numero, pieces)))
            fait = min(i + lot, len(liste))
            if time.monotonic() >= prochain_journal or fait == len(liste):
                journal.info("  import : %d/%d demandes", fait, len(liste))
                prochain_journal = time.monotonic() + 10
    finally:
        await engine.dispose()
    return len(liste) / (time.monotonic() - debut)
