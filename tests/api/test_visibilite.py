"""What each role sees: the operator sees neither who opened the modification, nor the
withdrawal's reason, nor the gestionnaires' notice in the e-mail log; a gestionnaire sees all."""

from __future__ import annotations

import json
from typing import Any

import httpx

from modif_solde.models.tables import Demande
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_idempotence import courriels
from tests.api.test_parcours import ouvrir
from tests.workflows.conftest import ServeurSmtp

M1 = "/api/v1/modifications/FINMSS009266M1"
MOTIF = "Doublon repéré par le contrôle interne"


async def journal(http: httpx.AsyncClient, entetes: dict[str, str]) -> list[dict[str, Any]]:
    corps: Any = (await http.get("/api/v1/demandes/FINMSS009266/courriels", headers=entetes)).json()
    return list(corps["elements"] if isinstance(corps, dict) else corps)


async def test_modification_ouverte_qui_l_a_ouverte(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    operateur = (await http.get(M1, headers=OPERATEUR)).json()
    assert operateur["ouverte_par"] is None
    page = (await http.get("/api/v1/demandes/FINMSS009266", headers=OPERATEUR)).json()
    assert page["modification_ouverte"]["ouverte_par"] is None
    assert "gestionnaire.test" not in json.dumps(page)
    gestionnaire = (await http.get(M1, headers=GESTIONNAIRE)).json()
    assert gestionnaire["ouverte_par"] == "gestionnaire.test"
    page = (await http.get("/api/v1/demandes/FINMSS009266", headers=GESTIONNAIRE)).json()
    assert page["modification_ouverte"]["ouverte_par"] == "gestionnaire.test"


async def test_retrait_le_motif_reste_aux_gestionnaires(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    r = await http.post(f"{M1}/retirer", json={"motif": MOTIF}, headers=GESTIONNAIRE)
    assert r.status_code == 200, r.text
    assert MOTIF in r.json()["issue"]
    operateur = (await http.get(M1, headers=OPERATEUR)).json()
    assert operateur["statut"] == "retiree"
    assert operateur["issue"] == "Retirée par les gestionnaires : la demande est restée inchangée."
    assert MOTIF not in json.dumps(operateur) and "gestionnaire.test" not in json.dumps(operateur)
    assert MOTIF in (await http.get(M1, headers=GESTIONNAIRE)).json()["issue"]
    await courriels(http, 2)
    assert all(MOTIF not in json.dumps(c) for c in await journal(http, OPERATEUR))


async def test_journal_des_courriels_sans_l_avis_aux_gestionnaires(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    r = await http.post(f"{M1}/confirmer", headers=OPERATEUR)
    assert r.status_code == 200, r.text
    assert r.json()["issue"] == "Confirmée : les changements ont été appliqués."
    await courriels(http, 3)
    assert [c["type"] for c in await journal(http, GESTIONNAIRE)] == [
        "invitation",
        "confirmation",
        "confirmation_gestionnaires",
    ]
    assert [c["type"] for c in await journal(http, OPERATEUR)] == ["invitation", "confirmation"]
    page = (await http.get("/api/v1/demandes/FINMSS009266", headers=OPERATEUR)).json()
    embarques: Any = page["courriels"]
    types = [c["type"] for c in (embarques["elements"] if isinstance(embarques, dict) else embarques)]
    assert types == ["invitation", "confirmation"]
    assert (await http.get(M1, headers=GESTIONNAIRE)).json()["issue"].startswith("Confirmée : 0 champ(s)")
