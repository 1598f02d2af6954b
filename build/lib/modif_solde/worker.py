"""The Temporal worker: the modification workflow and its activities, and the daily maintenance,
on the task queue. At start it checks what it needs (the schema in production, the search
attributes) and refuses in French; /healthz on its metrics port says whether it runs and reaches
Temporal; on SIGTERM it drains for WORKER_ARRET_GRACE."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from modif_solde.activities.entretien import ActivitesEntretien
from modif_solde.activities.modification import ActivitesModification
from modif_solde.config import Settings, verifier_reglages_conservation
from modif_solde.db import SessionFactory, create_engine, session_factory
from modif_solde.metriques import ServeurMetriques
from modif_solde.migrations import etat_schema
from modif_solde.preparation_temporal import attributs_manquants
from modif_solde.propagation import PropagationAppel
from modif_solde.services.envoi import Expediteur, ExpediteurSmtp
from modif_solde.services.stockage import ouvrir_stockage
from modif_solde.temporal import cible, connecter, runtime_avec_metriques
from modif_solde.workflows.entretien import EntretienWorkflow
from modif_solde.workflows.modification import ModificationWorkflow

journal = logging.getLogger(__name__)

# /healthz: Temporal's frontend is asked this often, and a worker it has not answered for longer
# than SANTE_DELAI is reported unhealthy (its polls cannot be getting through either).
SANTE_INTERVALLE = 10.0
SANTE_DELAI = 30.0


class DemarrageRefuse(Exception):
    """The worker cannot run as configured; the message says why, in French."""


class SanteWorker:
    """What the worker's GET /healthz answers: 200 while the worker runs (started, its poll loops
    alive, not draining) and Temporal's frontend answered its last health check (every 10 s,
    within 30 s); 503 with the reason otherwise: starting, draining after SIGTERM, stopped,
    Temporal unreachable."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.arret = False
        self.temporal_vu_le: float | None = None
        self.erreur_temporal = "pas encore interrogé"

    def __call__(self) -> tuple[int, dict[str, str]]:
        if self.arret:
            return 503, {"statut": "arret_en_cours"}
        if self.worker is not None and self.worker.is_shutdown:
            return 503, {"statut": "arrete"}
        if self.worker is None or not self.worker.is_running:
            return 503, {"statut": "demarrage"}
        if self.temporal_vu_le is None or time.monotonic() - self.temporal_vu_le > SANTE_DELAI:
            return 503, {"statut": "temporal_injoignable", "temporal": self.erreur_temporal}
        return 200, {"statut": "ok", "task_queue": self.worker.task_queue, "temporal": "ok"}

    async def surveiller(self, client: Client) -> None:
        while True:
            try:
                await client.service_client.check_health(timeout=timedelta(seconds=5))
                self.temporal_vu_le = time.monotonic()
            except Exception as err:
                self.erreur_temporal = f"injoignable ({type(err).__name__})"
            await asyncio.sleep(SANTE_INTERVALLE)


def activites(
    settings: Settings, sessions: SessionFactory, expediteur: Expediteur | None = None
) -> ActivitesModification:
    return ActivitesModification(
        sessions=sessions,
        stockage=ouvrir_stockage(settings),
        expediteur=expediteur or ExpediteurSmtp(settings.SMTP_URL),
        adresse_expediteur=settings.MAIL_FROM,
        adresse_gestionnaires=settings.GESTIONNAIRES_COURRIEL,
        portail_url=settings.PORTAIL_URL,
    )


def executeur_de_workflows() -> SandboxedWorkflowRunner:
    """The sandbox re-imports a workflow's modules for every run. The project's modules and
    pydantic import deterministically and hold no state a workflow mutates: passing them
    through saves about a quarter of the CPU a workflow costs (measured by replaying a
    recorded history 100 times: 22.8 → 17.2 ms per run)."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "modif_solde", "pydantic", "pydantic_core", "annotated_types"
        )
    )


def construire_worker(
    client: Client,
    acts: ActivitesModification,
    task_queue: str,
    arret_gracieux: timedelta = timedelta(seconds=30),
    entretien: ActivitesEntretien | None = None,
) -> Worker:
    """The one worker definition: the service, the tests, the recorded histories and the bench
    all run this, with its sandbox runner and its bounds. `entretien`: the daily maintenance's
    activities, and its workflow (the service's worker always has them)."""
    workflows: list[type] = [ModificationWorkflow]
    activites_: list[Any] = list(acts.toutes())
    if entretien is not None:
        workflows.append(EntretienWorkflow)
        activites_ += [entretien.verifier_coherence, entretien.purger_donnees]
    # The request id and caller of each action into the workflow's and activities' logs: from
    # the client when it was connected with the interceptor (modif_solde.temporal), else here.
    propagation = (
        []
        if any(isinstance(i, PropagationAppel) for i in client.config()["interceptors"])
        else [PropagationAppel()]
    )
    return Worker(
        client,
        task_queue=task_queue,
        workflows=workflows,
        activities=activites_,
        interceptors=propagation,
        workflow_runner=executeur_de_workflows(),
        # What bounds the worker's memory (about 0.17 MB per cached workflow, measured by
        # `make bench`); an evicted workflow is rebuilt from its history when it wakes up.
        max_cached_workflows=1000,
        # In-flight activities finish their transaction and their e-mail before the worker stops.
        graceful_shutdown_timeout=arret_gracieux,
    )


async def executer(settings: Settings, arret: asyncio.Event | None = None) -> None:
    """Run the worker until `arret` is set (or SIGINT/SIGTERM), then drain and stop. Raises
    DemarrageRefuse (or the connection's French errors) when it cannot start as configured."""
    verifier_reglages_conservation(settings)
    arret = arret or asyncio.Event()
    boucle = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            boucle.add_signal_handler(sig, arret.set)
        except (NotImplementedError, RuntimeError):
            pass
    sante = SanteWorker()
    # The worker's /metrics and /healthz (bound now: a port already taken stops the start here).
    serveur, runtime = serveur_de_metriques(settings, sante)
    engine = create_engine(settings.DATABASE_URL)
    acts: ActivitesModification | None = None
    surveillance: asyncio.Task[None] | None = None
    try:
        await verifier_schema(engine, settings)
        client = await connecter(settings, runtime=runtime)
        manquants = await attributs_manquants(client)
        if manquants:
            raise DemarrageRefuse(
                f"Attributs de recherche absents du namespace {client.namespace} : {', '.join(manquants)}. "
                "Lancez « modif-solde temporal preparer » (sur Temporal Cloud, il dit quoi créer)."
            )
        sessions = session_factory(engine)
        acts = activites(settings, sessions)
        entretien = ActivitesEntretien(sessions, acts.stockage, settings.DUREE_CONSERVATION)
        worker = construire_worker(client, acts, settings.TASK_QUEUE, settings.WORKER_ARRET_GRACE, entretien)
        if serveur is not None:
            serveur.demarrer()
        journal.info(
            "worker prêt",
            extra={
                "task_queue": settings.TASK_QUEUE,
                "temporal": cible(settings).decrire(),
                "metriques": f"{settings.METRIQUES_ADRESSE}:{serveur.port}" if serveur else None,
            },
        )
        async with worker:
            sante.worker = worker
            surveillance = asyncio.create_task(sante.surveiller(client))
            await arret.wait()
            # Draining: /healthz says so while the activities under way finish.
            sante.arret = True
            journal.info(
                "arrêt : plus de nouvelle tâche ; les activités en cours ont %s s pour finir",
                settings.WORKER_ARRET_GRACE.total_seconds(),
            )
    finally:
        if surveillance is not None:
            surveillance.cancel()
        if serveur is not None:
            serveur.arreter()
        if acts is not None:
            await acts.stockage.fermer()
        await engine.dispose()
    journal.info("worker arrêté")


async def verifier_schema(engine: AsyncEngine, settings: Settings) -> None:
    """In production the worker's activities must not write to a schema older than the code
    (`modif-solde migrer` has not run yet), nor start without reaching the database; development
    only warns (`make run` migrates first)."""
    try:
        schema = await etat_schema(engine)
        probleme = schema.message() if schema.en_retard else None
    except (OSError, SQLAlchemyError) as exc:
        probleme = f"injoignable ({exc})"
    if probleme is None:
        return
    if settings.ENVIRONNEMENT != "developpement":
        raise DemarrageRefuse(f"Base de données : {probleme}.")
    journal.warning("base de données : %s", probleme)


def serveur_de_metriques(
    settings: Settings, sante: SanteWorker | None = None
) -> tuple[ServeurMetriques | None, Runtime | None]:
    """With MODIF_SOLDE_METRIQUES_PORT: the worker's /metrics (and /healthz, without the token),
    and a Temporal runtime serving the SDK's metrics on a free loopback port, which /metrics reads
    and merges in (one scrape target)."""
    if settings.METRIQUES_PORT is None:
        return None, None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port_sdk = int(s.getsockname()[1])
    serveur = ServeurMetriques(
        settings.METRIQUES_ADRESSE,
        settings.METRIQUES_PORT,
        settings.METRIQUES_JETON,
        url_sdk=f"http://127.0.0.1:{port_sdk}/metrics",
        sante=sante,
    )
    return serveur, runtime_avec_metriques(f"127.0.0.1:{port_sdk}")
