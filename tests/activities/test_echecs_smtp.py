"""The e-mail activity against SMTP servers that fail: a permanent refusal is recorded (not
retried), a temporary one is left to Temporal's retries, a required STARTTLS is never skipped,
and the whole exchange is bounded well under the activity's timeout."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from temporalio.exceptions import ApplicationError

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutEnvoi, TypeCourriel
from modif_solde.models.tables import Demande
from modif_solde.services import envoi, lecture
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.workflows.contrat import CourrielEnvoye
from modif_solde.workflows.modification import DELAI_ACTIVITE_COURRIEL
from tests.activities.test_envoi_courriel import OPERATEUR, courriels, envoyer, ouverte  # noqa: F401
from tests.fautes.serveurs_smtp import BoiteEncombree, BoiteLente, BoiteQuiRefuse, serveur_muet
from tests.workflows.conftest import BoiteAuxLettres, port_libre


@pytest.fixture
def demarrer_serveur() -> Iterator[object]:
    controllers: list[Controller] = []

    def demarrer(boite: BoiteAuxLettres) -> int:
        port = port_libre()
        controller = Controller(boite, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return port

    yield demarrer
    for controller in controllers:
        controller.stop()


def vers(activites: ActivitesModification, url: str, **options: float) -> ActivitesModification:
    return dataclasses.replace(activites, expediteur=ExpediteurSmtp(url, **options))


@pytest.mark.usefixtures("ouverte")
async def test_destinataire_refuse_definitivement_marque_en_echec_sans_nouvel_essai(
    activites: ActivitesModification, factory: SessionFactory, demarrer_serveur: object
) -> None:
    boite = BoiteQuiRefuse(OPERATEUR)
    port = demarrer_serveur(boite)  # type: ignore[operator]
    acts = vers(activites, f"smtp://127.0.0.1:{port}")

    resultat = await envoyer(acts, TypeCourriel.INVITATION)
    assert isinstance(resultat, CourrielEnvoye) and resultat.statut == StatutEnvoi.ECHEC
    (ligne,) = await courriels(factory)
    assert ligne.statut_envoi == StatutEnvoi.ECHEC and ligne.envoye_le is None
    assert ligne.erreur_envoi is not None
    assert "550" in ligne.erreur_envoi and "Boîte aux lettres inconnue" in ligne.erreur_envoi
    assert ligne.derniere_tentative_le is not None and ligne.tentatives == 1
    # Run again (a replayed or repeated activity): the server is not asked again.
    assert (await envoyer(acts, TypeCourriel.INVITATION)).statut == StatutEnvoi.ECHEC
    assert boite.refus == 1 and boite.messages == []
    # Shown in the request's e-mail log, with the server's answer.
    async with factory() as session:
        demande = await session.get_one(Demande, ligne.demande_id)
        (vue,) = (await lecture.courriels(session, demande)).elements
    assert (vue.statut_envoi, vue.erreur_envoi) == ("echec", ligne.erreur_envoi)


@pytest.mark.usefixtures("ouverte")
async def test_refus_temporaire_reessaye_puis_envoye(
    activites: ActivitesModification, factory: SessionFactory, demarrer_serveur: object
) -> None:
    boite = BoiteEncombree()
    port = demarrer_serveur(boite)  # type: ignore[operator]
    acts = vers(activites, f"smtp://127.0.0.1:{port}")

    with pytest.raises(Exception) as exc:
        await envoyer(acts, TypeCourriel.INVITATION)
    # Left to Temporal's retries: not a final refusal.
    assert not (isinstance(exc.value, ApplicationError) and exc.value.non_retryable)
    (ligne,) = await courriels(factory)
    assert ligne.statut_envoi == StatutEnvoi.EN_ATTENTE and ligne.envoye_le is None
    assert ligne.erreur_envoi is not None and "451" in ligne.erreur_envoi

    boite.encombree = False
    assert (await envoyer(acts, TypeCourriel.INVITATION)).statut == StatutEnvoi.ENVOYE
    (ligne,) = await courriels(factory)
    assert (ligne.statut_envoi, ligne.tentatives) == (StatutEnvoi.ENVOYE, 2)
    assert ligne.envoye_le is not None
    assert len(boite.messages) == 1


@pytest.mark.usefixtures("ouverte")
async def test_starttls_exige_jamais_en_clair(
    activites: ActivitesModification,
    factory: SessionFactory,
    demarrer_serveur: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    boite = BoiteAuxLettres()  # aiosmtpd without a TLS context: no STARTTLS offered
    port = demarrer_serveur(boite)  # type: ignore[operator]
    acts = vers(activites, f"smtp://127.0.0.1:{port}?starttls=1")

    resultat = await envoyer(acts, TypeCourriel.INVITATION)
    assert resultat.statut == StatutEnvoi.ECHEC
    assert boite.messages == []
    (ligne,) = await courriels(factory)
    assert ligne.statut_envoi == StatutEnvoi.ECHEC
    assert ligne.erreur_envoi is not None and "STARTTLS" in ligne.erreur_envoi
    assert any("STARTTLS" in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)


@pytest.mark.usefixtures("ouverte")
async def test_starttls_exige_et_propose_le_message_part_chiffre(activites: ActivitesModification) -> None:
    ca = trustme.CA()
    contexte_serveur = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(contexte_serveur)
    contexte_client = ssl.create_default_context()
    ca.configure_trust(contexte_client)

    class BoiteChiffree(BoiteAuxLettres):
        def __init__(self) -> None:
            super().__init__()
            self.chiffres: list[bool] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.chiffres.append(session.ssl is not None)
            return await super().handle_DATA(server, session, envelope)

    boite = BoiteChiffree()
    port = port_libre()
    # The server refuses any mail command before STARTTLS: nothing could go in clear.
    controller = Controller(
        boite, hostname="127.0.0.1", port=port, tls_context=contexte_serveur, require_starttls=True
    )
    controller.start()
    try:
        acts = dataclasses.replace(
            activites,
            expediteur=ExpediteurSmtp(f"smtp://127.0.0.1:{port}?starttls=1", contexte_tls=contexte_client),
        )
        assert (await envoyer(acts, TypeCourriel.INVITATION)).statut == StatutEnvoi.ENVOYE
    finally:
        controller.stop()
    assert len(boite.messages) == 1 and boite.chiffres == [True]


@pytest.mark.usefixtures("ouverte")
async def test_sans_option_starttls_le_puits_local_recoit_en_clair(
    activites: ActivitesModification, demarrer_serveur: object
) -> None:
    boite = BoiteAuxLettres()
    port = demarrer_serveur(boite)  # type: ignore[operator]
    resultat = await envoyer(vers(activites, f"smtp://127.0.0.1:{port}"), TypeCourriel.INVITATION)
    assert resultat.statut == StatutEnvoi.ENVOYE and len(boite.messages) == 1


@pytest.mark.usefixtures("ouverte")
async def test_serveur_muet_l_echange_est_borne(
    activites: ActivitesModification, factory: SessionFactory
) -> None:
    async with serveur_muet() as (port, connexions):
        acts = vers(activites, f"smtp://127.0.0.1:{port}", delai=0.5, delai_total=0.5)
        with pytest.raises(TimeoutError):
            await envoyer(acts, TypeCourriel.INVITATION)
    assert connexions == [1]
    (ligne,) = await courriels(factory)
    assert ligne.statut_envoi == StatutEnvoi.EN_ATTENTE and ligne.envoye_le is None


@pytest.mark.usefixtures("ouverte")
async def test_serveur_lent_l_echange_entier_est_borne(
    activites: ActivitesModification, factory: SessionFactory, demarrer_serveur: object
) -> None:
    """Each command answers within its own timeout, the whole exchange does not within its bound:
    given up (and retried later) rather than left running past the activity's timeout."""
    boite = BoiteLente(pause=0.3)
    port = demarrer_serveur(boite)  # type: ignore[operator]
    acts = vers(activites, f"smtp://127.0.0.1:{port}", delai=1.0, delai_total=0.5)
    with pytest.raises(TimeoutError):
        await envoyer(acts, TypeCourriel.INVITATION)
    (ligne,) = await courriels(factory)
    assert ligne.statut_envoi == StatutEnvoi.EN_ATTENTE and ligne.envoye_le is None


def test_l_echange_smtp_est_borne_bien_en_dessous_du_delai_de_l_activite() -> None:
    expediteur = ExpediteurSmtp("smtp://smtp.example:587?starttls=1")
    assert expediteur.delai_total <= DELAI_ACTIVITE_COURRIEL.total_seconds() * 2 / 3
    assert expediteur.delai <= expediteur.delai_total


@pytest.mark.usefixtures("ouverte")
async def test_noter_echec_garde_la_reponse(
    activites: ActivitesModification, factory: SessionFactory
) -> None:
    """The workflow's last word when the server stayed unreachable: the row is marked failed."""
    acts = vers(activites, f"smtp://127.0.0.1:{port_libre()}", delai=0.5, delai_total=0.5)
    with pytest.raises(ConnectionError):
        await envoyer(acts, TypeCourriel.INVITATION)
    (ligne,) = await courriels(factory)
    async with unit_of_work(factory) as session:
        await envoi.noter_echec_par_cle(session, ligne.cle_idempotence, "serveur injoignable")
    (ligne,) = await courriels(factory)
    assert ligne.statut_envoi == StatutEnvoi.ECHEC and ligne.erreur_envoi is not None
    assert ligne.erreur_envoi.startswith("serveur injoignable")
