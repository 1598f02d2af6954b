"""The pages a French public site must have: linked from every page's footer (the DSFR's
mandatory links), readable without login, filled from the deployer's settings; demonstration
values in development, each setting required in production."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from modif_solde.api.app import create_app
from modif_solde.config import PREFIXE, ReglagesInvalides, Settings, verifier_reglages
from modif_solde.pages.informations import duree_fr
from modif_solde.services.stockage import Stockage
from tests.pages.conftest import reglages
from tests.pages.navigation import sans_violation
from tests.processus import PAGES_LEGALES_PRODUCTION

VALEURS: dict[str, Any] = {
    "EDITEUR": "Agence de services et de paiement, 2 rue du Maupas, 87040 Limoges",
    "DIRECTEUR_PUBLICATION": "Camille Martin, directrice générale",
    "HEBERGEUR": "Hébergeur public, 1 rue de l'Hébergement, 75013 Paris",
    "CONTACT_COURRIEL": "accessibilite@asp.gouv.fr",
    "DPO_CONTACT": "dpo@asp.gouv.fr",
    "ACCESSIBILITE_STATUT": "partiellement conforme",
    "ACCESSIBILITE_AUDIT_DATE": date(2026, 11, 30),
    "ACCESSIBILITE_AUDIT_PAR": "Audit Accessible SARL",
    "DUREE_CONSERVATION": timedelta(days=5 * 365),
}
PAGES = {
    "/accessibilite": "Déclaration d'accessibilité",
    "/mentions-legales": "Mentions légales",
    "/donnees-personnelles": "Données personnelles",
}


async def _client(
    engine: Any, stockage: Stockage, fournisseur: str, **valeurs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        reglages(
            "https://portail.asp.gouv.fr",
            fournisseur,
            DATABASE_URL=engine.url.render_as_string(hide_password=False),
            STORAGE_DIR=stockage.racine,
            **valeurs,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def _texte(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


async def test_anonymous_visitors_read_the_legal_pages_filled_from_the_settings(
    engine: Any, stockage: Stockage, fournisseur: str
) -> None:
    async for client in _client(engine, stockage, fournisseur, **VALEURS):
        accueil = await client.get("/")
        for chemin in PAGES:
            assert f'href="{chemin}"' in accueil.text, chemin
        assert "Accessibilité : partiellement conforme" in _texte(accueil.text)

        pages = {}
        for chemin, titre in PAGES.items():
            r = await client.get(chemin)
            assert r.status_code == 200, (chemin, r.status_code)
            pages[chemin] = _texte(r.text)
            assert f" {titre} " in pages[chemin] and f"<title>{titre} - " in r.text.replace("&#39;", "'")

        accessibilite = pages["/accessibilite"]
        assert (
            "Le Portail Ségur Numérique est partiellement conforme avec le référentiel général"
            in accessibilite
        )
        assert "L'audit de conformité réalisé le 30/11/2026 par Audit Accessible SARL" in accessibilite
        assert "Non-conformités connues" in accessibilite and "Périmètre de l'audit" in accessibilite
        assert "accessibilite@asp.gouv.fr" in accessibilite and "Défenseur des droits" in accessibilite
        assert "https://portail.asp.gouv.fr" in accessibilite

        mentions = pages["/mentions-legales"]
        for nom in ("EDITEUR", "DIRECTEUR_PUBLICATION", "HEBERGEUR", "CONTACT_COURRIEL"):
            assert str(VALEURS[nom]).replace("'", "&#39;") in mentions.replace("'", "&#39;"), nom

        donnees = pages["/donnees-personnelles"]
        assert "supprimés 5 ans après la clôture de sa dernière modification" in donnees
        assert "après 30 minutes d'inactivité" in donnees and "après 12 heures" in donnees
        assert "dpo@asp.gouv.fr" in donnees and "CNIL" in donnees
        assert "IBAN" in donnees and "mission d'intérêt public" in donnees


async def test_development_shows_demonstration_values(
    engine: Any, stockage: Stockage, fournisseur: str
) -> None:
    async for client in _client(engine, stockage, fournisseur):
        assert "Éditeur de démonstration" in _texte((await client.get("/mentions-legales")).text)
        assert "auto-évaluation de démonstration" in _texte((await client.get("/accessibilite")).text)
        donnees = _texte((await client.get("/donnees-personnelles")).text)
        assert "Aucune durée de conservation n'est fixée dans cet environnement de démonstration" in donnees


def test_durations_read_as_a_person_says_them() -> None:
    assert duree_fr(timedelta(days=5 * 365)) == "5 ans"
    assert duree_fr(timedelta(days=365)) == "1 an"
    assert duree_fr(timedelta(days=180)) == "6 mois"
    assert duree_fr(timedelta(days=10)) == "10 jours"
    assert duree_fr(timedelta(hours=12)) == "12 heures"
    assert duree_fr(timedelta(minutes=30)) == "30 minutes"
    assert duree_fr(timedelta(seconds=30)) == "30 secondes"


async def test_the_legal_pages_in_the_browser_without_violation(
    serveur_portail: str, navigateur: Any
) -> None:
    contexte = await navigateur.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await contexte.new_page()
    await page.goto(serveur_portail + "/")
    for chemin, titre in PAGES.items():
        lien = re.compile("^Accessibilité : ") if chemin == "/accessibilite" else titre
        await page.locator("footer").get_by_role("link", name=lien).click()
        await expect(page).to_have_url(serveur_portail + chemin)
        await expect(page.get_by_role("heading", level=1)).to_have_text(titre)
        await sans_violation(page, titre)
    await contexte.close()

    # On a phone, the footer's links and the header's menu (named by DSFR's script as it opens).
    contexte = await navigateur.new_context(locale="fr-FR", viewport={"width": 375, "height": 800})
    page = await contexte.new_page()
    await page.goto(serveur_portail + "/mentions-legales")
    await page.wait_for_load_state("networkidle")
    await page.get_by_role("button", name="Menu").click()
    await expect(page.get_by_role("dialog")).to_be_visible()
    await sans_violation(page, "menu ouvert sur un téléphone")
    await page.get_by_role("button", name="Fermer").click()
    await page.locator("footer").get_by_role("link", name="Données personnelles").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Données personnelles")
    await contexte.close()


@pytest.fixture
def sans_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for nom in [n for n in os.environ if n.startswith(PREFIXE)]:
        monkeypatch.delenv(nom)


# What the API requires in production besides the legal pages.
API_PRODUCTION: dict[str, Any] = {
    "ENVIRONNEMENT": "production",
    "JWT_JWKS_URL": "https://jetons.asp.gouv.fr/jwks.json",
    "SESSION_SECRET": "s" * 40,
    "OIDC_CLIENT_SECRET": "c" * 40,
    "OIDC_DISCOVERY_URL": "https://auth.asp.gouv.fr/.well-known/openid-configuration",
    "PORTAIL_URL": "https://portail.asp.gouv.fr",
}


@pytest.mark.usefixtures("sans_env")
def test_production_refuses_to_start_without_the_legal_pages_settings() -> None:
    verifier_reglages(Settings(**API_PRODUCTION, **PAGES_LEGALES_PRODUCTION), "api")

    with pytest.raises(ReglagesInvalides) as refus:
        verifier_reglages(Settings(**API_PRODUCTION), "api")
    assert [ligne.split(" ", 1)[0] for ligne in refus.value.lignes] == [
        "MODIF_SOLDE_EDITEUR",
        "MODIF_SOLDE_DIRECTEUR_PUBLICATION",
        "MODIF_SOLDE_HEBERGEUR",
        "MODIF_SOLDE_CONTACT_COURRIEL",
        "MODIF_SOLDE_DPO_CONTACT",
        "MODIF_SOLDE_ACCESSIBILITE_STATUT",
        "MODIF_SOLDE_DUREE_CONSERVATION",
    ]
    assert refus.value.lignes[0] == (
        "MODIF_SOLDE_EDITEUR doit être défini en production : l'éditeur du site (nom et adresse), en mentions légales"
    )

    # A status other than « non conforme » rests on an audit: its date and author; a placeholder address is refused.
    sans_audit = {
        k: v for k, v in PAGES_LEGALES_PRODUCTION.items() if not k.startswith("ACCESSIBILITE_AUDIT")
    }
    with pytest.raises(ReglagesInvalides) as refus:
        verifier_reglages(
            Settings(**API_PRODUCTION, **{**sans_audit, "CONTACT_COURRIEL": "contact@portail.example"}), "api"
        )
    assert [ligne.split(" ", 1)[0] for ligne in refus.value.lignes] == [
        "MODIF_SOLDE_CONTACT_COURRIEL",
        "MODIF_SOLDE_ACCESSIBILITE_AUDIT_DATE",
        "MODIF_SOLDE_ACCESSIBILITE_AUDIT_PAR",
    ]
    assert "« partiellement conforme »" in refus.value.lignes[1]
    verifier_reglages(
        Settings(**API_PRODUCTION, **{**sans_audit, "ACCESSIBILITE_STATUT": "non conforme"}), "api"
    )

    # An unknown status is refused by the settings themselves.
    with pytest.raises(ValueError, match="ACCESSIBILITE_STATUT"):
        Settings(**API_PRODUCTION, **{**PAGES_LEGALES_PRODUCTION, "ACCESSIBILITE_STATUT": "conforme"})
