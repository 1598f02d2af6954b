"""Login and logout through OpenID Connect (ProConnect; the local provider in development)."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from modif_solde.api.problemes import Probleme
from modif_solde.config import Settings
from modif_solde.pages import session as sess

journal = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

# ProConnect's minimum for `state` and `nonce` is 32 characters (Authlib's defaults are shorter).
_ALEA = 32
_ECHEC = "La connexion n'a pas abouti. Recommencez ; si le problème persiste, contactez l'assistance."
_INJOIGNABLE = "Le service de connexion ne répond pas pour le moment ; réessayez dans quelques instants."


class ConnexionRefusee(Exception):
    pass


def autoriser_http_local(settings: Settings) -> None:
    """In development the local provider speaks plain HTTP on loopback, which Authlib refuses
    unless told. (What production requires of the login is checked by config.verifier_reglages.)"""
    if settings.ENVIRONNEMENT == "developpement":
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


def client_oidc(settings: Settings) -> StarletteOAuth2App:
    oauth = OAuth()
    client: StarletteOAuth2App = oauth.register(
        name="proconnect",
        client_id=settings.OIDC_CLIENT_ID,
        client_secret=settings.OIDC_CLIENT_SECRET,
        server_metadata_url=settings.OIDC_DISCOVERY_URL,
        client_kwargs={"scope": settings.OIDC_SCOPES, "code_challenge_method": "S256", "timeout": 10},
    )
    return client


def _client(request: Request) -> StarletteOAuth2App:
    client: StarletteOAuth2App = request.app.state.oidc
    return client


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/connexion")
async def connexion(request: Request, retour: str | None = None) -> Response:
    settings = _settings(request)
    # Whatever was there (an old session) is dropped: the login starts from scratch.
    request.session.clear()
    request.session["retour"] = sess.retour_sur(retour)
    try:
        reponse: Response = await _client(request).authorize_redirect(
            request,
            f"{settings.PORTAIL_URL.rstrip('/')}/connexion/retour",
            state=secrets.token_urlsafe(_ALEA),
            nonce=secrets.token_urlsafe(_ALEA),
            acr_values=settings.OIDC_ACR_VALUES,
        )
    except (httpx.HTTPError, OAuthError, ValueError):
        journal.warning("fournisseur d'identité injoignable", exc_info=True)
        raise Probleme(503, _INJOIGNABLE) from None
    return reponse


async def lire_userinfo(client: StarletteOAuth2App, jeton: dict[str, Any]) -> dict[str, Any]:
    """The userinfo as JSON, or as a signed JWT (ProConnect) verified against the provider's keys."""
    metadata = await client.load_server_metadata()
    reponse = await client.get(metadata["userinfo_endpoint"], token=jeton)
    if reponse.status_code != 200:
        raise ConnexionRefusee(f"userinfo : HTTP {reponse.status_code}")
    if reponse.headers.get("content-type", "").split(";")[0].strip() == "application/jwt":
        cles = KeySet.import_key_set(await client.fetch_jwk_set())
        try:
            signe = jwt.decode(reponse.text, cles)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": metadata["issuer"]},
                aud={"essential": True, "value": client.client_id},
            ).validate(signe.claims)
        except (JoseError, ValueError) as err:
            raise ConnexionRefusee(f"userinfo signé invalide : {err}") from None
        return dict(signe.claims)
    contenu = reponse.json()
    if not isinstance(contenu, dict):
        raise ConnexionRefusee("userinfo : réponse inattendue")
    return contenu


@router.get("/connexion/retour")
async def retour_connexion(request: Request) -> Response:
    if "error" in request.query_params:
        raise Probleme(401, _ECHEC, titre="Connexion refusée")
    client = _client(request)
    retour = sess.retour_sur(request.session.get("retour"))
    try:
        # Checks state (CSRF), then the ID token: signature, iss, aud, exp and our nonce.
        jeton = await client.authorize_access_token(request)
        revendications = dict(jeton["userinfo"])
        userinfo = await lire_userinfo(client, jeton)
        if userinfo.get("sub") != revendications.get("sub"):
            raise ConnexionRefusee("le sujet de userinfo diffère de celui du jeton d'identité")
    except (OAuthError, ConnexionRefusee, KeyError, ValueError) as err:
        journal.warning("connexion refusée : %s", err)
        raise Probleme(401, _ECHEC, titre="Connexion refusée") from None
    except httpx.HTTPError:
        journal.warning("fournisseur d'identité injoignable", exc_info=True)
        raise Probleme(503, _INJOIGNABLE) from None
    revendications.update(userinfo)
    sess.ouvrir(
        request,
        {
            "sub": str(revendications["sub"]),
            "siret": revendications.get("siret"),
            "email": revendications.get("email"),
            "given_name": revendications.get("given_name"),
            "usual_name": revendications.get("usual_name"),
            "id_token": jeton.get("id_token"),
        },
    )
    journal.info("connexion", extra={"sub": revendications["sub"]})
    return RedirectResponse(retour, status_code=303)


@router.post("/deconnexion", dependencies=[sess.CsrfDep])
async def deconnexion(request: Request) -> Response:
    """Ends our session, then the provider's (end_session_endpoint with id_token_hint)."""
    settings = _settings(request)
    id_token = request.session.get("id_token")
    sess.fermer(request)
    accueil = f"{settings.PORTAIL_URL.rstrip('/')}/"
    try:
        metadata = await _client(request).load_server_metadata()
    except (httpx.HTTPError, ValueError):
        return RedirectResponse("/", status_code=303)
    fin = metadata.get("end_session_endpoint")
    if not fin or not id_token:
        return RedirectResponse("/", status_code=303)
    parametres = {
        "id_token_hint": id_token,
        "state": secrets.token_urlsafe(_ALEA),
        "post_logout_redirect_uri": accueil,
    }
    return RedirectResponse(f"{fin}?{urlencode(parametres)}", status_code=303)
