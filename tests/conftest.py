"""Shared fixtures: both databases (SQLite and PostgreSQL), storage, the seed's request."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from modif_solde.db import SessionFactory, create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.models.tables import Demande
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.stockage import Stockage

SHARED = Path(__file__).resolve().parents[2] / "shared"
EXEMPLE = SHARED / "examples" / "demande-FINMSS009266.json"
PDF_EXEMPLE = SHARED / "examples" / "piece-exemple.pdf"
PG_ADMIN = os.environ.get("MODIF_SOLDE_TEST_PG_ADMIN", "postgresql://127.0.0.1:5432/postgres")
# One database per test run: two runs side by side never drop each other's tables.
PG_BASE = f"modif_solde_test_{os.getpid()}"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def seed() -> dict[str, Any]:
    return json.loads(EXEMPLE.read_text())


@pytest.fixture
def donnees(seed: dict[str, Any]) -> dict[str, Any]:
    """A fresh copy of the seed's import document, to alter in a test."""
    return copy.deepcopy(seed)


async def _recreer_base_pg() -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", PG_BASE
        )
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_BASE}"')
        await conn.execute(f'CREATE DATABASE "{PG_BASE}"')
    finally:
        await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{PG_BASE}"


async def _supprimer_base_pg() -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_BASE}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def tmp_session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("modif-solde")


@pytest.fixture(scope="session", params=BACKENDS)
async def engine(request: pytest.FixtureRequest, tmp_session_dir: Path) -> AsyncIterator[AsyncEngine]:
    """Each backend migrated once per run with the real Alembic migrations."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_session_dir}/test.db"
    else:
        url = (await _recreer_base_pg()).replace("postgresql://", "postgresql+asyncpg://")
    await _migrer(url)
    moteur = create_engine(url)
    yield moteur
    await moteur.dispose()
    if request.param == "postgresql":
        await _supprimer_base_pg()


async def _migrer(url: str) -> None:
    import asyncio

    # Alembic's env.py runs its own event loop: give it a thread.
    await asyncio.to_thread(migrer, url)


@pytest.fixture
async def factory(engine: AsyncEngine) -> AsyncIterator[SessionFactory]:
    """A session factory on a database emptied before the test."""
    async with engine.begin() as conn:
        for table in reversed(SQLModel.metadata.sorted_tables):
            await conn.execute(text(f'DELETE FROM "{table.name}"'))  # noqa: S608 (table names from metadata)
    yield session_factory(engine)


@pytest.fixture
def stockage(tmp_path: Path) -> Stockage:
    return Stockage(tmp_path / "pieces")


@pytest.fixture
async def demande(factory: SessionFactory, stockage: Stockage, seed: dict[str, Any]) -> Demande:
    """The seed's request, imported."""
    async with unit_of_work(factory) as session:
        return await importer_demande(session, stockage, lire_import(seed))


@pytest.fixture
def pdf() -> bytes:
    return PDF_EXEMPLE.read_bytes()


@pytest.fixture
def t0() -> datetime:
    return datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def echeances(t0: datetime) -> Iterator[tuple[datetime, datetime, datetime]]:
    yield t0, t0 + timedelta(days=10), t0 + timedelta(days=20)
