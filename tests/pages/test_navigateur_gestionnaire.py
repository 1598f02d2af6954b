"""The back-office in a real browser: the whole loop across both roles (two browser contexts),
axe-core on every back-office page and state, and the opening form with the keyboard alone."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.services import gestionnaires
from modif_solde.services import modifications as svc
from tests.pages.conftest import COURRIEL_GESTIONNAIRE, GESTIONNAIRE, OPERATEUR
from tests.pages.navigation import choisir_identite, sans_violation, tabuler_jusqua
from tests.workflows.conftest import ServeurSmtp

COMMENTAIRE = "Le numéro du contact support diffère de celui de la pièce « MSS_RESU_TEST_TECH »."
TELEPHONE = "Numéro de téléphone du contact support de l'opérateur"


async def lien_d_invitation(smtp: ServeurSmtp, url: str, numero: str) -> str:
    """The link in the invitation e-mail of modification `numero`, once the worker sent it."""
    for _ in range(500):
        for message in smtp.boite.messages:
            if str(message["X-Modif-Solde-Cle"]).split(":")[1] == "invitation" and numero in str(
                message["Subject"]
            ):
                texte = next(p for p in message.walk() if p.get_content_type() == "text/plain")
                lien = re.search(
                    rf"{re.escape(url)}/demandes/FINMSS009266\S*", texte.get_payload(decode=True).decode()
                )
                assert lien
                return lien.group(0)
        await asyncio.sleep(0.02)
    raise AssertionError(f"aucun courriel d'invitation pour {numero}")


@pytest.fixture
async def gestion(
    navigateur: Any, factory: SessionFactory, serveur_portail: str, demande: Demande
) -> AsyncIterator[Any]:
    """The demo gestionnaire's browser context, logged in on the request page."""
    async with unit_of_work(factory) as session:
        await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
    contexte = await navigateur.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await contexte.new_page()
    await page.goto(serveur_portail + "/demandes/FINMSS009266")
    await choisir_identite(page, GESTIONNAIRE)
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Statut : En cours")
    yield page
    await contexte.close()


async def cocher(page: Any, libelle: str) -> None:
    """DSFR draws the checkbox on its label, which takes the click (as a person's would)."""
    case = page.get_by_role("checkbox", name=libelle, exact=True)
    await page.locator(f"label[for='{await case.get_attribute('id')}']").click()
    await expect(case).to_be_checked()


async def demander_une_modification(page: Any, commentaire: str) -> None:
    await page.get_by_label("Commentaire").fill(commentaire)
    await cocher(page, TELEPHONE)
    await page.get_by_role("button", name="Voir le courriel avant l'envoi").click()
    await expect(page.get_by_text(commentaire).first).to_be_visible()
    await page.get_by_role("button", name="Envoyer la demande de modification").click()
    await expect(page.get_by_text("Demande de modification envoyée")).to_be_visible()


async def test_the_whole_loop_across_both_roles(
    gestion: Any, onglet: Any, serveur_portail: str, smtp: ServeurSmtp, factory: SessionFactory
) -> None:
    page = gestion
    await sans_violation(page, "page de la demande (gestionnaire)")

    # A bad opening: refused beside the fields, the summary focused.
    await page.get_by_role("button", name="Voir le courriel avant l'envoi").click()
    await expect(page.locator("#resume-erreurs")).to_be_focused()
    await expect(page.locator("#commentaire-erreur")).to_have_text(
        "Le champ « Commentaire » est obligatoire."
    )
    await sans_violation(page, "demander une modification, erreurs affichées")

    # The preview of the invitation e-mail, then the opening.
    await page.get_by_label("Commentaire").fill(COMMENTAIRE)
    await cocher(page, TELEPHONE)
    await cocher(page, "Pièces justificatives")
    await page.get_by_role("button", name="Voir le courriel avant l'envoi").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Demander une modification de la demande FINMSS009266"
    )
    await expect(page.locator(".apercu-courriel")).to_contain_text(COMMENTAIRE)
    await sans_violation(page, "aperçu du courriel d'invitation")
    await page.get_by_role("button", name="Envoyer la demande de modification").click()
    await expect(page.get_by_text("Demande de modification envoyée")).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Statut : A modifier")
    await expect(
        page.get_by_role("link", name=re.compile("^Voir le cycle FINMSS009266M1 dans Temporal"))
    ).to_have_attribute("href", "http://127.0.0.1:8233/namespaces/default/workflows/FINMSS009266M1")
    await sans_violation(page, "page de la demande, modification ouverte (gestionnaire)")

    # The operator, in another context, follows the e-mail's link, edits and confirms.
    operateur = onglet
    await operateur.goto(await lien_d_invitation(smtp, serveur_portail, "FINMSS009266M1"))
    await choisir_identite(operateur, OPERATEUR)
    await operateur.get_by_role("link", name="Modifier", exact=True).click()
    await operateur.get_by_label(TELEPHONE).fill("06 12 34 56 78")
    await operateur.get_by_role("button", name="Enregistrer").click()
    await expect(operateur.get_by_text("Modifications enregistrées")).to_be_visible()

    # The gestionnaire sees the draft as it stands, read-only.
    await page.reload()
    brouillon = page.get_by_role("table", name="Ce que l'opérateur a modifié jusqu'ici (non confirmé)")
    await expect(brouillon).to_contain_text("06 12 34 56 78")
    await expect(page.get_by_role("textbox", name=re.compile("^" + TELEPHONE))).to_have_count(0)

    await operateur.get_by_role("link", name="Confirmer", exact=True).click()
    await operateur.get_by_role("button", name="Confirmer la modification").click()
    await expect(operateur.get_by_text("Modification confirmée")).to_be_visible()

    await page.reload()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Statut : En cours")
    await page.get_by_role("tab", name="Historique").click()
    await expect(page.get_by_role("tabpanel", name="Historique")).to_contain_text("Version 2")
    await page.get_by_role("tab", name="Version actuelle").click()
    # The tab's panel shown (DSFR switches it with a transition) before its section is opened.
    await expect(page.get_by_role("tab", name="Version actuelle")).to_have_attribute("aria-selected", "true")
    await expect(page.get_by_role("tabpanel", name="Version actuelle")).to_be_visible()
    courriels = page.get_by_role("button", name="Courriels automatiques envoyés")
    await courriels.click()
    await expect(courriels).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_text(re.compile("Envoyé le .* à operateur@")).first).to_be_visible(
        timeout=15_000
    )
    await sans_violation(page, "page de la demande, courriels ouverts (gestionnaire)")

    # Another round, withdrawn after its confirmation step.
    await demander_une_modification(page, "Deuxième tour.")
    await page.get_by_role("button", name="Retirer la demande de modification").click()
    await expect(page.locator("#motif-erreur")).to_have_text("Le champ « Motif » est obligatoire.")
    await sans_violation(page, "retirer, erreur affichée")
    await page.get_by_label("Motif").fill("Ouverte par erreur.")
    await page.get_by_role("button", name="Retirer la demande de modification").click()
    await expect(page.get_by_text("Ouverte par erreur.")).to_be_visible()
    await sans_violation(page, "étape de confirmation du retrait")
    await page.get_by_role("button", name="Confirmer le retrait").click()
    await expect(page.get_by_text("Demande de modification retirée")).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Statut : En cours")

    # Another round, extended after its confirmation step; a deadline too early is refused beside it.
    await demander_une_modification(page, "Troisième tour.")
    async with unit_of_work(factory) as session:
        m3 = await svc.charger_modification(session, "FINMSS009266M3")
    await page.get_by_label("Nouvelle échéance").fill((m3.expire_le - timedelta(days=1)).date().isoformat())
    await page.get_by_role("button", name="Prolonger l'échéance").click()
    await page.get_by_role("button", name="Confirmer la prolongation").click()
    await expect(page.get_by_role("heading", name="Prolongation impossible")).to_be_visible()
    await sans_violation(page, "prolonger, refus affiché")
    nouvelle = (m3.expire_le + timedelta(days=15)).date()
    await page.get_by_label("Nouvelle échéance").fill(nouvelle.isoformat())
    await page.get_by_role("button", name="Prolonger l'échéance").click()
    await expect(page.get_by_text("La relance, pas encore envoyée, sera décalée d'autant.")).to_be_visible()
    await sans_violation(page, "étape de confirmation de la prolongation")
    await page.get_by_role("button", name="Confirmer la prolongation").click()
    await expect(page.get_by_text("Échéance repoussée")).to_be_visible()
    await expect(page.get_by_text(f"échéance le {nouvelle:%d/%m/%Y}").first).to_be_visible()


async def test_the_opening_form_with_the_keyboard_alone(gestion: Any) -> None:
    page = gestion
    await tabuler_jusqua(page, "textbox", re.compile("^Commentaire"))
    await page.keyboard.type("Le lien de documentation ne répond pas.")
    await tabuler_jusqua(page, "checkbox", re.compile("^Lien vers le site web"))
    await page.keyboard.press("Space")
    await tabuler_jusqua(page, "button", "Voir le courriel avant l'envoi")
    await page.keyboard.press("Enter")
    await expect(page.locator(".apercu-courriel")).to_contain_text("Le lien de documentation ne répond pas.")
    await tabuler_jusqua(page, "button", "Envoyer la demande de modification")
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Demande de modification envoyée")).to_be_visible()
    await tabuler_jusqua(page, "textbox", re.compile("^Nouvelle échéance"))
    await tabuler_jusqua(page, "button", "Retirer la demande de modification")


async def test_the_queue_in_the_browser_and_with_the_keyboard_alone(
    gestion: Any, serveur_portail: str
) -> None:
    page = gestion
    await demander_une_modification(page, "Premier tour.")
    await page.goto(serveur_portail + "/demandes")
    await expect(page.get_by_role("heading", level=1)).to_have_text("File de travail")
    await expect(page.get_by_role("row", name=re.compile("FINMSS009266"))).to_contain_text("FINMSS009266M1")
    await sans_violation(page, "file de travail")

    await page.get_by_label("Échéance avant le").fill("1999-01-01")
    await page.get_by_role("button", name="Filtrer").click()
    await expect(page.get_by_text("Aucune demande ne correspond à ces critères.")).to_be_visible()
    await sans_violation(page, "file de travail, aucun résultat")
    await page.goto(serveur_portail + "/demandes?statut=perdu")
    await expect(page.locator("#statut-erreur")).to_be_visible()
    await sans_violation(page, "file de travail, filtre invalide")

    # Keyboard only: choose a status, search, filter, open the request.
    await page.goto(serveur_portail + "/demandes")
    await tabuler_jusqua(page, "combobox", "Statut")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    await expect(page.get_by_label("Statut")).to_have_value("a_modifier")
    await tabuler_jusqua(page, "searchbox", re.compile("^Rechercher"))
    await page.keyboard.type("voiture")
    await tabuler_jusqua(page, "button", "Filtrer")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"statut=a_modifier.*recherche=voiture"))
    await tabuler_jusqua(page, "link", "FINMSS009266")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_contain_text(
        "FINMSS009266 - Solde - Statut : A modifier"
    )
