"""The guide's tour in a real browser (Debian's Chromium), axe-core on every page and state,
and the same tour with the keyboard alone."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
from playwright.async_api import expect

from modif_solde.models.tables import Demande
from tests.pages.conftest import OPERATEUR
from tests.pages.navigation import choisir_identite, sans_violation, tabuler_jusqua
from tests.pages.test_modification import GESTION
from tests.workflows.conftest import ServeurSmtp

COMMENTAIRE = "Le numéro du contact support diffère de celui de la pièce « MSS_RESU_TEST_TECH »."


async def ouvrir_modification(url: str, smtp: ServeurSmtp, numero: str) -> str:
    """The gestionnaire opens a modification (API); returns the invitation e-mail's link."""
    async with httpx.AsyncClient(base_url=url) as api:
        r = await api.post(
            "/api/v1/demandes/FINMSS009266/modifications",
            json={"commentaire": COMMENTAIRE, "champs": ["contact_support_telephone", "pieces"]},
            headers=GESTION,
        )
        assert r.status_code == 201, r.text
    for _ in range(500):
        for message in smtp.boite.messages:
            if str(message["X-Modif-Solde-Cle"]).split(":")[1] == "invitation" and numero in str(
                message["Subject"]
            ):
                texte = next(p for p in message.walk() if p.get_content_type() == "text/plain")
                corps = texte.get_payload(decode=True).decode()
                lien = re.search(rf"{re.escape(url)}/demandes/FINMSS009266\S*", corps)
                assert lien, corps
                return lien.group(0)
        await asyncio.sleep(0.02)
    raise AssertionError("aucun courriel d'invitation")


async def test_the_guide_s_tour_in_the_browser(
    serveur_portail: str, onglet: Any, smtp: ServeurSmtp, demande: Demande, pdf: bytes
) -> None:
    page = onglet
    await page.goto(serveur_portail + "/")
    await expect(page.get_by_role("link", name="Se connecter").first).to_be_visible()
    await sans_violation(page, "accueil")

    # The invitation e-mail's link; logged out, it goes through the provider and comes back.
    lien = await ouvrir_modification(serveur_portail, smtp, "FINMSS009266M1")
    await page.goto(lien)
    await choisir_identite(page, OPERATEUR)
    await expect(page).to_have_url(lien)
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Détails de la demande numéro FINMSS009266 - Solde - Statut : A modifier - Déposée le 05/06/2023"
    )
    await expect(
        page.get_by_text("Votre demande de solde nécessite des modifications de votre part.")
    ).to_be_visible()
    await sans_violation(page, "page de la demande")
    await page.wait_for_load_state("networkidle")
    for section in (
        "Informations de la demande",
        "Coordonnées bancaires",
        "Pièces justificatives",
        "Courriels automatiques envoyés",
    ):
        await page.get_by_role("button", name=section).click()
        await expect(page.get_by_role("button", name=section)).to_have_attribute("aria-expanded", "true")
    await page.get_by_text("Lire le courriel").first.click()
    await sans_violation(page, "page de la demande, sections ouvertes")

    await page.get_by_role("link", name="Modifier", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Modifier une demande de solde MSS")
    await expect(page.get_by_text(COMMENTAIRE)).to_be_visible()
    await sans_violation(page, "page de modification")

    # Edit: the changed value is green, and said in words with the former value.
    telephone = page.get_by_label("Numéro de téléphone du contact support de l'opérateur")
    await telephone.fill("06 12 34 56 78")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_text("Modifications enregistrées")).to_be_visible()
    await expect(telephone).to_have_value("06 12 34 56 78")
    await expect(page.locator("#groupe-contact_support_telephone")).to_have_class(
        re.compile("fr-input-group--valid")
    )
    await expect(telephone).to_have_css("color", "rgb(24, 117, 60)")
    await expect(
        page.get_by_text("Valeur modifiée. Valeur avant modification : 06 00 00 00 00")
    ).to_be_visible()
    await sans_violation(page, "page de modification, valeur modifiée")

    # Break a rule: refused beside the field, the summary gets the focus, no confirmation.
    courriel = page.get_by_label("Adresse mail du contact support de l'opérateur")
    ancien_courriel = await courriel.input_value()
    await courriel.fill("pas-une-adresse")
    await page.get_by_role("button", name="Enregistrer").click()
    resume = page.locator("#resume-erreurs")
    await expect(resume).to_be_focused()
    await expect(courriel).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#contact_support_courriel-erreur")).to_contain_text(
        "n'est pas une adresse électronique valide"
    )
    await expect(page.get_by_role("link", name="Confirmer", exact=True)).to_have_count(0)
    await expect(page).to_have_title(re.compile("^Erreur : "))
    await sans_violation(page, "page de modification, erreur affichée")
    await courriel.fill(ancien_courriel)
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_text("Modifications enregistrées")).to_be_visible()

    # Upload a document, delete it; an old document has no delete control.
    await page.get_by_label("Type de pièce complémentaire").select_option("MSS_RESU_TEST_TECH")
    await page.get_by_label("Fichier à ajouter").set_input_files(
        files=[{"name": "capture.pdf", "mimeType": "application/pdf", "buffer": pdf}]
    )
    await page.get_by_role("button", name="Importer").click()
    await expect(page.get_by_text("La pièce capture.pdf a été ajoutée")).to_be_visible()
    supprimer = page.get_by_role("button", name="Supprimer capture.pdf")
    await expect(supprimer).to_have_count(1)
    await sans_violation(page, "page de modification, pièce ajoutée")
    await supprimer.click()
    await expect(page.get_by_text("Pièce supprimée")).to_be_visible()
    await expect(page.get_by_role("button", name=re.compile("^Supprimer "))).to_have_count(0)
    await expect(page.get_by_role("cell", name="capture-ecran-au-depot.pdf", exact=True)).to_have_count(1)

    # Confirm, after the step that says what follows.
    await page.get_by_role("link", name="Confirmer", exact=True).click()
    await expect(page.get_by_text("Vérifiez vos modifications avant de confirmer.")).to_be_visible()
    await sans_violation(page, "étape de confirmation")
    await page.get_by_role("button", name="Confirmer la modification").click()
    await expect(page.get_by_text("Modification confirmée")).to_be_visible()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Statut : En cours")
    await page.get_by_role("tab", name="Historique").click()
    await expect(page.get_by_role("tabpanel", name="Historique")).to_contain_text("06 12 34 56 78")
    await sans_violation(page, "page de la demande, historique")

    # Another round: renounce.
    lien = await ouvrir_modification(serveur_portail, smtp, "FINMSS009266M2")
    await page.goto(lien.replace("FINMSS009266", "FINMSS009266", 1))
    await page.get_by_role("link", name="Modifier", exact=True).click()
    await page.get_by_role("link", name="Ne pas modifier").click()
    await expect(page.get_by_text("sera instruite en l'état")).to_be_visible()
    await sans_violation(page, "étape de renonciation")
    await page.get_by_role("button", name="Confirmer : ne pas modifier").click()
    await expect(page.get_by_text("Demande laissée sans modification")).to_be_visible()

    # Mes demandes, the import page (empty and with errors), then logout.
    await page.goto(serveur_portail + "/demandes")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Mes demandes")
    await sans_violation(page, "mes demandes")
    await page.get_by_role("link", name="Importer une demande").click()
    await sans_violation(page, "importer une demande")
    await page.get_by_label("Fichier de la demande").set_input_files(
        files=[{"name": "demande.json", "mimeType": "application/json", "buffer": b"{}"}]
    )
    await page.get_by_role("button", name="Importer").click()
    await expect(page.locator("#resume-erreurs")).to_be_focused()
    await sans_violation(page, "importer une demande, erreurs")
    await page.get_by_role("button", name="Se déconnecter").click()
    await page.get_by_role("button").first.click()
    await expect(page.get_by_role("link", name="Se connecter").first).to_be_visible()


async def test_the_tour_with_the_keyboard_alone(
    serveur_portail: str, onglet: Any, smtp: ServeurSmtp, demande: Demande
) -> None:
    page = onglet
    lien = await ouvrir_modification(serveur_portail, smtp, "FINMSS009266M1")
    await page.goto(lien)
    await tabuler_jusqua(page, "button", OPERATEUR)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Statut : A modifier")

    await tabuler_jusqua(page, "link", "Modifier")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Modifier une demande de solde MSS")
    await tabuler_jusqua(
        page, "textbox", "Numéro de téléphone du contact support de l'opérateur (obligatoire)"
    )
    await page.keyboard.press("Control+A")
    await page.keyboard.type("06 12 34 56 78")
    await tabuler_jusqua(page, "button", "Enregistrer")
    await page.keyboard.press("Enter")
    await expect(
        page.get_by_text("Valeur modifiée. Valeur avant modification : 06 00 00 00 00")
    ).to_be_visible()

    await tabuler_jusqua(page, "link", "Confirmer")
    await page.keyboard.press("Enter")
    await tabuler_jusqua(page, "button", "Confirmer la modification")
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Modification confirmée")).to_be_visible()
    await tabuler_jusqua(page, "button", "Se déconnecter")


async def test_with_javascript_a_field_saves_itself_as_it_changes(
    serveur_portail: str, onglet: Any, smtp: ServeurSmtp, demande: Demande
) -> None:
    page = onglet
    await ouvrir_modification(serveur_portail, smtp, "FINMSS009266M1")
    await page.goto(serveur_portail + "/modifications/FINMSS009266M1")
    await choisir_identite(page, OPERATEUR)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Modifier une demande de solde MSS")
    await page.wait_for_load_state("networkidle")
    # Set on this very document: still there afterwards means no page was loaded meanwhile.
    await page.evaluate("window.pageInitiale = true")
    sans_rechargement = "() => window.pageInitiale === true"

    # Change a field and leave it: saved, in green and in words, without Enregistrer.
    telephone = page.get_by_label("Numéro de téléphone du contact support de l'opérateur")
    courriel = page.get_by_label("Adresse mail du contact support de l'opérateur")
    await telephone.fill("06 12 34 56 78")
    await telephone.press("Tab")
    await expect(
        page.get_by_text("Valeur modifiée. Valeur avant modification : 06 00 00 00 00")
    ).to_be_visible()
    await expect(page.locator("#groupe-contact_support_telephone")).to_have_class(
        re.compile("fr-input-group--valid")
    )
    await expect(page.locator("#annonce-brouillon")).to_have_text(
        "« Numéro de téléphone du contact support de l'opérateur » enregistré."
    )
    await expect(courriel).to_be_focused()
    assert await page.evaluate(sans_rechargement)

    # A wrong value: its error beside the field, announced, focus kept, no confirmation.
    ancien_courriel = await courriel.input_value()
    await courriel.fill("pas-une-adresse")
    await courriel.press("Tab")
    erreur = page.locator("#contact_support_courriel-erreur")
    await expect(erreur).to_contain_text(
        "Le champ « Adresse mail du contact support de l'opérateur » n'est pas une adresse électronique valide"
    )
    await expect(courriel).to_have_attribute("aria-invalid", "true")
    await expect(courriel).to_have_value("pas-une-adresse")
    await expect(page.locator("#annonce-brouillon")).to_contain_text("Erreur : ")
    await expect(
        page.get_by_label("Lien vers le site web mettant à disposition la documentation")
    ).to_be_focused()
    await expect(page.get_by_role("link", name="Confirmer", exact=True)).to_have_count(0)
    assert await page.evaluate(sans_rechargement)
    await sans_violation(page, "page de modification, erreur d'un enregistrement automatique")

    # Corrected: saved as well; Enregistrer, clicked straight from a changed field, waits for that
    # save and carries the draft's new version (no "changed meanwhile" refusal).
    await courriel.fill(ancien_courriel)
    await courriel.press("Tab")
    await expect(erreur).to_have_count(0)
    await expect(page.get_by_role("link", name="Confirmer", exact=True)).to_have_count(1)
    nom = page.get_by_label("Nom du contact support de l'opérateur")
    await nom.fill("NOUVEAU Nom")
    await page.get_by_role("button", name="Enregistrer").click()
    await expect(page.get_by_text("Modifications enregistrées")).to_be_visible()

    # Reloaded, the page shows what was saved; the confirmation applies it.
    await page.reload()
    await expect(telephone).to_have_value("06 12 34 56 78")
    await expect(nom).to_have_value("NOUVEAU Nom")
    await expect(courriel).to_have_value(ancien_courriel)
    await page.get_by_role("link", name="Confirmer", exact=True).click()
    await page.get_by_role("button", name="Confirmer la modification").click()
    await expect(page.get_by_text("Modification confirmée")).to_be_visible()
