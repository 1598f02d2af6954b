"""Each role reads words meant for it on a request awaiting the operator: the operator, the
guide's (« Votre demande… », « Ma demande de solde »); the gestionnaire, the operator's deadline
and what happens at J+10 and J+20, about « La demande de solde »."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.services import modifications as svc
from modif_solde.services.courriels import format_date_fr, format_date_heure_fr
from tests.pages import test_navigateur_gestionnaire as back_office
from tests.pages.conftest import OPERATEUR
from tests.pages.navigation import choisir_identite
from tests.pages.test_navigateur_gestionnaire import demander_une_modification, lien_d_invitation
from tests.workflows.conftest import ServeurSmtp

gestion = back_office.gestion  # the gestionnaire's browser context, on the request page
OPERATEUR_INTERPELLE = "Votre demande de solde nécessite des modifications de votre part."


async def test_each_role_reads_its_own_words_on_a_request_awaiting_the_operator(
    gestion: Any, onglet: Any, serveur_portail: str, smtp: ServeurSmtp, factory: SessionFactory
) -> None:
    page = gestion
    await demander_une_modification(page, "Le numéro de téléphone est erroné.")
    async with unit_of_work(factory) as session:
        m = await svc.charger_modification(session, "FINMSS009266M1")
    principal = page.locator("main")
    await expect(
        principal.get_by_text("Une modification de cette demande de solde est attendue de l'opérateur.")
    ).to_be_visible()
    await expect(principal).to_contain_text(
        f"L'opérateur a jusqu'au {format_date_heure_fr(m.expire_le)} pour modifier sa demande."
    )
    await expect(principal).to_contain_text(
        f"Sans action de sa part, un courriel de relance lui sera envoyé le {format_date_fr(m.relance_le)} (J+10)."
    )
    await expect(principal).to_contain_text(
        "À J+20, la modification expire : la demande repasse au statut « En cours »"
    )
    await expect(page.get_by_role("heading", name="La demande de solde", exact=True)).to_be_visible()
    await expect(page.get_by_role("tablist", name="La demande de solde")).to_be_visible()
    # (The e-mail log below quotes the operator's e-mails: the page's own words are checked.)
    for mots in (OPERATEUR_INTERPELLE, "Vous avez jusqu'au", "votre part"):
        await expect(page.locator(".bandeau-modification").get_by_text(mots)).to_have_count(0)
    await expect(page.get_by_role("heading", name="Ma demande de solde")).to_have_count(0)
    await expect(page.get_by_role("tablist", name="Ma demande de solde")).to_have_count(0)

    operateur = onglet
    await operateur.goto(await lien_d_invitation(smtp, serveur_portail, "FINMSS009266M1"))
    await choisir_identite(operateur, OPERATEUR)
    principal = operateur.locator("main")
    await expect(principal.get_by_text(OPERATEUR_INTERPELLE)).to_be_visible()
    await expect(principal).to_contain_text(
        f"Vous avez jusqu'au {format_date_heure_fr(m.expire_le)} pour modifier votre demande."
    )
    await expect(operateur.get_by_role("heading", name="Ma demande de solde", exact=True)).to_be_visible()
    await expect(principal.get_by_text("attendue de l'opérateur")).to_have_count(0)
