"""The modification page in a real browser: the expected items ticked as the operator works,
and, once closed, what the round changed and from what."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from modif_solde.models.tables import Demande
from tests.pages.conftest import OPERATEUR
from tests.pages.navigation import choisir_identite, sans_violation
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


async def test_the_expected_items_tick_as_the_operator_works(
    serveur_portail: str, onglet: Any, smtp: ServeurSmtp, demande: Demande, pdf: bytes
) -> None:
    """The gestionnaire expects the phone and a document (ouvrir_modification)."""
    page = onglet
    await ouvrir_modification(serveur_portail, smtp, "FINMSS009266M1")
    await page.goto(serveur_portail + "/modifications/FINMSS009266M1")
    await choisir_identite(page, OPERATEUR)
    attendus = page.locator("#elements-attendus")
    telephone_attendu = attendus.get_by_role("listitem").filter(has_text="Numéro de téléphone")
    pieces_attendues = attendus.get_by_role("listitem").filter(has_text="Pièces justificatives")
    await expect(telephone_attendu).to_have_text(re.compile(r": à faire$"))
    await expect(pieces_attendues).to_have_text(re.compile(r": à faire$"))
    await sans_violation(page, "page de modification, éléments attendus")

    # Saved as it changes (JavaScript): the list ticks without a page load.
    await page.wait_for_load_state("networkidle")
    telephone = page.get_by_label("Numéro de téléphone du contact support de l'opérateur")
    await telephone.fill("02 62 40 12 34")
    await telephone.press("Tab")
    await expect(telephone_attendu).to_have_text(re.compile(r": fait$"))
    await expect(pieces_attendues).to_have_text(re.compile(r": à faire$"))

    # « Confirmer » says what is still expected, and lets the operator go back or confirm.
    await page.get_by_role("link", name="Confirmer", exact=True).click()
    alerte = page.locator("#attendus-restants")
    await expect(alerte).to_contain_text("Des éléments attendus par le gestionnaire n'ont pas été modifiés")
    await expect(alerte.get_by_role("listitem")).to_have_text(["Pièces justificatives"])
    await sans_violation(page, "étape de confirmation, éléments restants")
    await page.get_by_role("link", name="Revenir à la modification").click()

    await page.get_by_label("Type de pièce complémentaire").select_option("MSS_RESU_TEST_TECH")
    await page.get_by_label("Fichier à ajouter").set_input_files(
        files=[{"name": "capture.pdf", "mimeType": "application/pdf", "buffer": pdf}]
    )
    await page.get_by_role("button", name="Importer").click()
    await expect(page.get_by_text("La pièce capture.pdf a été ajoutée")).to_be_visible()
    await expect(pieces_attendues).to_have_text(re.compile(r": fait$"))
    await page.get_by_role("link", name="Confirmer", exact=True).click()
    await expect(page.get_by_text("Vérifiez vos modifications avant de confirmer.")).to_be_visible()
    await expect(page.locator("#attendus-restants")).to_have_count(0)
    await page.get_by_role("button", name="Confirmer la modification").click()
    await expect(page.get_by_text("Modification confirmée")).to_be_visible()
