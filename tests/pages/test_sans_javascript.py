"""With JavaScript off, every page and state of both roles is read and used: what a person must
read there is drawn on the screen (not merely in the HTML), every action a post/redirect/get."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from modif_solde.db import SessionFactory
from modif_solde.models.tables import Demande
from tests.pages.conftest import OPERATEUR
from tests.pages.navigation import choisir_identite
from tests.pages.parcours import Parcours, parcourir, vu
from tests.workflows.conftest import ServeurSmtp


async def test_every_page_and_state_reads_and_works_without_javascript(
    serveur_portail: str,
    navigateur: Any,
    smtp: ServeurSmtp,
    factory: SessionFactory,
    demande: Demande,
    pdf: bytes,
) -> None:
    parcours = Parcours()
    await parcourir(parcours, navigateur, serveur_portail, smtp, factory, pdf)
    assert len(parcours.pages) >= 30, sorted(parcours.pages)


async def test_on_a_phone_without_javascript_the_header_s_tools_stay_in_the_page(
    serveur_portail: str, navigateur: Any, demande: Demande
) -> None:
    # The « Menu » button that holds them on small screens needs DSFR's script.
    contexte = await navigateur.new_context(
        java_script_enabled=False, locale="fr-FR", viewport={"width": 375, "height": 800}
    )
    page = await contexte.new_page()
    try:
        await page.goto(serveur_portail + "/demandes/FINMSS009266")
        await choisir_identite(page, OPERATEUR)
        await vu(page, page.get_by_text("DSR-MSS-MSS-Va1"), "page de la demande sur un téléphone")
        await expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        deconnexion = page.get_by_role("button", name="Se déconnecter")
        await vu(page, deconnexion, "en-tête sur un téléphone")
        await deconnexion.click()
        await page.get_by_role("button").first.click()
        await expect(page.get_by_role("link", name="Se connecter").first).to_be_visible()
    finally:
        await contexte.close()
