"""The reports over the API: the operator's report on its own request only, refused in French
(422 naming the field, 409 when the request is not « en cours »), read with its outcome; the
gestionnaires' list and their answer, e-mailed through a real SMTP server."""

from __future__ import annotations

import httpx
import pytest

from modif_solde.config import Settings
from modif_solde.models.tables import Demande
from tests.api.conftest import AUTRE_OPERATEUR, GESTIONNAIRE, OPERATEUR
from tests.workflows.conftest import ServeurSmtp

SIGNALER = "/api/v1/demandes/FINMSS009266/signalements"
CORPS = {"description": "J'ai oublié le guide de l'API.", "champs": ["pieces"]}


@pytest.fixture
def settings(settings: Settings, smtp: ServeurSmtp) -> Settings:
    return settings.model_copy(update={"SMTP_URL": smtp.url})


async def test_report_then_answer_no_modification_needed(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    refus = await http.post(SIGNALER, json={"description": "", "champs": []}, headers=OPERATEUR)
    assert refus.status_code == 422
    assert [e["champ"] for e in refus.json()["errors"]] == ["description", "champs"]
    assert refus.json()["errors"][0]["message"] == "Le champ « description » est obligatoire."
    assert (await http.post(SIGNALER, json=CORPS, headers=AUTRE_OPERATEUR)).status_code == 404
    assert (await http.post(SIGNALER, json=CORPS, headers=GESTIONNAIRE)).status_code == 403
    assert (await http.post(SIGNALER, json=CORPS)).status_code == 401

    cree = await http.post(SIGNALER, json=CORPS, headers=OPERATEUR)
    assert cree.status_code == 201, cree.text
    signalement = cree.json()
    assert (signalement["statut"], signalement["champs"], signalement["demande"]) == (
        "nouveau",
        ["pieces"],
        "FINMSS009266",
    )

    assert (await http.get("/api/v1/signalements", headers=OPERATEUR)).status_code == 403
    liste = (await http.get("/api/v1/signalements", headers=GESTIONNAIRE)).json()
    assert [s["id"] for s in liste["signalements"]] == [signalement["id"]]

    repondre = f"/api/v1/signalements/{signalement['id']}/sans-suite"
    assert (await http.post(repondre, json={"reponse": "Rien."}, headers=OPERATEUR)).status_code == 403
    reponse = await http.post(repondre, json={"reponse": "Rien à modifier."}, headers=GESTIONNAIRE)
    assert reponse.status_code == 200, reponse.text
    assert (reponse.json()["statut"], reponse.json()["reponse"]) == ("sans_suite", "Rien à modifier.")
    (recu,) = smtp.boite.messages
    assert recu["To"] == "operateur@sci-voiture.example"
    encore = await http.post(repondre, json={"reponse": "Rien à modifier."}, headers=GESTIONNAIRE)
    assert encore.status_code == 409
    assert "déjà été traité" in encore.json()["detail"]
    assert (
        await http.post("/api/v1/signalements/999/sans-suite", json={"reponse": "x"}, headers=GESTIONNAIRE)
    ).status_code == 404

    # The operator reads the outcome; another operator cannot.
    lus = (await http.get(SIGNALER, headers=OPERATEUR)).json()["signalements"]
    assert [(s["statut"], s["reponse"]) for s in lus] == [("sans_suite", "Rien à modifier.")]
    assert (await http.get(SIGNALER, headers=AUTRE_OPERATEUR)).status_code == 404
    courriels = (await http.get("/api/v1/demandes/FINMSS009266/courriels", headers=OPERATEUR)).json()
    assert [c["type"] for c in courriels["elements"]] == ["signalement_sans_suite"]


async def test_a_report_on_a_request_not_en_cours_is_a_conflict(
    http: httpx.AsyncClient, demande: Demande
) -> None:
    ouverte = await http.post(
        "/api/v1/demandes/FINMSS009266/modifications",
        json={"commentaire": "À corriger", "champs": ["pieces"]},
        headers=GESTIONNAIRE,
    )
    assert ouverte.status_code == 201, ouverte.text
    refus = await http.post(SIGNALER, json=CORPS, headers=OPERATEUR)
    assert refus.status_code == 409
    assert "n'est pas « en cours »" in refus.json()["detail"]
