"""Shared fixtures: both databases (SQLite and PostgreSQL), storage, the seed's request."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
from modif_solde.services.stockage import Stockage, StockageDossier
from modif_solde.services.stockage_s3 import TAILLE_PART_MIN, StockageS3
from tests.processus import ServeurTemporalDev, port_libre, temporal_dev

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


@asynccontextmanager
async def base_pg_jetable(nom: str) -> AsyncIterator[str]:
    """A database of the test's own on the shared server (its asyncpg URL), dropped afterwards."""
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{nom}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{nom}"')
    finally:
        await conn.close()
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{nom}"
    finally:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{nom}" WITH (FORCE)')
        finally:
            await conn.close()


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
    return StockageDossier(tmp_path / "pieces")


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
    # Now, not a fixed date: past `expire_le` the services refuse the operator's actions.
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def echeances(t0: datetime) -> Iterator[tuple[datetime, datetime, datetime]]:
    yield t0, t0 + timedelta(days=10), t0 + timedelta(days=20)


@dataclass(frozen=True)
class ServeurS3:
    """A real S3 server (moto's server mode) on loopback, with one bucket; each test takes its
    own prefix in it. Any key pair is accepted."""

    endpoint: str
    bucket: str
    cle_acces: str = "cle-de-test"
    secret: str = "secret-de-test"
    region: str = "us-east-1"

    def reglages(self, prefixe: str, taille_part: int = TAILLE_PART_MIN) -> dict[str, Any]:
        """The settings (Settings' field names) of a service storing under `prefixe`."""
        return {
            "STORAGE_URL": f"s3://{self.bucket}/{prefixe}",
            "S3_ENDPOINT_URL": self.endpoint,
            "S3_REGION": self.region,
            "S3_ACCESS_KEY_ID": self.cle_acces,
            "S3_SECRET_ACCESS_KEY": self.secret,
            "S3_TAILLE_PART": taille_part,
        }

    def environnement(self, prefixe: str, taille_part: int = TAILLE_PART_MIN) -> dict[str, str]:
        """The same as MODIF_SOLDE_* variables, for a `modif-solde api`/`worker` process."""
        return {
            f"MODIF_SOLDE_{nom}": str(valeur) for nom, valeur in self.reglages(prefixe, taille_part).items()
        }

    def stockage(self, prefixe: str | None = None, taille_part: int = TAILLE_PART_MIN) -> StockageS3:
        return StockageS3(
            self.bucket,
            prefixe if prefixe is not None else uuid.uuid4().hex,
            endpoint_url=self.endpoint,
            region=self.region,
            cle_acces=self.cle_acces,
            secret=self.secret,
            taille_part=taille_part,
        )


@pytest.fixture(scope="session")
def serveur_s3(tmp_session_dir: Path) -> Iterator[ServeurS3]:
    """`moto_server` in a subprocess on 127.0.0.1 and a free port, and its bucket."""
    import botocore.session

    port = port_libre()
    journal = (tmp_session_dir / "moto.log").open("wb")
    processus = subprocess.Popen(  # noqa: S603
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=journal,
        stderr=subprocess.STDOUT,
    )
    try:
        # Bounded wait for the port (a loaded machine may take a few seconds to import moto).
        for _ in range(600):
            if processus.poll() is not None:
                raise RuntimeError(f"moto_server s'est arrêté (voir {journal.name})")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        serveur = ServeurS3(endpoint=f"http://127.0.0.1:{port}", bucket="modif-solde-test")
        client = botocore.session.get_session().create_client(
            "s3",
            endpoint_url=serveur.endpoint,
            region_name=serveur.region,
            aws_access_key_id=serveur.cle_acces,
            aws_secret_access_key=serveur.secret,
        )
        client.create_bucket(Bucket=serveur.bucket)
        client.close()
        yield serveur
    finally:
        processus.terminate()
        processus.wait(timeout=30)
        journal.close()


@pytest.fixture
async def stockage_s3(serveur_s3: ServeurS3) -> AsyncIterator[StockageS3]:
    """An S3 store under a prefix of its own, with the smallest part size S3 allows (multipart
    uploads start past 5 MiB)."""
    stockage = serveur_s3.stockage()
    yield stockage
    await stockage.fermer()


@pytest.fixture
async def temporal(tmp_path: Path) -> AsyncIterator[ServeurTemporalDev]:
    """A Temporal dev server of the test's own (on a file it can be restarted on), killed after."""
    async with temporal_dev(tmp_path) as serveur:
        yield serveur
