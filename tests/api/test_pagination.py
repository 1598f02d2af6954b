"""Pagination of the e-mail log and of the history: `limite` and an opaque `curseur`, answered
as `{"elements": [...], "suivant": …}`; the request page embeds the first page of each."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande, Historique
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_idempotence import courriels
from tests.api.test_parcours import ouvrir, probleme
from tests.workflows.conftest import ServeurSmtp

DEMANDE = "/api/v1/demandes/FINMSS009266"


async def parcourir(http: httpx.AsyncClient, chemin: str, entetes: dict[str, str], limite: int) -> list[Any]:
    """Every element, page after page, each page at most `limite` long."""
    elements: list[Any] = []
    params: dict[str, Any] = {"limite": limite}
    for _ in range(100):
        r = await http.get(chemin, params=params, headers=entetes)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"elements", "suivant"} and len(page["elements"]) <= limite
        elements += page["elements"]
        if page["suivant"] is None:
            return elements
        params = {"limite": limite, "curseur": page["suivant"]}
    raise AssertionError("la pagination ne finit pas")


async def test_courriels_page_par_page(http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp) -> None:
    await ouvrir(http)
    assert (
        await http.post("/api/v1/modifications/FINMSS009266M1/confirmer", headers=OPERATEUR)
    ).status_code == 200
    await courriels(http, 3)
    tous = await parcourir(http, f"{DEMANDE}/courriels", GESTIONNAIRE, 1)
    assert [c["type"] for c in tous] == ["invitation", "confirmation", "confirmation_gestionnaires"]
    assert [c["type"] for c in await parcourir(http, f"{DEMANDE}/courriels", OPERATEUR, 1)] == [
        "invitation",
        "confirmation",
    ]
    premiere = (await http.get(f"{DEMANDE}/courriels", params={"limite": 2}, headers=GESTIONNAIRE)).json()
    assert [c["id"] for c in premiere["elements"]] == [c["id"] for c in tous[:2]]
    assert premiere["suivant"] is not None


async def test_historique_et_page_de_la_demande(
    http: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    assert demande.id is not None
    async with unit_of_work(factory) as session:
        for i in range(60):
            session.add(
                Historique(
                    demande_id=demande.id,
                    version=1,
                    champ=f"informations.essai_{i}",
                    nouvelle_valeur=str(i),
                    applique_le=datetime.now(UTC),
                )
            )
    page = (await http.get(DEMANDE, headers=OPERATEUR)).json()
    for cle in ("historique", "courriels"):
        assert set(page[cle]) == {"elements", "suivant"}
    premiere = page["historique"]
    assert len(premiere["elements"]) == 50 and premiere["suivant"] is not None
    suite = (
        await http.get(f"{DEMANDE}/historique", params={"curseur": premiere["suivant"]}, headers=OPERATEUR)
    ).json()
    assert len(suite["elements"]) == 11 and suite["suivant"] is None
    tous = await parcourir(http, f"{DEMANDE}/historique", GESTIONNAIRE, 7)
    assert tous == premiere["elements"] + suite["elements"]
    assert tous[0]["champ"] == "demande"


async def test_curseur_ou_limite_invalide_422(http: httpx.AsyncClient, demande: Demande) -> None:
    for chemin in ("courriels", "historique"):
        for params in ({"curseur": "n'importe quoi"}, {"curseur": "W10"}, {"limite": 0}, {"limite": 1000}):
            r = await http.get(f"{DEMANDE}/{chemin}", params=params, headers=GESTIONNAIRE)
            champ = next(iter(params))
            assert probleme(r, 422)["errors"][0]["champ"] == champ, r.text
    probleme(await http.get("/api/v1/demandes/FINMSS000000/historique", headers=GESTIONNAIRE), 404)
