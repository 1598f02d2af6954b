"""The portal's login through a real OpenID provider: the flow, its checks, the session, logout."""

from __future__ import annotations

import html
import os
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.models.types import maintenant
from modif_solde.pages import session as sess
from modif_solde.services import gestionnaires
from tests.pages.conftest import (
    AUTRE_OPERATEUR,
    COURRIEL_GESTIONNAIRE,
    GESTIONNAIRE,
    OPERATEUR,
    jeton_csrf,
    parametres,
    reglages,
    se_connecter,
)
from tests.processus import pages_legales_production
from tests.workflows.conftest import Banc

# What production requires, on loopback addresses that nothing in these tests reaches.
PRODUCTION: dict[str, Any] = {
    "ENVIRONNEMENT": "production",
    "JWT_JWKS_URL": "https://127.0.0.1:9/jwks.json",
    "SESSION_SECRET": "s" * 40,
    "OIDC_CLIENT_SECRET": "c" * 40,
    "OIDC_DISCOVERY_URL": "https://127.0.0.1:9/.well-known/openid-configuration",
    "PORTAIL_URL": "https://portail.sante.example.fr",
    **pages_legales_production(),
}


async def test_the_operator_logs_in_and_sees_its_requests_only(
    portail: httpx.AsyncClient, demande: Demande
) -> None:
    refus = await portail.get("/demandes/FINMSS009266")
    assert refus.status_code == 303
    assert refus.headers["location"] == "/connexion?retour=/demandes/FINMSS009266"

    arrivee = await se_connecter(portail, OPERATEUR, retour="/demandes/FINMSS009266")

    assert arrivee.status_code == 303
    assert arrivee.headers["location"] == "/demandes/FINMSS009266"
    page = await portail.get("/demandes/FINMSS009266")
    assert page.status_code == 200
    assert (
        "Détails de la demande numéro FINMSS009266 - Solde - Statut : En cours - Déposée le 05/06/2023"
        in page.text
    )
    # The mock releases given_name only with the `profile` scope (ProConnect has none).
    assert ">Durand</span>" in page.text
    liste = await portail.get("/demandes")
    assert "FINMSS009266" in liste.text


async def test_another_operator_gets_a_404_for_a_request_not_its_own(
    portail: httpx.AsyncClient, demande: Demande
) -> None:
    await se_connecter(portail, AUTRE_OPERATEUR)

    page = await portail.get("/demandes/FINMSS009266")

    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "FINMSS009266" not in (await portail.get("/demandes")).text


async def test_the_authorization_request_uses_pkce_long_state_and_nonce_and_acr(
    portail: httpx.AsyncClient,
) -> None:
    depart = await portail.get("/connexion")

    p = parametres(depart.headers["location"])
    assert p["response_type"] == "code"
    assert p["code_challenge_method"] == "S256"
    assert len(p["code_challenge"]) == 43
    assert len(p["state"]) >= 32
    assert len(p["nonce"]) >= 32
    assert p["acr_values"] == "eidas1"
    assert p["scope"] == "openid email given_name usual_name uid siret idp_id"
    assert p["redirect_uri"] == "http://test/connexion/retour"


async def test_a_forged_state_is_refused(portail: httpx.AsyncClient) -> None:
    await portail.get("/connexion")

    retour = await portail.get("/connexion/retour", params={"code": "x", "state": "y" * 43})

    assert retour.status_code == 401
    assert "La connexion n'a pas abouti" in html.unescape(retour.text)
    assert (await portail.get("/demandes")).status_code == 303


@pytest.mark.parametrize(
    "retour",
    ["https://pirate.example/", "//pirate.example/x", "/\\pirate.example", "javascript:alert(1)", "demandes"],
)
def test_the_return_path_is_never_another_site(retour: str) -> None:
    assert sess.retour_sur(retour) == "/demandes"


def test_a_local_return_path_is_kept() -> None:
    assert (
        sess.retour_sur("/demandes/FINMSS009266?onglet=historique")
        == "/demandes/FINMSS009266?onglet=historique"
    )


async def test_after_login_an_open_redirect_leads_home(portail: httpx.AsyncClient) -> None:
    arrivee = await se_connecter(portail, OPERATEUR, retour="https://pirate.example/")

    assert arrivee.headers["location"] == "/demandes"


async def _app(settings: Settings, banc: Banc) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=banc.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_a_userinfo_signed_as_a_jwt_is_verified_and_used(
    settings: Settings, banc: Banc, factory: SessionFactory, demande: Demande, fournisseur_jwt: str
) -> None:
    reglages_jwt = settings.model_copy(
        update={"OIDC_DISCOVERY_URL": f"{fournisseur_jwt}/.well-known/openid-configuration"}
    )
    async for portail in _app(reglages_jwt, banc):
        arrivee = await se_connecter(portail, OPERATEUR)
        assert arrivee.status_code == 303
        assert "FINMSS009266" in (await portail.get("/demandes")).text


async def test_a_userinfo_signed_with_an_unknown_key_is_refused(
    settings: Settings, banc: Banc, factory: SessionFactory, fournisseur_jwt_cle_inconnue: str
) -> None:
    reglages_jwt = settings.model_copy(
        update={"OIDC_DISCOVERY_URL": f"{fournisseur_jwt_cle_inconnue}/.well-known/openid-configuration"}
    )
    async for portail in _app(reglages_jwt, banc):
        arrivee = await se_connecter(portail, OPERATEUR)
        assert arrivee.status_code == 401
        assert (await portail.get("/demandes")).status_code == 303


async def test_a_gestionnaire_is_decided_by_the_service_list_at_every_request(
    portail: httpx.AsyncClient, factory: SessionFactory, demande: Demande
) -> None:
    await se_connecter(portail, GESTIONNAIRE)
    # A valid SIRET claim alone makes an operator of that SIRET, which sees nothing here.
    assert "FINMSS009266" not in (await portail.get("/demandes")).text

    async with unit_of_work(factory) as session:
        await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE.upper())
    file = await portail.get("/demandes")
    assert "File de travail" in file.text
    assert "FINMSS009266" in file.text

    async with unit_of_work(factory) as session:
        assert await gestionnaires.retirer(session, COURRIEL_GESTIONNAIRE)
    assert "FINMSS009266" not in (await portail.get("/demandes")).text


async def test_logout_needs_the_csrf_token_and_ends_the_provider_session(portail: httpx.AsyncClient) -> None:
    await se_connecter(portail, OPERATEUR)
    page = await portail.get("/demandes")

    assert (await portail.post("/deconnexion", data={"csrf": "faux"})).status_code == 403
    assert (await portail.get("/demandes")).status_code == 200

    sortie = await portail.post("/deconnexion", data={"csrf": jeton_csrf(page.text)})
    assert sortie.status_code == 303
    fin = sortie.headers["location"]
    assert "/oauth2/end_session?" in fin
    p = parametres(fin)
    assert p["id_token_hint"].count(".") == 2
    assert p["post_logout_redirect_uri"] == "http://test/"
    assert len(p["state"]) >= 32
    assert (await portail.get("/demandes")).status_code == 303


async def test_the_session_identifier_and_csrf_token_are_new_at_each_login(
    portail: httpx.AsyncClient,
) -> None:
    await se_connecter(portail, OPERATEUR)
    premier = jeton_csrf((await portail.get("/demandes")).text)
    await portail.post("/deconnexion", data={"csrf": premier})
    await se_connecter(portail, OPERATEUR)
    second = jeton_csrf((await portail.get("/demandes")).text)

    assert premier != second
    # The first session's token is void in the second.
    assert (await portail.post("/deconnexion", data={"csrf": premier})).status_code == 403


async def test_a_link_to_the_login_never_ends_a_session(portail: httpx.AsyncClient, demande: Demande) -> None:
    """Any site can link to /connexion: a logged-in person goes where it was asked to go, still
    logged in, and only to a local path."""
    await se_connecter(portail, OPERATEUR)

    lien = await portail.get("/connexion", params={"retour": "/demandes/FINMSS009266"})
    assert lien.status_code == 303 and lien.headers["location"] == "/demandes/FINMSS009266"
    assert (await portail.get("/demandes/FINMSS009266")).status_code == 200
    ailleurs = await portail.get("/connexion", params={"retour": "https://pirate.example/"})
    assert ailleurs.status_code == 303 and ailleurs.headers["location"] == "/demandes"
    assert (await portail.get("/demandes")).status_code == 200


async def test_the_session_ends_after_inactivity_and_after_its_maximum_duration(
    portail: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await se_connecter(portail, OPERATEUR)
    debut = maintenant()
    monkeypatch.setattr(sess, "maintenant", lambda: debut + timedelta(minutes=29))
    assert (await portail.get("/demandes")).status_code == 200
    monkeypatch.setattr(sess, "maintenant", lambda: debut + timedelta(minutes=29 * 2 + 2))
    assert (await portail.get("/demandes")).status_code == 303

    await se_connecter(portail, OPERATEUR)
    debut = sess.maintenant()  # the new session's creation, on the clock of the test
    for minutes in range(25, 12 * 60, 25):
        monkeypatch.setattr(sess, "maintenant", lambda m=minutes: debut + timedelta(minutes=m))
        assert (await portail.get("/demandes")).status_code == 200
    monkeypatch.setattr(sess, "maintenant", lambda: debut + timedelta(hours=12, minutes=1))
    assert (await portail.get("/demandes")).status_code == 303


async def test_the_session_cookie_is_httponly_lax_and_secure_outside_development(
    portail: httpx.AsyncClient, banc: Banc, factory: SessionFactory, settings: Settings
) -> None:
    cookie = (await portail.get("/connexion")).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie

    async for client in _app(settings.model_copy(update=PRODUCTION), banc):
        cookie = (await client.get("/connexion")).headers["set-cookie"].lower()
        assert "secure" in cookie


def test_production_refuses_the_development_login_settings() -> None:
    production = Settings(ENVIRONNEMENT="production", JWT_JWKS_URL="https://127.0.0.1:9/jwks.json")
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        create_app(production)
    with pytest.raises(ValueError, match="OIDC_CLIENT_SECRET"):
        create_app(production.model_copy(update={"SESSION_SECRET": "s" * 40}))


async def test_pages_carry_strict_security_headers(portail: httpx.AsyncClient) -> None:
    accueil = await portail.get("/")

    csp = accueil.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert accueil.headers["referrer-policy"] == "same-origin"
    assert accueil.headers["x-content-type-options"] == "nosniff"
    assert "Se connecter" in accueil.text


async def test_outside_development_every_answer_asks_for_https_only(
    portail: httpx.AsyncClient, banc: Banc, factory: SessionFactory, settings: Settings
) -> None:
    """HSTS from the service itself: behind a proxy that forgets it, a browser still never
    comes back over plain HTTP."""
    assert "strict-transport-security" not in (await portail.get("/")).headers  # development

    async for client in _app(settings.model_copy(update=PRODUCTION), banc):
        for chemin in ("/", "/connexion", "/healthz", "/api/v1/demandes", "/demandes/FINMSS009266"):
            hsts = (await client.get(chemin)).headers.get("strict-transport-security", "")
            age = re.search(r"max-age=(\d+)", hsts)
            assert age and int(age.group(1)) >= 365 * 24 * 3600, (chemin, hsts)


def test_reglages_de_test(fournisseur: str) -> None:
    assert reglages("http://x", fournisseur).OIDC_ACR_VALUES == "eidas1"


def test_make_run_starts_the_local_provider_with_the_demo_identities(tmp_path: Any) -> None:
    """The very command `modif-solde dev` runs: its discovery answers and its login page
    offers the three demo identities of PORTAL.md."""
    import subprocess

    from modif_solde.dev import commande_fournisseur_oidc
    from tests.workflows.conftest import port_libre

    port = port_libre()
    processus = subprocess.Popen(  # noqa: S603 (our own command line)
        commande_fournisseur_oidc("127.0.0.1", port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(400):
            try:
                decouverte = httpx.get(f"{base}/.well-known/openid-configuration", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise AssertionError("le fournisseur local ne répond pas")
        assert decouverte.json()["issuer"] == base
        assert decouverte.json()["end_session_endpoint"] == f"{base}/oauth2/end_session"
        page = httpx.get(
            decouverte.json()["authorization_endpoint"],
            params={
                "response_type": "code",
                "client_id": "modif-solde",
                "redirect_uri": "http://x/cb",
                "scope": "openid",
                "nonce": "n" * 32,
            },
        )
        for sub in ("operateur-sci-voiture", "operateur-mss", "gestionnaire-asp"):
            assert f'value="{sub}"' in page.text
    finally:
        processus.terminate()
        processus.wait(timeout=10)
