"""A client generated from the OpenAPI document reads like the API: every operation has a short
unique id in the domain's words (`confirmer_modification`, not FastAPI's
`confirmer_api_v1_modifications__numero__confirmer_post`), every request body is a named
component (no `Body_…` nor inline schema)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

# The ids the API's clients call; a change here is a change of every generated client.
ATTENDUS = {
    ("post", "/api/v1/demandes"): "importer_demande",
    ("get", "/api/v1/demandes"): "lister_demandes",
    ("get", "/api/v1/demandes/{numero}"): "consulter_demande",
    ("get", "/api/v1/demandes/{numero}/courriels"): "lister_courriels",
    ("get", "/api/v1/demandes/{numero}/historique"): "lister_historique",
    ("get", "/api/v1/demandes/{numero}/pieces/{piece_id}"): "telecharger_piece",
    ("post", "/api/v1/demandes/{numero}/modifications"): "ouvrir_modification",
    ("get", "/api/v1/modifications/{numero}"): "consulter_modification",
    ("patch", "/api/v1/modifications/{numero}/brouillon"): "modifier_brouillon",
    ("post", "/api/v1/modifications/{numero}/pieces"): "ajouter_piece",
    ("delete", "/api/v1/modifications/{numero}/pieces/{piece_id}"): "supprimer_piece",
    ("post", "/api/v1/modifications/{numero}/confirmer"): "confirmer_modification",
    ("post", "/api/v1/modifications/{numero}/renoncer"): "renoncer_modification",
    ("post", "/api/v1/modifications/{numero}/retirer"): "retirer_modification",
    ("post", "/api/v1/modifications/{numero}/prolonger"): "prolonger_modification",
    ("post", "/api/v1/demandes/{numero}/signalements"): "signaler_erreur",
    ("get", "/api/v1/demandes/{numero}/signalements"): "lister_signalements_demande",
    ("get", "/api/v1/signalements"): "lister_signalements",
    ("post", "/api/v1/signalements/{signalement_id}/sans-suite"): "repondre_sans_suite",
    ("get", "/api/v1/pilotage"): "lire_pilotage",
    ("get", "/healthz"): "verifier_vivacite",
    ("get", "/readyz"): "verifier_disponibilite",
}


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(methode, chemin): op for chemin, ops in document["paths"].items() for methode, op in ops.items()}


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_chaque_operation_a_un_id_court_et_unique(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    ids = {cle: op["operationId"] for cle, op in operations(document).items()}
    assert ids == ATTENDUS
    assert len(set(ids.values())) == len(ids)
    for identifiant in ids.values():
        assert re.fullmatch(r"[a-z]+(_[a-z]+){0,2}", identifiant), identifiant
        assert "api_v1" not in identifiant and len(identifiant) <= 30


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_chaque_corps_est_un_composant_nomme(http: httpx.AsyncClient) -> None:
    document = (await http.get("/openapi.json")).json()
    composants = document["components"]["schemas"]
    corps = {}
    for cle, op in operations(document).items():
        for type_media, contenu in op.get("requestBody", {}).get("content", {}).items():
            schema = contenu["schema"]
            assert set(schema) <= {"$ref", "description"}, (cle, type_media, schema)
            nom = schema["$ref"].removeprefix("#/components/schemas/")
            assert nom in composants and not nom.startswith("Body_"), nom
            assert "Api" not in nom and "V1" not in nom, nom
            corps[cle[1].rsplit("/", 1)[-1], type_media] = nom
    assert corps == {
        ("demandes", "application/json"): "DemandeImport",
        ("modifications", "application/json"): "OuvertureModification",
        ("brouillon", "application/json"): "ChangementsBrouillon",
        ("pieces", "multipart/form-data"): "AjoutPiece",
        ("retirer", "application/json"): "CorpsRetrait",
        ("prolonger", "application/json"): "CorpsProlongation",
        ("signalements", "application/json"): "NouveauSignalement",
        ("sans-suite", "application/json"): "ReponseSansSuite",
    }
