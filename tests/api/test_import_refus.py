"""Import refusals over HTTP: a number already recorded gets one answer, whoever holds it, and
two imports of one number at once give one 201 and one 409, never a 500."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx

from modif_solde.models.tables import Demande
from tests.api.conftest import AUTRE_OPERATEUR, AUTRE_SIRET, GESTIONNAIRE, OPERATEUR


def _a_l_autre_operateur(donnees: dict[str, Any]) -> dict[str, Any]:
    autre = copy.deepcopy(donnees)
    autre["operateur"] |= {"siret": AUTRE_SIRET, "denomination": "AUTRE OPÉRATEUR"}
    return autre


async def test_le_refus_ne_dit_pas_a_qui_est_le_numero(
    http: httpx.AsyncClient, demande: Demande, donnees: dict[str, Any]
) -> None:
    le_sien = await http.post("/api/v1/demandes", json=donnees, headers=OPERATEUR)
    celui_d_un_autre = await http.post(
        "/api/v1/demandes", json=_a_l_autre_operateur(donnees), headers=AUTRE_OPERATEUR
    )
    assert le_sien.status_code == celui_d_un_autre.status_code == 409
    assert le_sien.content == celui_d_un_autre.content
    assert le_sien.headers["content-type"] == celui_d_un_autre.headers["content-type"]
    corps = le_sien.json()
    assert corps["detail"] == (
        "Le numéro de demande FINMSS009266 ne peut pas être importé : il est déjà enregistré."
    )
    assert "SCI VOITURE" not in le_sien.text and "50961588600025" not in le_sien.text


async def test_deux_imports_simultanes_un_201_un_409(
    http: httpx.AsyncClient, donnees: dict[str, Any], factory: Any
) -> None:
    donnees["numero"] = "FINMSS000901"
    donnees["pieces"] = donnees["pieces"][:1]
    reponses = await asyncio.gather(
        http.post("/api/v1/demandes", json=donnees, headers=OPERATEUR),
        http.post("/api/v1/demandes", json=donnees, headers=GESTIONNAIRE),
    )
    assert sorted(r.status_code for r in reponses) == [201, 409], [r.text for r in reponses]
    perdant = next(r for r in reponses if r.status_code == 409)
    assert perdant.headers["content-type"].startswith("application/problem+json")
    assert "déjà enregistré" in perdant.json()["detail"]
