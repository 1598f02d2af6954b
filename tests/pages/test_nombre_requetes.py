"""How many SQL statements the portal's read pages send, whatever the request holds: a bound
each (below), the same for 1 or 10 documents, history rows, e-mails and modifications. Counted
with compter_requetes on the app's own engines, everything included: SQLite's BEGIN, and the
session's lookup with the check, at every page, that a gestionnaire is still on the service's
list (one statement, in the page's own read transaction)."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modif_solde.db import SessionFactory, compter_requetes, unit_of_work
from modif_solde.services import gestionnaires
from modif_solde.services.stockage import Stockage
from tests.lecture_riche import creer_demande_riche
from tests.pages.conftest import COURRIEL_GESTIONNAIRE, GESTIONNAIRE, OPERATEUR, se_connecter

PETITE, GRANDE = "FINMSS009266", "FINMSS009300"
# BEGIN (SQLite), the session read with the gestionnaires' list (one statement), then the
# page's own statements.
BORNES = {
    # the request with its documents and open modification, its history, its e-mails; for a
    # gestionnaire, every round of modification too; the operators' reports
    "demande": {"operateur": 6, "gestionnaire": 7},
    # the request page's reads (the modification asked for is the open one)
    "modification ouverte": {"operateur": 5, "gestionnaire": 5},
    # and that modification, and what it applied (from the history)
    "modification close": {"operateur": 7, "gestionnaire": 7},
    # the operator's: the rows with their count; the gestionnaires' work queue: the open
    # modifications counted, the others counted, a page of each, their rows, which of them
    # have a report waiting
    "liste": {"operateur": 3, "gestionnaire": 8},
}


@pytest.fixture
async def portail(appli_lecture: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=appli_lecture, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def compter(appli_lecture: FastAPI, portail: httpx.AsyncClient, chemin: str) -> tuple[int, str]:
    with compter_requetes(appli_lecture.state.engine, appli_lecture.state.engine_lecture) as requetes:
        reponse = await portail.get(chemin)
    assert reponse.status_code == 200, reponse.text
    return len(requetes), reponse.text


@pytest.mark.parametrize("qui", ["operateur", "gestionnaire"])
async def test_each_read_page_takes_a_bounded_number_of_statements_whatever_it_holds(
    appli_lecture: FastAPI,
    portail: httpx.AsyncClient,
    factory: SessionFactory,
    stockage: Stockage,
    seed: dict[str, Any],
    qui: str,
) -> None:
    if qui == "gestionnaire":
        async with unit_of_work(factory) as session:
            await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
    await se_connecter(portail, OPERATEUR if qui == "operateur" else GESTIONNAIRE)
    await creer_demande_riche(factory, stockage, seed, n=1)
    liste_une, html = await compter(appli_lecture, portail, "/demandes")
    assert PETITE in html
    grande = copy.deepcopy(seed)
    grande["numero"] = GRANDE
    await creer_demande_riche(factory, stockage, grande, n=10)
    liste_deux, html = await compter(appli_lecture, portail, "/demandes")
    assert PETITE in html and GRANDE in html
    assert liste_une == liste_deux <= BORNES["liste"][qui]

    nombres: dict[str, list[int]] = {"demande": [], "modification ouverte": [], "modification close": []}
    for numero, n in [(PETITE, 1), (GRANDE, 10)]:
        compte, html = await compter(appli_lecture, portail, f"/demandes/{numero}")
        nombres["demande"].append(compte)
        # Every closed round's document and its e-mails are on the page.
        assert all(f"piece-{r}.pdf" in html for r in range(1, n + 2))
        assert html.count("Sujet ") >= n + 1
        if qui == "gestionnaire":
            assert all(f"{numero}M{r}" in html for r in range(1, n + 2))
            assert f"Nom {n}" in html  # what the last closed round applied
        compte, html = await compter(appli_lecture, portail, f"/modifications/{numero}M{n + 1}")
        nombres["modification ouverte"].append(compte)
        assert f"01 02 03 04 {n + 1:02d}" in html  # the draft
        compte, html = await compter(appli_lecture, portail, f"/modifications/{numero}M{n}")
        nombres["modification close"].append(compte)
        assert f"nouveau {n}" in html  # what it applied
    for page, (une, dix) in nombres.items():
        assert une == dix <= BORNES[page][qui], (page, une, dix)
