"""The portal over ASGI (httpx) or a real uvicorn server, logging in through a real local
OpenID provider (oidc-provider-mock in a thread), and a variant of it signing the userinfo."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import flask
import httpx
import pytest
import werkzeug.serving
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import RSAKey
from oidc_provider_mock import User, run_server_in_thread
from oidc_provider_mock import app as application_fournisseur
from oidc_provider_mock._app import storage as stockage_fournisseur

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.dev import IDENTITES_DEMO
from modif_solde.pages.navigateur import ARGUMENTS_CHROMIUM, CHROMIUM, MANQUE
from modif_solde.services.stockage import Stockage
from tests.workflows import conftest as temporal
from tests.workflows.conftest import Banc

env = temporal.env
serveur_smtp = temporal.serveur_smtp
smtp = temporal.smtp
banc = temporal.banc

SESSION_SECRET = "secret-de-session-de-test-0123456789-abcdef"
OPERATEUR = "operateur-sci-voiture"
AUTRE_OPERATEUR = "operateur-mss"
GESTIONNAIRE = "gestionnaire-asp"
COURRIEL_GESTIONNAIRE = "gestionnaire@asp.example"


def utilisateurs() -> list[User]:
    return [User(sub=i["sub"], claims={k: v for k, v in i.items() if k != "sub"}) for i in IDENTITES_DEMO]


@pytest.fixture(scope="session", autouse=True)
def transport_http_local() -> None:
    # The local provider speaks plain HTTP on loopback (both sides of Authlib need to be told).
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"


@pytest.fixture(scope="session")
def fournisseur() -> Iterator[str]:
    """The real oidc-provider-mock, as `make run` starts it (nonce required, demo identities)."""
    with run_server_in_thread(port=0, require_nonce=True, user_claims=utilisateurs()) as serveur:
        yield f"http://localhost:{serveur.server_port}"


def _serveur_jwt(cle_inconnue: bool) -> Iterator[str]:
    """The same provider answering the userinfo as a signed JWT (application/jwt), as
    ProConnect does; `cle_inconnue` signs it with a key absent from the JWKS (must be refused)."""
    app = application_fournisseur(require_nonce=True, user_claims=utilisateurs())
    autre_cle = RSAKey.generate_key(2048, private=True)

    @app.after_request
    def signer_userinfo(reponse: flask.Response) -> flask.Response:
        if flask.request.path != "/userinfo" or reponse.status_code != 200:
            return reponse
        revendications = {
            **reponse.get_json(),
            "iss": flask.request.host_url.rstrip("/"),
            "aud": Settings().OIDC_CLIENT_ID,
        }
        if cle_inconnue:
            cle: Any = autre_cle
        else:
            cle = RSAKey.import_key(stockage_fournisseur.jwk.as_dict(is_private=True))
        signe = jwt.encode({"alg": "RS256", "kid": cle.kid}, revendications, cle)
        return flask.Response(signe, content_type="application/jwt")

    serveur = werkzeug.serving.make_server("localhost", 0, app, threaded=True)
    fil = threading.Thread(target=serveur.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    fil.start()
    try:
        yield f"http://localhost:{serveur.server_port}"
    finally:
        serveur.shutdown()
        serveur.server_close()


@pytest.fixture(scope="session")
def fournisseur_jwt() -> Iterator[str]:
    yield from _serveur_jwt(cle_inconnue=False)


@pytest.fixture(scope="session")
def fournisseur_jwt_cle_inconnue() -> Iterator[str]:
    yield from _serveur_jwt(cle_inconnue=True)


def reglages(url_base: str, fournisseur: str, **autres: Any) -> Settings:
    return Settings(
        OIDC_DISCOVERY_URL=f"{fournisseur}/.well-known/openid-configuration",
        SESSION_SECRET=SESSION_SECRET,
        PORTAIL_URL=url_base,
        **autres,
    )


@pytest.fixture
def settings(engine: Any, stockage: Stockage, banc: Banc, fournisseur: str) -> Settings:
    return reglages(
        "http://test",
        fournisseur,
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        STORAGE_DIR=stockage.racine,
        TASK_QUEUE=banc.task_queue,
        PIECE_TAILLE_MAX=64 * 1024,
    )


@pytest.fixture
async def portail(settings: Settings, banc: Banc, factory: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app over ASGI; follows no redirect by itself (the tests follow the login's hops)."""
    app = create_app(settings, client=banc.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def appli_lecture(
    engine: Any, stockage: Stockage, fournisseur: str, factory: Any
) -> AsyncIterator[FastAPI]:
    """The app for pages that only read: no Temporal server (its lazy client is never called)."""
    app = create_app(
        reglages(
            "http://test",
            fournisseur,
            DATABASE_URL=engine.url.render_as_string(hide_password=False),
            STORAGE_DIR=stockage.racine,
        )
    )
    async with app.router.lifespan_context(app):
        yield app


async def se_connecter(portail: httpx.AsyncClient, sub: str, retour: str = "/demandes") -> httpx.Response:
    """The whole authorization code flow: our app, the provider's page (pick `sub`), back."""
    depart = await portail.get("/connexion", params={"retour": retour})
    assert depart.status_code == 302, depart.text
    autorisation = depart.headers["location"]
    async with httpx.AsyncClient() as navigateur:
        page = await navigateur.get(autorisation)
        assert page.status_code == 200
        choix = await navigateur.post(autorisation, data={"sub": sub})
    assert choix.status_code == 302, choix.text
    rappel = urlsplit(choix.headers["location"])
    assert rappel.path == "/connexion/retour"
    return await portail.get(f"{rappel.path}?{rappel.query}")


async def se_deconnecter(portail: httpx.AsyncClient) -> None:
    """**Se déconnecter**, as the layout's form posts it (before logging in as someone else)."""
    page = await portail.get("/demandes")
    sortie = await portail.post("/deconnexion", data={"csrf": jeton_csrf(page.text)})
    assert sortie.status_code == 303, sortie.text


def parametres(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def jeton_csrf(html: str) -> str:
    trouve = re.search(r'name="csrf" value="([^"]+)"', html)
    assert trouve, "aucun jeton CSRF dans la page"
    return trouve.group(1)


# --- A real server and a real browser (Debian's Chromium driven by Playwright) ---


@pytest.fixture
def port_portail() -> int:
    return temporal.port_libre()


@pytest.fixture
def activites(factory: Any, stockage: Stockage, smtp: temporal.ServeurSmtp, port_portail: int) -> Any:
    """The real activities, whose e-mails link to this test's portal server."""
    from modif_solde.activities.modification import ActivitesModification
    from modif_solde.services.envoi import ExpediteurSmtp

    return ActivitesModification(
        sessions=factory,
        stockage=stockage,
        expediteur=ExpediteurSmtp(smtp.url),
        adresse_expediteur="Portail <ne-pas-repondre@portail.example>",
        adresse_gestionnaires=temporal.GESTIONNAIRES,
        portail_url=f"http://127.0.0.1:{port_portail}",
    )


@pytest.fixture
async def serveur_portail(
    engine: Any, stockage: Stockage, banc: Banc, factory: Any, fournisseur: str, port_portail: int
) -> AsyncIterator[str]:
    """The whole app on a real uvicorn server, in the test's event loop (beside its worker)."""
    import asyncio

    import uvicorn

    url = f"http://127.0.0.1:{port_portail}"
    settings = reglages(
        url,
        fournisseur,
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        STORAGE_DIR=stockage.racine,
        TASK_QUEUE=banc.task_queue,
        PIECE_TAILLE_MAX=64 * 1024,
    )
    serveur = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, client=banc.client),
            host="127.0.0.1",
            port=port_portail,
            log_config=None,
            access_log=False,
            lifespan="on",
            # A browser's kept-alive connection must not hold the test's teardown.
            timeout_graceful_shutdown=2,
        )
    )
    tache = asyncio.create_task(serveur.serve())
    while not serveur.started:
        if tache.done():
            tache.result()
        await asyncio.sleep(0.01)
    yield url
    serveur.should_exit = True
    await tache


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        pytest.fail(MANQUE)
    return CHROMIUM


@pytest.fixture(scope="session")
async def navigateur(chromium: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        navigateur = await p.chromium.launch(executable_path=chromium, args=ARGUMENTS_CHROMIUM)
        yield navigateur
        await navigateur.close()


@pytest.fixture
async def onglet(navigateur: Any) -> AsyncIterator[Any]:
    contexte = await navigateur.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = await contexte.new_page()
    yield page
    await contexte.close()
