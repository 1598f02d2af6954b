"""The operator's portal: server-rendered pages (DSFR) beside the API, with an OpenID Connect login."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from modif_solde.config import Settings
from modif_solde.pages import (
    connexion,
    demande,
    documentation,
    export,
    gestionnaire,
    informations,
    operateur,
    pilotage,
    signalements,
)
from modif_solde.pages import session as sess
from modif_solde.pages.compression import Compression
from modif_solde.pages.rendu import page
from modif_solde.pages.securite import EnTetesSecurite
from modif_solde.pages.statiques import STATIQUES, Statiques
from modif_solde.services.erreurs import ErreurDomaine
from modif_solde.web.problemes import TITRES_HTTP, Probleme, entetes_de

_HORS_PORTAIL = ("/api/", "/healthz", "/readyz", "/openapi.json")


def est_page(request: Request) -> bool:
    return not request.url.path.startswith(_HORS_PORTAIL)


def installer_portail(app: FastAPI, settings: Settings) -> None:
    """Mount the pages, their static files, the session and the security headers on the app."""
    connexion.autoriser_http_local(settings)
    app.state.oidc = connexion.client_oidc(settings)
    app.mount("/static", Statiques(STATIQUES), name="static")
    app.include_router(connexion.router)
    app.include_router(informations.router)
    if settings.ENVIRONNEMENT == "developpement":
        app.include_router(documentation.router)
    # Before the operator's routes: theirs end in a catch-all `/modifications/{numero}/{action}`.
    app.include_router(signalements.router)
    app.include_router(gestionnaire.router)
    app.include_router(pilotage.router)
    app.include_router(export.router)
    app.include_router(operateur.router)
    # After the operator's: `/demandes/importer` before `/demandes/{numero}`.
    app.include_router(demande.router)
    _erreurs_en_html(app)
    # gzip for pages, fragments and JSON (static files come precompressed; see pages/statiques.py).
    app.add_middleware(Compression)
    fournisseur = urlsplit(settings.OIDC_DISCOVERY_URL)
    app.add_middleware(
        EnTetesSecurite,
        origine_fournisseur=f"{fournisseur.scheme}://{fournisseur.netloc}",
        https_seulement=settings.ENVIRONNEMENT != "developpement",
    )
    # The session itself is on the server (pages/session.py); this signed cookie carries only
    # the login under way and the next page's message.
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.SESSION_SECRET,
        session_cookie=sess.COOKIE_TRANSIT,
        max_age=sess.DUREE_TRANSIT,
        same_site="lax",
        https_only=settings.ENVIRONNEMENT != "developpement",
    )


def _erreurs_en_html(app: FastAPI) -> None:
    """One mapping of the same errors for pages (HTML); the API keeps its problem+json."""
    json_handlers = dict(app.exception_handlers)

    def erreur(
        request: Request, statut: int, titre: str, detail: str, entetes: dict[str, str] | None = None
    ) -> Response:
        reponse = page(request, "erreur.html", statut=statut, titre=titre, detail=detail)
        reponse.headers.update(entetes or {})
        return reponse

    async def _connexion(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, sess.ConnexionRequise)
        if request.headers.get("HX-Request") == "true":
            # An autosave after the session ended: the whole page goes to the login, not the field.
            courante = urlsplit(request.headers.get("HX-Current-URL", "")).path
            retour = sess.retour_sur(courante, exc.retour)
            return Response(status_code=200, headers={"HX-Redirect": sess.url_connexion(retour)})
        return RedirectResponse(sess.url_connexion(exc.retour), status_code=303)

    async def _domaine(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ErreurDomaine)
        if not est_page(request):
            return await json_handlers[ErreurDomaine](request, exc)
        return erreur(request, exc.statut, exc.titre, exc.message, entetes_de(exc))

    async def _probleme(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Probleme)
        if not est_page(request):
            return await json_handlers[Probleme](request, exc)
        return erreur(request, exc.statut, exc.titre, exc.detail, exc.entetes)

    async def _http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not est_page(request):
            return await json_handlers[StarletteHTTPException](request, exc)
        titre = TITRES_HTTP.get(exc.status_code, "Erreur")
        detail = "La page demandée n'existe pas." if exc.status_code == 404 else titre + "."
        return erreur(request, exc.status_code, titre, detail)

    async def _validation(request: Request, exc: Exception) -> Response:
        if not est_page(request):
            return await json_handlers[RequestValidationError](request, exc)
        return erreur(request, 400, "Requête invalide", "Le formulaire envoyé est incomplet ou invalide.")

    async def _inattendue(request: Request, exc: Exception) -> Response:
        reponse = await json_handlers[Exception](request, exc)
        if not est_page(request):
            return reponse
        return erreur(
            request, 500, TITRES_HTTP[500], "Une erreur inattendue est survenue ; elle a été journalisée."
        )

    app.add_exception_handler(sess.ConnexionRequise, _connexion)
    app.add_exception_handler(ErreurDomaine, _domaine)
    app.add_exception_handler(Probleme, _probleme)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _inattendue)
