"""Errors as application/problem+json (RFC 9457), in French, from one place."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modif_solde.models.regles import traduire_erreurs
from modif_solde.services.erreurs import ErreurDomaine, StockageIndisponible
from modif_solde.web.problemes import TITRES_HTTP, Probleme, entetes_de

__all__ = ["TITRES_HTTP", "Probleme", "installer", "reponse"]

journal = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"


def reponse(
    statut: int,
    titre: str,
    detail: str,
    erreurs: list[dict[str, str]] | None = None,
    entetes: dict[str, str] | None = None,
) -> JSONResponse:
    corps: dict[str, Any] = {"type": "about:blank", "title": titre, "status": statut, "detail": detail}
    if statut == 422 and not erreurs:
        # A 422 always names a field and its rule: the whole body, when no field is known.
        erreurs = [{"champ": "corps", "message": detail}]
    if erreurs is not None:
        corps["errors"] = erreurs
    return JSONResponse(corps, status_code=statut, media_type=MEDIA_TYPE, headers=entetes)


def erreurs_de_requete(exc: RequestValidationError) -> list[dict[str, str]]:
    """FastAPI's validation errors in French; the contract names body fields from its root."""
    lignes = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):
            loc = loc[1:]
        lignes.append({**err, "loc": loc})
    return traduire_erreurs(lignes)


def methodes_permises(request: Request) -> list[str]:
    """Every method the OpenAPI document gives this path: Starlette's 405 names only the
    methods of the first route that matched the path (POST /demandes, not GET /demandes)."""
    methodes: set[str] = set()
    for modele, operations in request.app.openapi()["paths"].items():
        motif = "".join(
            "[^/]+" if morceau.startswith("{") else re.escape(morceau)
            for morceau in re.split(r"(\{[^/}]+\})", modele)
        )
        if re.fullmatch(motif, request.url.path):
            methodes |= {m.upper() for m in operations}
    return sorted(methodes)


def installer(app: FastAPI) -> None:
    @app.exception_handler(ErreurDomaine)
    async def _domaine(_: Request, exc: ErreurDomaine) -> JSONResponse:
        statut = exc.statut
        return reponse(
            statut, exc.titre, exc.message, exc.erreurs if statut == 422 else None, entetes_de(exc) or None
        )

    @app.exception_handler(Probleme)
    async def _probleme(_: Request, exc: Probleme) -> JSONResponse:
        return reponse(exc.statut, exc.titre, exc.detail, entetes=exc.entetes)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        erreurs = erreurs_de_requete(exc)
        return reponse(
            422, "Données invalides", f"La requête ne respecte pas {len(erreurs)} règle(s).", erreurs
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titre = TITRES_HTTP.get(exc.status_code, "Erreur")
        if exc.status_code == 400:
            # The framework's 400s (a body it cannot parse) say so in English.
            detail = "Le corps de la requête est mal formé : il n'a pas pu être lu."
        elif isinstance(exc.detail, str) and exc.status_code not in (404, 405):
            detail = exc.detail
        else:
            detail = titre + "."
        entetes = getattr(exc, "headers", None)
        if exc.status_code == 405:
            entetes = {**(entetes or {}), "Allow": ", ".join(methodes_permises(request))}
        return reponse(exc.status_code, titre, detail, entetes=entetes)

    @app.exception_handler(StockageIndisponible)
    async def _stockage(request: Request, exc: StockageIndisponible) -> JSONResponse:
        journal.warning(
            "stockage des pièces indisponible sur %s %s", request.method, request.url.path, exc_info=exc
        )
        return reponse(503, TITRES_HTTP[503], exc.message)

    @app.exception_handler(Exception)
    async def _inattendue(request: Request, exc: Exception) -> JSONResponse:
        journal.exception("erreur inattendue sur %s %s", request.method, request.url.path)
        return reponse(500, TITRES_HTTP[500], "Une erreur inattendue est survenue ; elle a été journalisée.")
