"""The SMTP server fails in the middle of a cycle (hangs, refuses a recipient for good, answers
4xx for a while): the reminder and the expiry still happen at their time, each e-mail goes out
exactly once or is marked failed with the server's answer, and the request is back `en_cours`.

Each test runs a whole cycle on the time-skipping test server with the real activities, the
real databases and a real SMTP server on loopback that misbehaves."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import col, select
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory
from modif_solde.models.enums import StatutDemande, StatutEnvoi, StatutModification
from modif_solde.models.tables import Courriel, Demande, Modification
from modif_solde.services import modifications as svc
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.stockage import Stockage
from modif_solde.temporal import demarrer_modification
from modif_solde.worker import construire_worker
from modif_solde.workflows.contrat import ModificationEntree, ModificationResultat
from modif_solde.workflows.modification import ModificationWorkflow
from tests.constructeurs import entree_modification
from tests.fautes.serveurs_smtp import BoiteEncombree, BoiteQuiRefuse, serveur_muet
from tests.workflows.conftest import GESTIONNAIRES, BoiteAuxLettres, port_libre

NUMERO = "FINMSS009266M1"
OPERATEUR = "operateur@sci-voiture.example"
RELANCE = timedelta(days=10)
EXPIRATION = timedelta(days=20)
# Short in the tests (each retry against a hanging server costs real time); three days in service.
ABANDON = timedelta(minutes=10)

Handle = WorkflowHandle[Any, ModificationResultat]


def entree() -> ModificationEntree:
    return entree_modification(
        modification_numero=NUMERO,
        relance_apres=RELANCE,
        expiration_apres=EXPIRATION,
        abandon_courriel_apres=ABANDON,
    )


@pytest.fixture
def activites_vers(factory: SessionFactory, stockage: Stockage) -> Callable[..., ActivitesModification]:
    def construire(url: str, **options: float) -> ActivitesModification:
        return ActivitesModification(
            sessions=factory,
            stockage=stockage,
            expediteur=ExpediteurSmtp(url, **options),
            adresse_expediteur="Portail <ne-pas-repondre@portail.example>",
            adresse_gestionnaires=GESTIONNAIRES,
            portail_url="https://portail.example",
        )

    return construire


@pytest.fixture
def serveur_smtp_de() -> Iterator[Callable[[BoiteAuxLettres], str]]:
    controllers: list[Controller] = []

    def demarrer(boite: BoiteAuxLettres) -> str:
        port = port_libre()
        controller = Controller(boite, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return f"smtp://127.0.0.1:{port}"

    yield demarrer
    for controller in controllers:
        controller.stop()


def worker(env: WorkflowEnvironment, activites: ActivitesModification, task_queue: str) -> Worker:
    return construire_worker(env.client, activites, task_queue, arret_gracieux=timedelta(seconds=10))


async def cycle_sans_reponse(env: WorkflowEnvironment, activites: ActivitesModification) -> str:
    """Open, let the operator do nothing until well past J+20; the finished workflow's details."""
    task_queue = f"tq-{uuid.uuid4()}"
    async with worker(env, activites, task_queue):
        etat = await demarrer_modification(env.client, task_queue, entree(), "50961588600025")
        assert etat.statut == StatutModification.OUVERTE
        handle = env.client.get_workflow_handle_for(ModificationWorkflow.run, NUMERO)
        await env.sleep(EXPIRATION + timedelta(days=5))
        resultat = await handle.result()
        # The Web UI's "current details" (a query: answered by a worker).
        metadonnees = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert resultat.statut == StatutModification.EXPIREE
    return str(metadonnees.current_details)


async def lire(factory: SessionFactory) -> tuple[Demande, Modification, list[Courriel]]:
    async with factory() as session:
        modification = await svc.charger_modification(session, NUMERO)
        demande = await session.get_one(Demande, modification.demande_id)
        courriels = (await session.exec(select(Courriel).order_by(col(Courriel.id)))).all()
        return demande, modification, list(courriels)


def a_l_heure(ecart: timedelta, attendu: timedelta) -> bool:
    """The timer fired at its time, give or take the workflow task's milliseconds."""
    return attendu <= ecart < attendu + timedelta(seconds=1)


async def verifier_echeances_tenues(factory: SessionFactory) -> list[Courriel]:
    demande, modification, courriels = await lire(factory)
    assert demande.statut == StatutDemande.EN_COURS
    assert modification.statut == StatutModification.EXPIREE
    assert modification.relance_envoyee_le is not None and modification.cloturee_le is not None
    assert a_l_heure(modification.relance_envoyee_le - modification.ouverte_le, RELANCE)
    assert a_l_heure(modification.cloturee_le - modification.ouverte_le, EXPIRATION)
    assert [c.type for c in courriels] == ["invitation", "relance", "expiration"]
    return courriels


async def test_destinataire_refuse_pour_de_bon(
    env: WorkflowEnvironment,
    factory: SessionFactory,
    demande: Demande,
    activites_vers: Callable[..., ActivitesModification],
    serveur_smtp_de: Callable[[BoiteAuxLettres], str],
) -> None:
    boite = BoiteQuiRefuse(OPERATEUR)
    texte = await cycle_sans_reponse(env, activites_vers(serveur_smtp_de(boite)))

    courriels = await verifier_echeances_tenues(factory)
    for courriel in courriels:
        assert courriel.statut_envoi == StatutEnvoi.ECHEC and courriel.envoye_le is None
        assert courriel.erreur_envoi is not None and courriel.erreur_envoi.startswith("550 ")
        assert "Boîte aux lettres inconnue" in courriel.erreur_envoi and courriel.tentatives == 1
    assert (boite.refus, boite.messages) == (3, [])  # each asked once, never retried
    for type_courriel in ("invitation", "relance", "expiration"):
        assert f"Courriel « {type_courriel} » non envoyé : 550 " in texte


async def test_serveur_encombre_un_temps_puis_accepte(
    env: WorkflowEnvironment,
    factory: SessionFactory,
    demande: Demande,
    activites_vers: Callable[..., ActivitesModification],
    serveur_smtp_de: Callable[[BoiteAuxLettres], str],
) -> None:
    class EncombreeTroisFois(BoiteEncombree):
        async def handle_RCPT(self, *args: Any) -> str:
            self.encombree = self.refus < 3
            return await super().handle_RCPT(*args)

    boite = EncombreeTroisFois()
    await cycle_sans_reponse(env, activites_vers(serveur_smtp_de(boite)))

    courriels = await verifier_echeances_tenues(factory)
    assert boite.refus == 3
    assert boite.types() == ["invitation", "relance", "expiration"]  # each exactly once
    assert [(c.statut_envoi, c.tentatives) for c in courriels] == [
        (StatutEnvoi.ENVOYE, 4),
        (StatutEnvoi.ENVOYE, 1),
        (StatutEnvoi.ENVOYE, 1),
    ]
    assert all(c.envoye_le is not None and c.erreur_envoi is None for c in courriels)


async def test_serveur_qui_ne_repond_pas(
    env: WorkflowEnvironment,
    factory: SessionFactory,
    demande: Demande,
    activites_vers: Callable[..., ActivitesModification],
) -> None:
    async with serveur_muet() as (port, connexions):
        texte = await cycle_sans_reponse(
            env, activites_vers(f"smtp://127.0.0.1:{port}", delai=0.2, delai_total=0.2)
        )
    courriels = await verifier_echeances_tenues(factory)
    for courriel in courriels:
        assert courriel.statut_envoi == StatutEnvoi.ECHEC and courriel.envoye_le is None
        assert courriel.erreur_envoi is not None
        assert courriel.erreur_envoi.startswith("serveur SMTP injoignable")
        assert "délai dépassé" in courriel.erreur_envoi
    # Every connection the server saw was an attempt recorded first (never a send without its
    # row); an attempt cut short before its TCP connection (a busy machine) reaches no server.
    assert 3 < len(connexions) <= sum(c.tentatives for c in courriels)
    assert "Courriel « expiration » non envoyé : serveur SMTP injoignable" in texte
