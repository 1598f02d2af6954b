"""The Temporal worker: the modification workflow and its activities on the task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from modif_solde.activities.modification import ActivitesModification
from modif_solde.config import Settings
from modif_solde.db import SessionFactory, create_engine, session_factory
from modif_solde.services.envoi import Expediteur, ExpediteurSmtp
from modif_solde.services.stockage import Stockage
from modif_solde.temporal import connecter
from modif_solde.workflows.modification import ModificationWorkflow

journal = logging.getLogger(__name__)


def activites(
    settings: Settings, sessions: SessionFactory, expediteur: Expediteur | None = None
) -> ActivitesModification:
    return ActivitesModification(
        sessions=sessions,
        stockage=Stockage(settings.STORAGE_DIR),
        expediteur=expediteur or ExpediteurSmtp(settings.SMTP_URL),
        adresse_expediteur=settings.MAIL_FROM,
        adresse_gestionnaires=settings.GESTIONNAIRES_COURRIEL,
        portail_url=settings.PORTAIL_URL,
    )


def construire_worker(
    client: Client, settings: Settings, acts: ActivitesModification, task_queue: str | None = None
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue or settings.TASK_QUEUE,
        workflows=[ModificationWorkflow],
        activities=acts.toutes(),
        # In-flight activities finish their transaction and their e-mail before the worker stops.
        graceful_shutdown_timeout=timedelta(seconds=30),
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
    engine = create_engine(settings.DATABASE_URL)
    client = await connecter(settings)
    worker = construire_worker(client, settings, activites(settings, session_factory(engine)))
    journal.info(
        "worker prêt", extra={"task_queue": settings.TASK_QUEUE, "temporal": settings.TEMPORAL_ADDRESS}
    )
    async with worker:
        await arret.wait()
    await engine.dispose()
    journal.info("worker arrêté")
