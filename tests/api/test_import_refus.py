"""Import refusals over HTTP: a number already recorded gets one answer, whoever holds it, and
two imports of one number at once give one 201 and one 409, never a 500."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import httpx
import pytest

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


async def test_chaque_import_refuse_est_journalise_avec_son_appelant(
    http: httpx.AsyncClient, demande: Demande, donnees: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The answer cannot hide that a number exists (README): the log shows who asks for which
    numbers, so that an enumeration is seen."""
    caplog.set_level(logging.INFO)
    autre = _a_l_autre_operateur(donnees)
    assert (await http.post("/api/v1/demandes", json=autre, headers=AUTRE_OPERATEUR)).status_code == 409
    assert (await http.post("/api/v1/demandes", json=autre, headers=OPERATEUR)).status_code == 403
    valide = {**donnees, "numero": "FINMSS000777"}
    assert (await http.post("/api/v1/demandes", json=valide, headers=OPERATEUR)).status_code == 201

    refus = [r for r in caplog.records if r.getMessage().startswith("import refusé")]
    assert [(r.numero, r.appelant, r.role, r.siret, r.statut) for r in refus] == [  # type: ignore[attr-defined]
        ("FINMSS009266", "operateur.test", "operateur", AUTRE_SIRET, 409),
        ("FINMSS009266", "operateur.test", "operateur", "50961588600025", 403),
    ]
    assert refus[0].levelno == logging.WARNING
