"""The e-mail activity (log, then send once) and the activities' refusal mapping, run through
Temporal's ActivityEnvironment against the real databases and a real SMTP server on loopback."""

from __future__ import annotations

import dataclasses
import email
from datetime import datetime
from email import policy
from email.message import EmailMessage, Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlmodel import col, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutModification, TypeCourriel
from modif_solde.models.tables import Courriel, Demande
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import lire_import
from modif_solde.services.envoi import ExpediteurSmtp, construire_message
from modif_solde.services.erreurs import DonneesInvalides
from modif_solde.services.stockage import Stockage
from modif_solde.workflows.contrat import ClotureActivite, CourrielActivite, CourrielEnvoye
from tests.workflows.conftest import GESTIONNAIRES, BoiteAuxLettres, ServeurSmtp, port_libre

NUMERO = "FINMSS009266M1"
OPERATEUR = "operateur@sci-voiture.example"
COMMENTAIRE = (
    "Le téléphone du contact support ne correspond pas à la pièce jointe : <b>x</b>\nMerci de le corriger."
)

Echeances = tuple[datetime, datetime, datetime]


@pytest.fixture
async def ouverte(factory: SessionFactory, demande: Demande, echeances: Echeances) -> None:
    """The seed's request with modification M1 open (the workflow's OUVRIR, done by the service)."""
    ouverte_le, relance_le, expire_le = echeances
    async with unit_of_work(factory) as session:
        await svc.ouvrir(
            session,
            svc.Ouverture(
                demande_numero="FINMSS009266",
                numero=NUMERO,
                commentaire=COMMENTAIRE,
                champs=["contact_support_telephone"],
                ouverte_par="gestionnaire-1",
                ouverte_le=ouverte_le,
                relance_le=relance_le,
                expire_le=expire_le,
            ),
        )


async def envoyer(
    activites: ActivitesModification, type_courriel: TypeCourriel, discriminant: str = ""
) -> CourrielEnvoye:
    return await ActivityEnvironment().run(
        activites.envoyer_courriel,
        CourrielActivite(modification_numero=NUMERO, type=type_courriel, discriminant=discriminant),
    )


async def courriels(factory: SessionFactory) -> list[Courriel]:
    async with factory() as session:
        return list((await session.exec(select(Courriel).order_by(col(Courriel.id)))).all())


def moderne(message: Message) -> EmailMessage:
    """The received message, parsed again with the modern policy (decoded, unfolded headers)."""
    reparse = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(reparse, EmailMessage)
    return reparse


def partie(message: EmailMessage, type_mime: str) -> str:
    corps = message.get_body(preferencelist=(type_mime.split("/")[1],))
    assert corps is not None and corps.get_content_type() == type_mime
    return str(corps.get_content())


async def test_invitation_consignee_puis_envoyee(
    activites: ActivitesModification, factory: SessionFactory, ouverte: None, smtp: ServeurSmtp
) -> None:
    await envoyer(activites, TypeCourriel.INVITATION)

    (ligne,) = await courriels(factory)
    assert ligne.type == TypeCourriel.INVITATION
    assert ligne.destinataire == OPERATEUR
    assert ligne.cle_idempotence == f"{NUMERO}:invitation"
    assert NUMERO in ligne.sujet and "FINMSS009266" in ligne.sujet
    assert "<b>x</b>" in ligne.corps_texte and "Merci de le corriger." in ligne.corps_texte
    assert "&lt;b&gt;x&lt;/b&gt;" in ligne.corps_html
    assert ligne.envoye_le is not None and ligne.tentatives == 1

    (recu,) = smtp.boite.messages
    message = moderne(recu)
    assert message["Message-ID"] == ligne.message_id
    assert message["To"] == OPERATEUR
    assert message["Subject"] == ligne.sujet
    assert message["X-Modif-Solde-Cle"] == ligne.cle_idempotence
    texte = partie(message, "text/plain")
    assert "Le téléphone du contact support ne correspond pas à la pièce jointe : <b>x</b>" in texte
    assert "Merci de le corriger." in texte


async def test_invitation_rejouee_rien_de_plus(
    activites: ActivitesModification, factory: SessionFactory, ouverte: None, smtp: ServeurSmtp
) -> None:
    await envoyer(activites, TypeCourriel.INVITATION)
    (premiere,) = await courriels(factory)
    await envoyer(activites, TypeCourriel.INVITATION)
    await envoyer(activites, TypeCourriel.INVITATION)
    (ligne,) = await courriels(factory)
    assert len(smtp.boite.messages) == 1
    assert (ligne.id, ligne.envoye_le, ligne.tentatives) == (premiere.id, premiere.envoye_le, 1)


async def test_serveur_smtp_absent_puis_present(
    activites: ActivitesModification, factory: SessionFactory, ouverte: None
) -> None:
    port = port_libre()  # nothing listens there (yet)
    hors_ligne = dataclasses.replace(
        activites, expediteur=ExpediteurSmtp(f"smtp://127.0.0.1:{port}", delai=5)
    )

    with pytest.raises(Exception) as exc:
        await envoyer(hors_ligne, TypeCourriel.INVITATION)
    # A connection failure is left to Temporal's retries: not a final refusal.
    assert not (isinstance(exc.value, ApplicationError) and exc.value.non_retryable)
    assert isinstance(exc.value, ConnectionError)
    (ligne,) = await courriels(factory)
    assert (ligne.envoye_le, ligne.tentatives) == (None, 1)

    boite = BoiteAuxLettres()
    controller = Controller(boite, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await envoyer(hors_ligne, TypeCourriel.INVITATION)
        assert len(boite.messages) == 1
        (ligne_apres,) = await courriels(factory)
        assert ligne_apres.envoye_le is not None and ligne_apres.tentatives == 2
        # The retry resends the very message logged before the failure.
        assert moderne(boite.messages[0])["Message-ID"] == ligne.message_id

        await envoyer(hors_ligne, TypeCourriel.INVITATION)
        assert len(boite.messages) == 1
        (ligne_fin,) = await courriels(factory)
        assert (ligne_fin.envoye_le, ligne_fin.tentatives) == (ligne_apres.envoye_le, 2)
    finally:
        controller.stop()


async def test_relance_d_une_modification_close_ni_envoyee_ni_consignee(
    activites: ActivitesModification,
    factory: SessionFactory,
    stockage: Stockage,
    ouverte: None,
    smtp: ServeurSmtp,
    echeances: Echeances,
) -> None:
    async with unit_of_work(factory) as session:
        await svc.cloturer_sans_modifier(
            session, stockage, NUMERO, StatutModification.RENONCEE, echeances[0], "Renoncée par l'opérateur"
        )
    await envoyer(activites, TypeCourriel.RELANCE)
    assert await courriels(factory) == []
    assert smtp.boite.messages == []


async def test_relance_d_une_modification_ouverte_envoyee(
    activites: ActivitesModification, factory: SessionFactory, ouverte: None, smtp: ServeurSmtp
) -> None:
    await envoyer(activites, TypeCourriel.RELANCE)
    (ligne,) = await courriels(factory)
    assert (ligne.type, ligne.destinataire, ligne.cle_idempotence) == (
        "relance",
        OPERATEUR,
        f"{NUMERO}:relance",
    )
    assert smtp.boite.types() == ["relance"]


async def test_avis_aux_gestionnaires(
    activites: ActivitesModification,
    factory: SessionFactory,
    ouverte: None,
    smtp: ServeurSmtp,
    echeances: Echeances,
) -> None:
    async with unit_of_work(factory) as session:
        await svc.confirmer(session, NUMERO, echeances[0])
    await envoyer(activites, TypeCourriel.CONFIRMATION)
    await envoyer(activites, TypeCourriel.CONFIRMATION_GESTIONNAIRES)
    operateur, gestionnaires = await courriels(factory)
    assert (operateur.type, operateur.destinataire) == ("confirmation", OPERATEUR)
    assert (gestionnaires.type, gestionnaires.destinataire) == ("confirmation_gestionnaires", GESTIONNAIRES)
    assert gestionnaires.cle_idempotence == f"{NUMERO}:confirmation_gestionnaires"
    assert [moderne(m)["To"] for m in smtp.boite.messages] == [OPERATEUR, GESTIONNAIRES]
    assert "SCI VOITURE" in gestionnaires.sujet and "50961588600025" in gestionnaires.sujet


async def test_pas_d_injection_d_en_tete(
    activites: ActivitesModification, factory: SessionFactory, ouverte: None, smtp: ServeurSmtp
) -> None:
    await envoyer(activites, TypeCourriel.INVITATION)
    await envoyer(activites, TypeCourriel.CONFIRMATION_GESTIONNAIRES)
    for recu, ligne in zip(smtp.boite.messages, await courriels(factory), strict=True):
        message = moderne(recu)
        sujets = message.get_all("Subject")
        assert sujets is not None and len(sujets) == 1
        assert "\r" not in str(sujets[0]) and "\n" not in str(sujets[0])
        assert str(sujets[0]) == ligne.sujet
        # Only the headers the sender sets (nothing smuggled in through a value).
        assert {k.lower() for k in message.keys()} <= {
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "x-modif-solde-cle",
            "auto-submitted",
            "content-type",
            "content-transfer-encoding",
            "mime-version",
            "x-peer",
            "x-mailfrom",
            "x-rcptto",
        }
        html = partie(message, "text/html")
        assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


@pytest.mark.parametrize("champ", ["sujet", "destinataire", "cle_idempotence"])
def test_un_saut_de_ligne_dans_un_en_tete_n_est_jamais_ecrit(champ: str) -> None:
    """The last guard, whatever got into the log row: no value with CR/LF becomes a header."""
    courriel = Courriel(
        demande_id=1,
        modification_id=1,
        type=TypeCourriel.INVITATION,
        destinataire=OPERATEUR,
        sujet="Demande FINMSS009266 : modification demandée",
        corps_texte="Bonjour,",
        corps_html="<p>Bonjour,</p>",
        cle_idempotence=f"{NUMERO}:invitation",
        cree_le=datetime(2026, 11, 27, 9, 0),
    )
    setattr(courriel, champ, getattr(courriel, champ) + "\r\nBcc: espion@example.org")
    with pytest.raises(ValueError, match="saut de ligne"):
        construire_message(courriel, "Portail <ne-pas-repondre@portail.example>")


async def test_denomination_avec_saut_de_ligne_refusee_a_l_import(donnees: dict[str, Any]) -> None:
    """Why the subject cannot carry a header: a company name with CR/LF never gets in."""
    donnees["operateur"]["denomination"] = "SCI VOITURE\r\nBcc: espion@example.org"
    with pytest.raises(DonneesInvalides) as exc:
        lire_import(donnees)
    assert any(e["champ"] == "operateur.denomination" for e in exc.value.erreurs)


async def test_confirmer_une_modification_renoncee_est_un_conflit_definitif(
    activites: ActivitesModification,
    factory: SessionFactory,
    stockage: Stockage,
    ouverte: None,
    echeances: Echeances,
) -> None:
    async with unit_of_work(factory) as session:
        await svc.cloturer_sans_modifier(
            session, stockage, NUMERO, StatutModification.RENONCEE, echeances[0], "Renoncée"
        )
    with pytest.raises(ApplicationError) as exc:
        await ActivityEnvironment().run(
            activites.confirmer,
            ClotureActivite(
                modification_numero=NUMERO,
                statut=StatutModification.CONFIRMEE,
                le=echeances[1],
                issue="Confirmée par l'opérateur",
            ),
        )
    assert exc.value.type == "Conflit"
    assert exc.value.non_retryable is True
    assert "n'est plus ouverte" in exc.value.message
    async with factory() as session:
        modification = await svc.charger_modification(session, NUMERO)
    assert modification.statut == StatutModification.RENONCEE


async def test_relance_ne_rappelle_que_ce_qui_reste_attendu(
    activites: ActivitesModification, factory: SessionFactory, ouverte: None, smtp: ServeurSmtp
) -> None:
    """Computed when the reminder is sent (the activity), not when the workflow was written."""
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, NUMERO)
        modification.champs_attendus = ["contact_support_telephone", "site_documentation_url"]
        session.add(modification)
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(session, NUMERO, {"contact_support_telephone": "02 62 40 12 34"})
    await envoyer(activites, TypeCourriel.RELANCE)
    (recu,) = smtp.boite.messages
    parties = {p.get_content_type(): p.get_content() for p in moderne(recu).walk() if not p.is_multipart()}
    for corps in parties.values():
        assert "Lien vers le site web mettant à disposition la documentation" in corps
        assert "Numéro de téléphone du contact support" not in corps
