"""The API's interactive documentation: none in production (the OpenAPI document stays); in
development Swagger UI from the project's own npm files, under the portal's strict CSP, in a
real browser that may load nothing from another origin."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from modif_solde.config import Settings
from modif_solde.pages.statiques import url_statique
from tests.pages.test_connexion import PRODUCTION, _app
from tests.workflows.conftest import Banc


async def test_production_serves_the_openapi_document_and_no_interactive_docs(
    settings: Settings, banc: Banc, factory: Any
) -> None:
    async for client in _app(settings.model_copy(update=PRODUCTION), banc):
        for chemin in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            assert (await client.get(chemin)).status_code == 404, chemin
        document = await client.get("/openapi.json")
        assert document.status_code == 200
        assert "/api/v1/demandes" in document.json()["paths"]


async def test_development_serves_swagger_ui_from_its_own_files(portail: httpx.AsyncClient) -> None:
    docs = await portail.get("/docs")

    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe" not in csp
    assert "<script>" not in docs.text and "cdn" not in docs.text
    for fichier in ("vendor/swagger-ui/swagger-ui-bundle.js", "vendor/swagger-ui/swagger-ui.css"):
        url = url_statique(fichier)
        assert f'"{url}"' in docs.text
        assert (await portail.get(url)).status_code == 200, fichier
    assert (await portail.get("/redoc")).status_code == 404


@pytest.mark.usefixtures("factory")
async def test_swagger_ui_runs_under_the_strict_csp_in_a_browser(serveur_portail: str, onglet: Any) -> None:
    page = onglet
    console: list[str] = []
    erreurs: list[str] = []
    ailleurs: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda erreur: erreurs.append(str(erreur)))
    page.on(
        "request", lambda r: None if r.url.startswith((serveur_portail, "data:")) else ailleurs.append(r.url)
    )

    reponse = await page.goto(serveur_portail + "/docs")

    assert (
        reponse is not None
        and "script-src 'self'" in (await reponse.all_headers())["content-security-policy"]
    )
    # The document is read and drawn: the import's operation, under its tag.
    await expect(page.get_by_text("Importer une demande de solde").first).to_be_visible(timeout=20_000)
    await expect(page.locator(".opblock-tag", has_text="modifications").first).to_be_visible()
    assert ailleurs == []
    assert erreurs == []
    assert not [m for m in console if "Content Security Policy" in m or "Refused to" in m], console
