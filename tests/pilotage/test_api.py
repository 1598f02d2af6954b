"""GET /api/v1/pilotage: the figures for a gestionnaire, refused to an operator, a bad period
named; documented in the OpenAPI under `lire_pilotage`."""

from __future__ import annotations

import httpx

from modif_solde.models.tables import Demande
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.pilotage import jeu


async def test_le_gestionnaire_lit_les_chiffres_de_la_periode(
    http: httpx.AsyncClient, factory: object, demande: Demande
) -> None:
    await jeu.construire(factory, demande)  # type: ignore[arg-type]
    r = await http.get(
        "/api/v1/pilotage", params={"du": "2026-03-01", "au": "2026-03-31"}, headers=GESTIONNAIRE
    )
    assert r.status_code == 200, r.text
    corps = r.json()
    assert (corps["du"], corps["au"], corps["ouvertes"]) == ("2026-03-01", "2026-03-31", 6)
    assert corps["cloturees"] == {"confirmees": 2, "renoncees": 2, "retirees": 1, "expirees": 1}
    assert corps["delai_reponse"] == {"reponses": 4, "mediane_jours": 8.5, "decile_9_jours": 16.9}
    assert corps["relance"]["part_apres_relance"] == 50.0
    assert corps["courriels_en_echec"] == [
        {"type": "invitation", "nombre": 1},
        {"type": "relance", "nombre": 1},
    ]
    assert [t["nombre"] for t in corps["ouvertes_maintenant"]] == [1, 1, 0, 0, 1, 0]


async def test_l_operateur_est_refuse(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/v1/pilotage", headers=OPERATEUR)
    assert r.status_code == 403
    assert (await http.get("/api/v1/pilotage")).status_code == 401


async def test_une_periode_invalide_est_nommee(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/v1/pilotage", params={"du": "2026-03-10", "au": "le 1er"}, headers=GESTIONNAIRE)
    assert r.status_code == 422
    assert "« au »" in r.text
    vide = await http.get("/api/v1/pilotage", params={"du": ""}, headers=GESTIONNAIRE)
    assert vide.status_code == 422 and "« du »" in vide.text


async def test_documente_dans_l_openapi(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    operation = schema["paths"]["/api/v1/pilotage"]["get"]
    assert operation["operationId"] == "lire_pilotage"
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Pilotage"
    }
    assert {p["name"] for p in operation["parameters"]} == {"du", "au"}
