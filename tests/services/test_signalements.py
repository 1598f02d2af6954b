"""The operator's report of an error or omission (signalement): refused in French when it is
wrong or the request is not « en cours », scoped to the operator's own requests, then answered
by a gestionnaire: a modification opened from it, or no modification needed (an e-mail sent
through a real SMTP server and logged on the request)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutEnvoi
from modif_solde.models.tables import Courriel, Demande, Signalement
from modif_solde.services import lecture
from modif_solde.services import modifications as svc
from modif_solde.services import signalements as sig
from modif_solde.services.conservation import purger_demande
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.erreurs import Conflit, DonneesInvalides, Introuvable
from modif_solde.services.stockage import Stockage
from tests.services.test_modifications import Echeances, ouverture
from tests.workflows.conftest import ServeurSmtp

SIRET = "50961588600025"
LE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DESCRIPTION = "J'ai oublié la pièce « MSS_GUIDE_PDF_API » et le téléphone a changé."


async def signaler(factory: SessionFactory, siret: str | None = SIRET, **autres: object) -> Signalement:
    valeurs: dict[str, object] = {
        "description": DESCRIPTION,
        "champs": ["contact_support_telephone", "pieces"],
    }
    valeurs.update(autres)
    async with unit_of_work(factory) as session:
        return await sig.signaler(
            session,
            "FINMSS009266",
            siret,
            valeurs["description"],
            valeurs["champs"],
            "operateur-sci-voiture",
            LE,
        )


async def test_a_report_waits_in_the_queue_then_opens_a_modification(
    factory: SessionFactory, demande: Demande, echeances: Echeances
) -> None:
    signalement = await signaler(factory)
    assert (signalement.statut, signalement.champs) == ("nouveau", ["contact_support_telephone", "pieces"])
    async with factory() as session:
        assert await sig.demandes_en_attente(session, ["FINMSS009266", "FINMSS000001"]) == {"FINMSS009266"}
        file = await lecture.file_de_travail(session, lecture.FiltresFile(signalement=True), 50, 0)
        assert [d.numero for d in file.demandes] == ["FINMSS009266"]

    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(echeances))
        await sig.rattacher(session, signalement.id or 0, "FINMSS009266M1", "gestionnaire-1", LE)
    async with factory() as session:
        (lu,) = await sig.de_la_demande(session, "FINMSS009266")
        assert lu.statut == "modification_ouverte"
        assert [
            (s.id, n) for s, n in await sig.de_la_demande_avec_modifications(session, "FINMSS009266")
        ] == [(lu.id, "FINMSS009266M1")]
        assert await sig.demandes_en_attente(session, ["FINMSS009266"]) == set()
        file = await lecture.file_de_travail(session, lecture.FiltresFile(signalement=True), 50, 0)
        assert file.demandes == []
    # Handled once.
    with pytest.raises(Conflit, match="déjà été traité"):
        async with unit_of_work(factory) as session:
            await sig.repondre_sans_suite(session, signalement.id or 0, "Rien à faire.", "g", LE, "http://p")


async def test_a_report_is_refused_in_french(
    factory: SessionFactory, demande: Demande, echeances: Echeances
) -> None:
    with pytest.raises(DonneesInvalides) as refus:
        await signaler(factory, description="  ", champs=["montants"])
    assert refus.value.erreurs == [
        {"champ": "description", "message": "Le champ « description » est obligatoire."},
        {
            "champ": "champs.0",
            "message": "Le champ « champs.0 » doit valoir l'une des valeurs : contact_support_nom, "
            "contact_support_telephone, contact_support_courriel, site_documentation_url, pieces.",
        },
    ]
    with pytest.raises(DonneesInvalides, match="") as refus:
        await signaler(factory, description="x" * 2001, champs=[])
    assert [e["message"] for e in refus.value.erreurs] == [
        "Le champ « description » ne doit pas dépasser 2000 caractères (2001 saisis).",
        "Le champ « champs » doit lister au moins un élément concerné.",
    ]
    # Another operator's request does not exist for it.
    with pytest.raises(Introuvable):
        await signaler(factory, siret="00000000000000")
    # Not « en cours » (a modification is open): refused.
    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(echeances))
    with pytest.raises(Conflit, match="n'est pas « en cours »"):
        await signaler(factory)
    async with factory() as session:
        assert (await session.exec(select(Signalement))).all() == []


async def test_no_modification_needed_is_told_by_e_mail_and_logged(
    factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    signalement = await signaler(factory)
    with pytest.raises(DonneesInvalides, match="invalide"):
        async with unit_of_work(factory) as session:
            await sig.repondre_sans_suite(session, signalement.id or 0, "", "gestionnaire-1", LE, "http://p")
    async with unit_of_work(factory) as session:
        courriel = await sig.repondre_sans_suite(
            session,
            signalement.id or 0,
            "Le téléphone déclaré est celui de la pièce : rien à modifier.",
            "gestionnaire-1",
            LE,
            "https://portail.example",
        )
    statut = await sig.envoyer(
        factory, ExpediteurSmtp(smtp.url), "Portail <p@portail.example>", courriel.id or 0, LE
    )
    assert statut == StatutEnvoi.ENVOYE
    (recu,) = smtp.boite.messages
    assert recu["To"] == "operateur@sci-voiture.example"
    texte = (
        next(p for p in recu.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    )
    assert "aucune modification de votre demande n'est nécessaire" in texte
    assert "Le téléphone déclaré est celui de la pièce : rien à modifier." in texte
    assert DESCRIPTION in texte
    assert "https://portail.example/demandes/FINMSS009266" in texte
    # In the request's e-mail log, as the operator reads it.
    async with factory() as session:
        d = await session.get_one(Demande, demande.id)
        journal = await lecture.courriels(session, d)
        (lu,) = await sig.de_la_demande(session, "FINMSS009266")
        (ligne,) = (await session.exec(select(Courriel).order_by(col(Courriel.id)))).all()
    assert [(c.type, c.statut_envoi) for c in journal.elements] == [("signalement_sans_suite", "envoye")]
    assert (lu.statut, lu.reponse) == (
        "sans_suite",
        "Le téléphone déclaré est celui de la pièce : rien à modifier.",
    )
    assert ligne.envoye_le is not None


async def test_the_retention_purge_erases_the_reports_text(
    factory: SessionFactory, demande: Demande, stockage: Stockage
) -> None:
    signalement = await signaler(factory)
    async with unit_of_work(factory) as session:
        await sig.repondre_sans_suite(
            session, signalement.id or 0, "Rien à modifier.", "gestionnaire-1", LE, "http://p"
        )
    async with unit_of_work(factory) as session:
        purgee = await purger_demande(
            session, stockage, "FINMSS009266", datetime(2100, 1, 1, tzinfo=UTC), timedelta(days=1), LE
        )
    assert purgee is not None
    async with factory() as session:
        (lu,) = await sig.de_la_demande(session, "FINMSS009266")
    assert (lu.description, lu.reponse, lu.par, lu.traite_par, lu.statut) == (
        "",
        None,
        "",
        None,
        "sans_suite",
    )
