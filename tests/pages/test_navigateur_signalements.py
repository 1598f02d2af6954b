"""A report of an error or omission followed in a real browser, from the operator's request
page to the modification a gestionnaire opens from it, with axe-core on each new state."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from modif_solde.db import SessionFactory
from tests.pages.conftest import OPERATEUR
from tests.pages.navigation import choisir_identite, sans_violation
from tests.pages.test_navigateur_gestionnaire import TELEPHONE, cocher, gestion  # noqa: F401

DESCRIPTION = "Le numéro du support a changé depuis le dépôt, et j'ai oublié le guide de l'API."


async def test_a_report_from_the_operator_s_page_to_the_modification_it_opens(
    gestion: Any,  # noqa: F811
    onglet: Any,
    serveur_portail: str,
    factory: SessionFactory,
) -> None:
    operateur = onglet
    await operateur.goto(serveur_portail + "/demandes/FINMSS009266")
    await choisir_identite(operateur, OPERATEUR)
    await expect(operateur.get_by_role("heading", level=1)).to_contain_text("Statut : En cours")

    # Wrong, then right.
    await operateur.get_by_role("button", name="Signaler une erreur ou un oubli").click()
    await expect(operateur.locator("#resume-erreurs")).to_be_focused()
    await expect(operateur.locator("#description-erreur")).to_have_text(
        "Le champ « Ce qui est erroné ou manquant » est obligatoire."
    )
    await sans_violation(operateur, "signalement, erreurs affichées")
    await operateur.get_by_label("Ce qui est erroné ou manquant").fill(DESCRIPTION)
    await cocher(operateur, TELEPHONE)
    await cocher(operateur, "Pièces justificatives")
    await operateur.get_by_role("button", name="Signaler une erreur ou un oubli").click()
    await expect(operateur.get_by_text("Signalement envoyé")).to_be_visible()
    await expect(operateur.locator(".signalement")).to_contain_text("En attente d'un gestionnaire")
    await sans_violation(operateur, "page de la demande, signalement envoyé")

    # The gestionnaire finds it in the queue, badged, and opens the modification from it.
    page = gestion
    await page.goto(serveur_portail + "/demandes")
    await page.get_by_label("Signalement").select_option("a_traiter")
    await page.get_by_role("button", name="Filtrer").click()
    ligne = page.get_by_role("row").filter(has_text="FINMSS009266")
    await expect(ligne).to_contain_text("Signalement à traiter")
    await sans_violation(page, "file de travail filtrée sur les signalements")
    await ligne.get_by_role("link", name="FINMSS009266").click()
    await page.get_by_role("link", name="Ouvrir une modification à partir de ce signalement").click()
    await expect(page.get_by_label("Commentaire")).to_have_value(DESCRIPTION)
    await expect(page.get_by_role("checkbox", name=TELEPHONE, exact=True)).to_be_checked()
    await expect(page.get_by_role("checkbox", name="Pièces justificatives", exact=True)).to_be_checked()
    await expect(
        page.get_by_role("checkbox", name="Adresse mail du contact support de l'opérateur", exact=True)
    ).not_to_be_checked()
    await sans_violation(page, "demander une modification, pré-remplie par un signalement")
    await page.get_by_role("button", name="Voir le courriel avant l'envoi").click()
    await expect(page.locator(".apercu-courriel")).to_contain_text(DESCRIPTION)
    await page.get_by_role("button", name="Envoyer la demande de modification").click()
    await expect(page.get_by_text("Demande de modification envoyée")).to_be_visible()
    await expect(page.locator(".signalement")).to_contain_text("Modification ouverte")

    # The operator sees the outcome and reaches the modification, its comment the report's.
    await operateur.reload()
    await expect(operateur.get_by_role("heading", level=1)).to_contain_text("Statut : A modifier")
    signalement = operateur.locator(".signalement")
    await expect(signalement).to_contain_text("Modification ouverte")
    await expect(operateur.get_by_role("button", name="Signaler une erreur ou un oubli")).to_have_count(0)
    await signalement.get_by_role("link", name="FINMSS009266M1").click()
    await expect(operateur.get_by_role("heading", level=1)).to_have_text("Modifier une demande de solde MSS")
    await expect(operateur.locator(".commentaire-texte")).to_have_text(DESCRIPTION)
    await expect(operateur.locator("#elements-attendus")).to_contain_text("Pièces justificatives")
