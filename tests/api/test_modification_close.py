"""GET /modifications/{numero} after the cycle: a confirmed modification still shows the value
from before beside the value it applied."""

from __future__ import annotations

import httpx

from modif_solde.models.tables import Demande
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_parcours import ouvrir


async def test_apres_confirmation_l_ancienne_et_la_nouvelle_valeur(
    http: httpx.AsyncClient, demande: Demande
) -> None:
    await ouvrir(http)
    r = await http.patch(
        "/api/v1/modifications/FINMSS009266M1/brouillon",
        json={"contact_support_telephone": "0262 16 12 34"},
        headers=OPERATEUR,
    )
    assert r.status_code == 200, r.text
    attendu = [
        {
            "champ": "contact_support_telephone",
            "valeur_actuelle": "06 00 00 00 00",
            "nouvelle_valeur": "02 62 16 12 34",
        }
    ]
    assert r.json()["changements"] == attendu
    r = await http.post("/api/v1/modifications/FINMSS009266M1/confirmer", headers=OPERATEUR)
    assert r.status_code == 200, r.text
    for entetes in (OPERATEUR, GESTIONNAIRE):
        vue = (await http.get("/api/v1/modifications/FINMSS009266M1", headers=entetes)).json()
        assert vue["statut"] == "confirmee"
        assert vue["changements"] == attendu
