"""How many SQL statements the API's read routes send, whatever the request holds: a handful,
the same for 1 or 10 documents, history rows, e-mails and modifications (no statement per
element). Counted with compter_requetes on the app's own engines, everything included (the
transaction's BEGIN that SQLite is sent as SQL, the operator's SIRET scope)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.db import SessionFactory, compter_requetes
from modif_solde.services.stockage import Stockage
from tests.api.conftest import GESTIONNAIRE, OPERATEUR, SECRET
from tests.lecture_riche import creer_demande_riche

# The bounds, everything the route sends counted.
PAGE_MAX = 4  # the request, documents, open modification (one), history, e-mails (+ SQLite's BEGIN)
LISTE_MAX = 2  # the page of rows with their count (+ SQLite's BEGIN)
PETITE, GRANDE = "FINMSS009266", "FINMSS009300"


@pytest.fixture
async def appli(engine: AsyncEngine, stockage: Stockage, factory: SessionFactory) -> AsyncIterator[FastAPI]:
    # Reading routes only: the Temporal client is never called (a lazy one, never connected).
    app = create_app(
        Settings(
            DATABASE_URL=engine.url.render_as_string(hide_password=False),
            JWT_SECRET=SECRET,
            STORAGE_DIR=stockage.racine,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(appli: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=appli, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def deux_demandes(factory: SessionFactory, stockage: Stockage, seed: dict[str, Any]) -> None:
    """The same request with 1, then with 10, closed modifications (documents, history, e-mails)."""
    await creer_demande_riche(factory, stockage, seed, n=1)
    grande = copy.deepcopy(seed)
    grande["numero"] = GRANDE
    await creer_demande_riche(factory, stockage, grande, n=10)


async def compter(
    appli: FastAPI, client: httpx.AsyncClient, chemin: str, entetes: dict[str, str]
) -> tuple[int, Any]:
    with compter_requetes(appli.state.engine, appli.state.engine_lecture) as requetes:
        reponse = await client.get(chemin, headers=entetes)
    assert reponse.status_code == 200, reponse.text
    return len(requetes), reponse.json()


@pytest.mark.parametrize("qui", ["operateur", "gestionnaire"])
async def test_the_request_page_takes_a_few_statements_whatever_it_holds(
    appli: FastAPI,
    client: httpx.AsyncClient,
    factory: SessionFactory,
    stockage: Stockage,
    seed: dict[str, Any],
    qui: str,
) -> None:
    await deux_demandes(factory, stockage, seed)
    entetes = OPERATEUR if qui == "operateur" else GESTIONNAIRE
    par_courriel = 1 if qui == "operateur" else 2  # the gestionnaires' own notice: theirs only
    nombres = {}
    for numero, n in [(PETITE, 1), (GRANDE, 10)]:
        nombres[n], page = await compter(appli, client, f"/api/v1/demandes/{numero}", entetes)
        # Everything is there: the import's 4 documents and one per modification, 3 history rows
        # per closed one, its e-mails, the open modification with its draft and its document.
        assert len(page["pieces"]) == 4 + n + 1
        assert len(page["historique"]["elements"]) == 1 + 3 * n  # the import's, then each round's
        assert len(page["courriels"]["elements"]) == par_courriel * (n + 1)
        ouverte = page["modification_ouverte"]
        assert ouverte["numero"] == f"{numero}M{n + 1}"
        assert [p["nom_fichier"] for p in ouverte["pieces_ajoutees"]] == [f"piece-{n + 1}.pdf"]
        assert ouverte["changements"][0]["nouvelle_valeur"] == f"01 02 03 04 {n + 1:02d}"
        assert {p["origine"] for p in page["pieces"]} == {"import"} | {
            f"{numero}M{r}" for r in range(1, n + 2)
        }
        assert nombres[n] <= PAGE_MAX
    assert nombres[1] == nombres[10]


@pytest.mark.parametrize("qui", ["operateur", "gestionnaire"])
async def test_the_list_takes_a_few_statements_whatever_it_holds(
    appli: FastAPI,
    client: httpx.AsyncClient,
    factory: SessionFactory,
    stockage: Stockage,
    seed: dict[str, Any],
    qui: str,
) -> None:
    entetes = OPERATEUR if qui == "operateur" else GESTIONNAIRE
    await creer_demande_riche(factory, stockage, seed, n=1)
    une, liste = await compter(appli, client, "/api/v1/demandes", entetes)
    assert [d["numero"] for d in liste["demandes"]] == [PETITE] and liste["total"] == 1
    grande = copy.deepcopy(seed)
    grande["numero"] = GRANDE
    await creer_demande_riche(factory, stockage, grande, n=10)
    deux, liste = await compter(appli, client, "/api/v1/demandes", entetes)
    assert liste["total"] == 2
    assert [d["modification_ouverte"]["numero"] for d in liste["demandes"]] == [f"{PETITE}M2", f"{GRANDE}M11"]
    assert une == deux <= LISTE_MAX
    # A page past the end still says how many there are (one more statement, to count).
    loin, liste = await compter(appli, client, "/api/v1/demandes?decalage=5", entetes)
    assert liste == {"total": 2, "demandes": []}
    assert loin <= LISTE_MAX + 1
