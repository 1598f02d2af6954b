"""The steering dashboard in a real browser, as a gestionnaire: axe with the page's scripts
running and without them, a number followed to the filtered queue, the CSV and ODS downloaded."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.services import gestionnaires
from modif_solde.services.export import COLONNES
from tests.pages.conftest import COURRIEL_GESTIONNAIRE, GESTIONNAIRE
from tests.pages.navigation import choisir_identite, sans_violation
from tests.pilotage import jeu

MARS = "/pilotage?du=2026-03-01&au=2026-03-31"


async def connecter(navigateur: Any, url: str, scripts: bool) -> Any:
    contexte = await navigateur.new_context(
        locale="fr-FR", viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    if not scripts:
        # The page's own scripts never run (DSFR's included), as with JavaScript off; axe, run by
        # the test itself, still can.
        await contexte.route(f"{url}/**/*.js", lambda route: route.abort())
    page = await contexte.new_page()
    await page.goto(url + MARS)
    await choisir_identite(page, GESTIONNAIRE)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pilotage")
    return page


@pytest.fixture
async def gestion(
    navigateur: Any, factory: SessionFactory, serveur_portail: str, demande: Demande
) -> AsyncIterator[str]:
    await jeu.construire(factory, demande)
    async with unit_of_work(factory) as session:
        await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
    yield serveur_portail


async def test_le_tableau_de_bord_dans_le_navigateur(navigateur: Any, gestion: str, tmp_path: Path) -> None:
    page = await connecter(navigateur, gestion, scripts=True)
    try:
        await page.wait_for_load_state("networkidle")
        assert await page.evaluate("document.documentElement.hasAttribute('data-fr-js')")
        await sans_violation(page, "pilotage, avec JavaScript")
        capture = os.environ.get("MODIF_SOLDE_CAPTURE_PILOTAGE")
        await page.screenshot(path=capture or str(tmp_path / "pilotage.png"), full_page=True)

        # The table beside the bars: the number of confirmed ones, followed to the queue.
        tableau = page.get_by_role("table", name="Modifications ouvertes et closes par issue")
        await tableau.get_by_role("link", name="2 modifications confirmées : voir la file").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("File de travail")
        await expect(page.get_by_text("1 demande.")).to_be_visible()
        await expect(page.get_by_role("link", name="FINMSS009266", exact=True)).to_be_visible()
        await expect(
            page.get_by_text("Depuis le pilotage : modifications confirmées du 01/03/2026 au 31/03/2026")
        ).to_be_visible()
        await sans_violation(page, "file filtrée depuis le pilotage")

        async with page.expect_download() as telechargement:
            await page.get_by_role("link", name="Exporter en CSV").click()
        fichier = await (await telechargement.value).path()
        contenu = await asyncio.to_thread(Path(fichier).read_bytes)
        assert contenu.startswith("\ufeff".encode())
        lignes = list(csv.reader(io.StringIO(contenu.decode("utf-8-sig")), delimiter=";"))
        assert tuple(lignes[0]) == COLONNES and [ligne[0] for ligne in lignes[1:]] == ["FINMSS009266"]
        assert lignes[1][COLONNES.index("Opérateur")] == "SCI VOITURE"
        assert (
            lignes[1][COLONNES.index("Issue")] == "Retirée par le gestionnaire"
        )  # its last round, M5, withdrawn on 9 April
        assert lignes[1][COLONNES.index("Clôturée le")] == "09/04/2026"

        async with page.expect_download() as telechargement:
            await page.get_by_role("link", name="Exporter en ODS").click()
        ods = zipfile.ZipFile(await (await telechargement.value).path())
        assert ods.read("mimetype") == b"application/vnd.oasis.opendocument.spreadsheet"
        assert (
            "FINMSS009266" in ods.read("content.xml").decode()
            and "Clôturée le" in ods.read("content.xml").decode()
        )
    finally:
        await page.context.close()


async def test_le_tableau_de_bord_sans_javascript(navigateur: Any, gestion: str) -> None:
    page = await connecter(navigateur, gestion, scripts=False)
    try:
        assert not await page.evaluate("document.documentElement.hasAttribute('data-fr-js')")
        # Every figure's table and its links are there without any script.
        await expect(page.get_by_role("table")).to_have_count(5)
        await expect(page.get_by_role("figure")).to_have_count(5)
        await sans_violation(page, "pilotage, sans JavaScript")
        await page.get_by_role("link", name="1 modifications retirées : voir la file").click()
        await expect(page.get_by_role("link", name="FINMSS009300", exact=True)).to_be_visible()
    finally:
        await page.context.close()
