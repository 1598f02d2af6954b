"""Login and logout through OpenID Connect (ProConnect; the local provider in development)."""

from __future__ import annotations

import logging
import os
import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from modif_solde.config import Settings
from modif_solde.pages import etat
from modif_solde.pages import session as sess
from modif_solde.services.erreurs import DonneesInvalides
from modif_solde.services.gestionnaires import normaliser
from modif_solde.web.problemes import Probleme

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


@router.get("/connexion")
async def connexion(request: Request, retour: str | None = None) -> Response:
    settings = etat.reglages(request)
    cible = sess.retour_sur(retour)
    # Logged in already: where it asked to go. Only POST /deconnexion ends a session (a link
    # from any site must not log anyone out).
    if await sess.session_active(request) is not None:
        return RedirectResponse(cible, status_code=303)
    request.session["retour"] = cible
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
    try:
        identite = _identite(revendications, jeton.get("id_token"))
    except ConnexionRefusee as err:
        journal.warning("connexion refusée : %s", err)
        raise Probleme(401, _ECHEC, titre="Connexion refusée") from None
    cle = await sess.ouvrir(request, identite)
    request.session.pop("retour", None)
    journal.info("connexion", extra={"sub": identite.sub})
    reponse = RedirectResponse(retour, status_code=303)
    sess.poser_cookie(reponse, etat.reglages(request), cle)
    return reponse


def _texte(valeur: Any, longueur: int) -> str | None:
    """A claim kept for display: a string, cut to the column's length."""
    return valeur[:longueur] if isinstance(valeur, str) and valeur else None


def _identite(revendications: dict[str, Any], id_token: Any) -> sess.Identite:
    """What the session keeps of the provider's claims (the e-mail normalized as the
    gestionnaires' list is, to be matched against it)."""
    sub = revendications.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise ConnexionRefusee("sujet absent ou trop long")
    try:
        courriel: str | None = normaliser(str(revendications.get("email") or ""))
    except DonneesInvalides:
        courriel = None
    siret = revendications.get("siret")
    return sess.Identite(
        sub=sub,
        courriel=courriel,
        siret=siret if isinstance(siret, str) and len(siret) == 14 else None,
        prenom=_texte(revendications.get("given_name"), 200),
        nom_usage=_texte(revendications.get("usual_name"), 200),
        id_token=id_token if isinstance(id_token, str) else None,
    )


@router.post("/deconnexion")
async def deconnexion(
    request: Request, ouverte: sess.SessionFacultativeDep, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Ends our session (its row deleted: every copy of the cookie is void), then the
    provider's (end_session_endpoint with id_token_hint). Without a session, nothing to end."""
    settings = etat.reglages(request)
    if ouverte is None:
        reponse: Response = RedirectResponse("/", status_code=303)
        sess.effacer_cookie(reponse, settings)
        return reponse
    if not sess.csrf_valide(ouverte, csrf):
        raise sess.refus_csrf()
    await sess.fermer(request, ouverte)
    request.session.clear()
    journal.info("déconnexion", extra={"sub": ouverte.sub})
    reponse = RedirectResponse(
        await _fin_chez_le_fournisseur(request, settings, ouverte.id_token), status_code=303
    )
    sess.effacer_cookie(reponse, settings)
    return reponse


async def _fin_chez_le_fournisseur(request: Request, settings: Settings, id_token: str | None) -> str:
    """The provider's end_session_endpoint (with id_token_hint), or home when there is none."""
    try:
        metadata = await _client(request).load_server_metadata()
    except (httpx.HTTPError, ValueError):
        return "/"
    fin = metadata.get("end_session_endpoint")
    if not fin or not id_token:
        return "/"
    parametres = {
        "id_token_hint": id_token,
        "state": secrets.token_urlsafe(_ALEA),
        "post_logout_redirect_uri": f"{settings.PORTAIL_URL.rstrip('/')}/",
    }
    return f"{fin}?{urlencode(parametres)}"
