"""A closed modification's page, in a real browser: what the round changed, from what."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from modif_solde.models.tables import Demande
from tests.pages.conftest import OPERATEUR
from tests.pages.navigation import choisir_identite
from tests.pages.test_navigateur import ouvrir_modification
from tests.workflows.conftest import ServeurSmtp


async def test_a_confirmed_modification_shows_the_value_from_before_the_round(
    serveur_portail: str, onglet: Any, smtp: ServeurSmtp, demande: Demande
) -> None:
    page = onglet
    await ouvrir_modification(serveur_portail, smtp, "FINMSS009266M1")
    await page.goto(serveur_portail + "/modifications/FINMSS009266M1")
    await choisir_identite(page, OPERATEUR)
    telephone = page.get_by_label("Numéro de téléphone du contact support de l'opérateur")
    await telephone.fill("02 62 40 12 34")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(
        page.get_by_text("Valeur modifiée. Valeur avant modification : 06 00 00 00 00")
    ).to_be_visible()
    await page.get_by_role("link", name="Confirmer", exact=True).click()
    await page.get_by_role("button", name="Confirmer la modification").click()
    await expect(page.get_by_text("Modification confirmée")).to_be_visible()

    await page.goto(serveur_portail + "/modifications/FINMSS009266M1")
    await expect(page.get_by_text("Cette modification est close")).to_be_visible()
    await expect(telephone).to_have_value("02 62 40 12 34")
    groupe = page.locator("#groupe-contact_support_telephone")
    await expect(groupe).to_contain_text("Valeur avant modification : 06 00 00 00 00")
    await expect(groupe).not_to_contain_text("Valeur avant modification : 02 62 40 12 34")
    await expect(groupe).not_to_contain_text("Valeur actuelle de la demande : 02 62 40 12 34")
    await expect(groupe).to_contain_text("Valeur avant cette modification : 06 00 00 00 00")
