"""The fault suite's stack: a Temporal dev server on a database file, the worker as a real
`modif-solde worker` process, a real SMTP server that can hold a message, the service's own
database file; each process killed at teardown, even when the test fails."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from temporalio.client import Client

from modif_solde.db import SessionFactory, create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.models.tables import Courriel, Modification
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.stockage import StockageDossier
from modif_solde.services.verification import verifier
from modif_solde.temporal import demarrer_modification
from modif_solde.workflows.contrat import EtatModification
from tests.constructeurs import COMMENTAIRE_SITE, entree_modification
from tests.processus import Processus, ServeurTemporalDev, commande_modif_solde, port_libre

# The SMTP fault tests (test_smtp.py) run on the workflow tests' time-skipping server.
from tests.workflows.conftest import env  # noqa: F401

SECRET = "secret-de-test-0123456789-0123456789-abcdef"
SIRET = "50961588600025"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fautes/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.fautes)


class BoiteSmtp:
    """Keeps each accepted message by its idempotency key; `retenir` holds every new exchange
    at RCPT (before any message is accepted) until it is cleared."""

    def __init__(self) -> None:
        self.recus: list[str] = []  # "FINMSS…M1:invitation", in order of acceptance
        self.retenus = 0
        # A thread's event: the SMTP server runs its own event loop in its own thread.
        self._libre = threading.Event()
        self._libre.set()

    @property
    def retenir(self) -> bool:
        return not self._libre.is_set()

    @retenir.setter
    def retenir(self, valeur: bool) -> None:
        if valeur:
            self._libre.clear()
        else:
            self._libre.set()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.retenir:
            self.retenus += 1
            await asyncio.to_thread(self._libre.wait)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.recus.append(str(message_from_bytes(envelope.content)["X-Modif-Solde-Cle"]))
        return "250 Message accepté"

    def types(self, modification: str) -> list[str]:
        return [cle.split(":")[1] for cle in self.recus if cle.split(":")[0] == modification]


@pytest.fixture
def smtp() -> Iterator[tuple[BoiteSmtp, int]]:
    boite = BoiteSmtp()
    port = port_libre()
    controller = Controller(boite, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield boite, port
    finally:
        boite.retenir = False
        controller.stop()


@dataclass
class Pile:
    """What a fault test drives: its processes, its database, its SMTP server."""

    dossier: Path
    temporal: ServeurTemporalDev
    boite: BoiteSmtp
    port_smtp: int
    url_base: str
    client: Client
    engine: AsyncEngine
    task_queue: str = field(default_factory=lambda: f"fautes-{uuid.uuid4()}")
    processus: list[Processus] = field(default_factory=list)

    @property
    def factory(self) -> SessionFactory:
        return session_factory(self.engine)

    @property
    def stockage(self) -> StockageDossier:
        return StockageDossier(self.dossier / "pieces")

    def env(self, **autres: str) -> dict[str, str]:
        return {
            "MODIF_SOLDE_ENVIRONNEMENT": "developpement",
            "MODIF_SOLDE_DATABASE_URL": self.url_base,
            "MODIF_SOLDE_TEMPORAL_ADDRESS": self.temporal.adresse,
            "MODIF_SOLDE_TASK_QUEUE": self.task_queue,
            "MODIF_SOLDE_SMTP_URL": f"smtp://127.0.0.1:{self.port_smtp}",
            "MODIF_SOLDE_STORAGE_DIR": str(self.dossier / "pieces"),
            "MODIF_SOLDE_JWT_SECRET": SECRET,
            "MODIF_SOLDE_PORTAIL_URL": "https://portail.example",
            "MODIF_SOLDE_LOG_FORMAT": "texte",
            **autres,
        }

    def worker(self) -> Processus:
        """A real `modif-solde worker` process, started."""
        worker = Processus("worker", commande_modif_solde("worker"), self.dossier / "worker.log", self.env())
        worker.demarrer()
        self.processus.append(worker)
        return worker

    async def reconnecter(self) -> None:
        self.client = await self.temporal.client()

    async def importer(self, donnees: dict[str, Any], numero: str) -> None:
        async with unit_of_work(self.factory) as session:
            await importer_demande(session, self.stockage, lire_import({**donnees, "numero": numero}))

    async def ouvrir(self, numero: str, relance: timedelta, expiration: timedelta) -> EtatModification:
        entree = entree_modification(
            numero,
            commentaire=COMMENTAIRE_SITE,
            champs=["site_documentation_url", "pieces"],
            relance_apres=relance,
            expiration_apres=expiration,
        )
        return await demarrer_modification(self.client, self.task_queue, entree, SIRET)

    async def verifier_tout(self, attendus: dict[str, list[str]]) -> None:
        """After the fault: every cycle over at or after its deadline, each e-mail sent exactly
        once and marked sent, and the database and Temporal agree."""
        for numero in attendus:
            await asyncio.wait_for(self.client.get_workflow_handle(numero).result(), timeout=120)
        for numero, types in attendus.items():
            assert sorted(self.boite.types(numero)) == sorted(types), (numero, self.boite.recus)
        assert Counter(self.boite.recus).most_common(1)[0][1] == 1, self.boite.recus
        async with self.factory() as session:
            courriels = (await session.exec(select(Courriel))).all()
            modifications = (await session.exec(select(Modification))).all()
        assert sorted(c.cle_idempotence for c in courriels) == sorted(self.boite.recus)
        assert all(c.envoye_le is not None for c in courriels)
        for modification in modifications:
            assert modification.cloturee_le is not None
            if modification.statut == "expiree":
                assert modification.cloturee_le >= modification.expire_le
        assert await verifier(self.factory, self.client) == []


@pytest.fixture
async def pile(
    tmp_path: Path, temporal: ServeurTemporalDev, smtp: tuple[BoiteSmtp, int]
) -> AsyncIterator[Pile]:
    """The stack on a SQLite database file; a test may swap in its own PostgreSQL first."""
    url = f"sqlite+aiosqlite:///{tmp_path}/modif-solde.db"
    await asyncio.to_thread(migrer, url)
    engine = create_engine(url)
    pile = Pile(tmp_path, temporal, smtp[0], smtp[1], url, await temporal.client(), engine)
    try:
        yield pile
    finally:
        for processus in pile.processus:
            processus.tuer()
        await pile.engine.dispose()


async def attendre(condition: Callable[[], Awaitable[bool] | bool], delai: float, quoi: str) -> None:
    """Poll until `condition` holds; fails after `delai` seconds."""
    limite = time.monotonic() + delai
    while True:
        resultat = condition()
        if isinstance(resultat, Awaitable):
            resultat = await resultat
        if resultat:
            return
        if time.monotonic() > limite:
            raise AssertionError(f"jamais arrivé : {quoi}")
        await asyncio.sleep(0.05)


async def jusqu_a(moment: datetime) -> None:
    """Wait for a deadline of the cycle itself (the fault must span it)."""
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
