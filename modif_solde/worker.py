"""The Temporal worker: the modification workflow and its activities on the task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from datetime import timedelta

from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from modif_solde.activities.modification import ActivitesModification
from modif_solde.config import Settings
from modif_solde.db import SessionFactory, create_engine, session_factory
from modif_solde.metriques import ServeurMetriques
from modif_solde.propagation import PropagationAppel
from modif_solde.services.envoi import Expediteur, ExpediteurSmtp
from modif_solde.services.stockage import ouvrir_stockage
from modif_solde.temporal import connecter, runtime_avec_metriques
from modif_solde.workflows.modification import ModificationWorkflow

journal = logging.getLogger(__name__)


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
) -> Worker:
    """The one worker definition: the service, the tests, the recorded histories and the bench
    all run this, with its sandbox runner and its bounds."""
    # The request id and caller of each action into the workflow's and activities' logs: from
    # the client when it was connected with the interceptor (modif_solde.temporal), else here.
    propagation = [] if any(isinstance(i, PropagationAppel) for i in client.config()["interceptors"]) else [PropagationAppel()]
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ModificationWorkflow],
        activities=acts.toutes(),
        interceptors=propagation,
        workflow_runner=executeur_de_workflows(),
        # What bounds the worker's memory (about 0.17 MB per cached workflow, measured by
        # `make bench`); an evicted workflow is rebuilt from its history when it wakes up.
        max_cached_workflows=1000,
        # In-flight activities finish their transaction and their e-mail before the worker stops.
        graceful_shutdown_timeout=arret_gracieux,
    )


async def executer(settings: Settings, arret: asyncio.Event | None = None) -> None:
    """Run the worker until `arret` is set (or SIGINT/SIGTERM), then drain and stop."""
    arret = arret or asyncio.Event()
    boucle = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            boucle.add_signal_handler(sig, arret.set)
        except (NotImplementedError, RuntimeError):
            pass
    # The worker's /metrics (bound now: a port already taken stops the start here).
    serveur, runtime = serveur_de_metriques(settings)
    engine = create_engine(settings.DATABASE_URL)
    acts: ActivitesModification | None = None
    try:
        client = await connecter(settings, runtime=runtime)
        acts = activites(settings, session_factory(engine))
        worker = construire_worker(client, acts, settings.TASK_QUEUE)
        if serveur is not None:
            serveur.demarrer()
        journal.info(
            "worker prêt",
            extra={
                "task_queue": settings.TASK_QUEUE,
                "temporal": settings.TEMPORAL_ADDRESS,
                "metriques": f"{settings.METRIQUES_ADRESSE}:{serveur.port}" if serveur else None,
            },
        )
        async with worker:
            await arret.wait()
    finally:
        if serveur is not None:
            serveur.arreter()
        if acts is not None:
            await acts.stockage.fermer()
        await engine.dispose()
    journal.info("worker arrêté")


def serveur_de_metriques(settings: Settings) -> tuple[ServeurMetriques | None, Runtime | None]:
    """With MODIF_SOLDE_METRIQUES_PORT: the worker's /metrics, and a Temporal runtime serving the
    SDK's metrics on a free loopback port, which /metrics reads and merges in (one scrape target)."""
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
    )
    return serveur, runtime_avec_metriques(f"127.0.0.1:{port_sdk}")
