"""« Signaler une erreur ou un oubli » over HTTP (no browser): the operator's form and its French
refusals, another operator's request, a request not « en cours », the work queue's filter and
badge, and the answer that no modification is needed, e-mailed through a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from modif_solde.api.app import create_app
from modif_solde.db import SessionFactory
from modif_solde.models.tables import Demande
from modif_solde.services.stockage import Stockage
from tests.pages.conftest import (
    AUTRE_OPERATEUR,
    OPERATEUR,
    jeton_csrf,
    reglages,
    se_connecter,
    se_deconnecter,
)
from tests.pages.test_gestionnaire import DEMANDE, connecter_gestionnaire, demander
from tests.pages.test_modification import texte
from tests.workflows.conftest import Banc, ServeurSmtp

DESCRIPTION = "J'ai oublié de joindre le guide de l'API et le téléphone du support a changé."


@pytest.fixture
async def portail(
    engine: Any, stockage: Stockage, banc: Banc, fournisseur: str, factory: Any, smtp: ServeurSmtp
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI, its e-mails to this test's SMTP server."""
    settings = reglages(
        "http://test",
        fournisseur,
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        STORAGE_DIR=stockage.racine,
        TASK_QUEUE=banc.task_queue,
        SMTP_URL=smtp.url,
    )
    app = create_app(settings, client=banc.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def signaler(portail: httpx.AsyncClient, **donnees: Any) -> httpx.Response:
    page = await portail.get(DEMANDE)
    return await portail.post(f"{DEMANDE}/signalements", data={"csrf": jeton_csrf(page.text), **donnees})


async def test_the_operator_reports_and_the_gestionnaire_answers_no_modification_needed(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory, smtp: ServeurSmtp
) -> None:
    await se_connecter(portail, OPERATEUR, retour=DEMANDE)
    page = await portail.get(DEMANDE)
    assert "Signaler une erreur ou un oubli" in texte(page.text)

    refus = await signaler(portail, description=" ", champs=["montants"])
    assert refus.status_code == 422
    lu = texte(refus.text)
    assert "Le champ « Ce qui est erroné ou manquant » est obligatoire." in lu
    assert "Cochez au moins un élément concerné." in lu
    trop_long = await signaler(portail, description="x" * 2001, champs=["pieces"])
    assert "ne doit pas dépasser 2000 caractères (2001 saisis)" in texte(trop_long.text)

    envoye = await signaler(portail, description=DESCRIPTION, champs=["contact_support_telephone", "pieces"])
    assert envoye.status_code == 303 and envoye.headers["location"] == f"{DEMANDE}#signalements"
    lu = texte((await portail.get(DEMANDE)).text)
    assert "Signalement envoyé" in lu
    assert DESCRIPTION in lu and "En attente d'un gestionnaire" in lu
    assert (
        "Éléments concernés : Numéro de téléphone du contact support de l'opérateur, Pièces justificatives."
        in lu
    )

    # Another operator: the request does not exist for it.
    await se_deconnecter(portail)
    await se_connecter(portail, AUTRE_OPERATEUR, retour="/demandes")
    autre = await signaler(portail, description=DESCRIPTION, champs=["pieces"])
    assert autre.status_code == 404
    await se_deconnecter(portail)

    # The gestionnaire: the queue's filter and badge, then the answer.
    csrf = await connecter_gestionnaire(portail, factory)
    file = await portail.get("/demandes", params={"signalement": "a_traiter"})
    assert "FINMSS009266" in file.text and "Signalement à traiter" in texte(file.text)
    mauvais_filtre = await portail.get("/demandes", params={"signalement": "peut-etre"})
    assert mauvais_filtre.status_code == 422
    assert "Le champ « Signalement » doit valoir À traiter." in texte(mauvais_filtre.text)
    page = await portail.get(DEMANDE)
    assert "Ouvrir une modification à partir de ce signalement" in texte(page.text)
    # The report's id as the page names it (sequences are not reset between tests on PostgreSQL).
    (identifiant,) = re.findall(r"/signalements/(\d+)/sans-suite", page.text)
    vide = await portail.post(
        f"{DEMANDE}/signalements/{identifiant}/sans-suite", data={"csrf": csrf, "reponse": ""}
    )
    assert vide.status_code == 422
    assert "Le champ « Réponse à l'opérateur » est obligatoire." in texte(vide.text)
    reponse = "Le téléphone déclaré est bien celui du support : rien à modifier."
    fait = await portail.post(
        f"{DEMANDE}/signalements/{identifiant}/sans-suite", data={"csrf": csrf, "reponse": reponse}
    )
    assert fait.status_code == 303
    assert "L'opérateur en est informé par courriel." in texte((await portail.get(DEMANDE)).text)
    (recu,) = smtp.boite.messages
    assert recu["To"] == "operateur@sci-voiture.example"
    file = await portail.get("/demandes", params={"signalement": "a_traiter"})
    assert "FINMSS009266" not in file.text
    # Answered once.
    encore = await portail.post(
        f"{DEMANDE}/signalements/{identifiant}/sans-suite", data={"csrf": csrf, "reponse": reponse}
    )
    assert encore.status_code == 303
    assert f"Le signalement {identifiant} a déjà été traité." in texte((await portail.get(DEMANDE)).text)
    await se_deconnecter(portail)

    # The operator reads the outcome and the e-mail in the request's log.
    await se_connecter(portail, OPERATEUR, retour=DEMANDE)
    lu = texte((await portail.get(DEMANDE)).text)
    assert "Aucune modification nécessaire" in lu and reponse in lu
    assert "aucune modification nécessaire" in lu.split("Courriels automatiques envoyés")[-1]


async def test_a_report_on_a_request_not_en_cours_is_refused(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    csrf = await connecter_gestionnaire(portail, factory)
    assert (await demander(portail, csrf)).status_code == 303
    await se_deconnecter(portail)
    await se_connecter(portail, OPERATEUR, retour=DEMANDE)
    page = await portail.get(DEMANDE)
    assert "Signaler une erreur ou un oubli" not in texte(page.text)
    refus = await signaler(portail, description=DESCRIPTION, champs=["pieces"])
    assert refus.status_code == 303
    lu = texte((await portail.get(DEMANDE)).text)
    assert "Signalement impossible" in lu
    assert "La demande FINMSS009266 n'est pas « en cours »" in lu
