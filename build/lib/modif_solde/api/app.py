"""The FastAPI application: lifespan (database, storage, Temporal client), routers, errors."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from temporalio.client import Client

from modif_solde.api import demandes, modifications, pilotage, signalements
from modif_solde.api.auth import Verificateur
from modif_solde.api.limites import CorpsTropGrand, GardeCorps, Plafonds
from modif_solde.api.metriques import installer_api as installer_metriques
from modif_solde.api.observation import Observation
from modif_solde.api.problemes import installer, reponse
from modif_solde.config import ReglagesInvalides, Settings, get_settings, verifier_reglages
from modif_solde.connexion_temporal import CibleTemporal, expliquer_echec, raison_echec
from modif_solde.db import create_engine, est_sqlite, session_factory
from modif_solde.migrations import etat_schema
from modif_solde.models.schemas import DemandeImport
from modif_solde.pages import installer_portail
from modif_solde.services.cycle import Cycle
from modif_solde.services.stockage import ouvrir_stockage
from modif_solde.temporal import cible, connecter

journal = logging.getLogger(__name__)

DESCRIPTION = """
Cycle de modification des demandes de solde MSS.

Chaque appel `/api/v1` porte un jeton `Authorization: Bearer <JWT>` (rôles `operateur`, avec
`siret`, et `gestionnaire`). Les erreurs sont au format `application/problem+json`, en français.
"""


def create_app(settings: Settings | None = None, client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Outside development: a JWKS, the login's real secrets, the portal's public address
    # (ReglagesInvalides names each one refused); a JWKS file that cannot be read stops here too.
    verifier_reglages(settings, "api")
    try:
        verificateur = Verificateur(settings)
    except ValueError as exc:
        raise ReglagesInvalides([f"MODIF_SOLDE_JWT_JWKS_FICHIER : {exc}"]) from None
    # Where Temporal is, and its certificate files read once: a setting that cannot work stops
    # the start here (ConfigurationTemporalInvalide), not at the first request.
    vers_temporal = cible(settings)
    if client is None:
        vers_temporal.options()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.DATABASE_URL)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        # SQLite: reads need not queue behind the write lock (PostgreSQL: the same engine).
        lecture = (
            create_engine(settings.DATABASE_URL, lecture_seule=True)
            if est_sqlite(settings.DATABASE_URL)
            else engine
        )
        app.state.engine_lecture = lecture
        app.state.sessions_lecture = session_factory(lecture)
        app.state.stockage = ouvrir_stockage(settings)
        # Lazy: the API starts (and /readyz says why it is not ready) while Temporal is down.
        app.state.temporal = client or await connecter(settings, lazy=True)
        app.state.cycle = Cycle(
            app.state.sessions, app.state.sessions_lecture, app.state.temporal, app.state.stockage, settings
        )
        # A JWKS at a URL: its first read starts now, in the background.
        verificateur.demarrer()
        app.state.temporal_refus = None
        yield
        await verificateur.arreter()
        await app.state.stockage.fermer()
        await engine.dispose()
        await lecture.dispose()

    app = FastAPI(
        title="modif-solde",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's own pages load Swagger UI and ReDoc from a public CDN with an inline script:
        # never. /docs is the portal's own page in development (pages/documentation.py).
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {
                "name": "demandes",
                "description": "Demandes de solde : import, consultation, ouverture d'une modification",
            },
            {
                "name": "modifications",
                "description": "Le brouillon, ses pièces, la confirmation ou la renonciation",
            },
            {
                "name": "signalements",
                "description": "Les erreurs ou oublis signalés par l'opérateur, et la réponse du gestionnaire",
            },
            {
                "name": "pilotage",
                "description": "Les chiffres du cycle sur une période, pour les gestionnaires",
            },
            {"name": "sante", "description": "Vivacité et disponibilité"},
        ],
    )
    installer(app)
    app.state.jetons = verificateur
    app.state.temporal_namespace = vers_temporal.namespace
    app.state.en_arret = False  # set on SIGTERM by `modif-solde api` (cli.py)

    @app.exception_handler(CorpsTropGrand)
    async def _trop_grand(_: Request, __: CorpsTropGrand) -> JSONResponse:
        return reponse(413, "Contenu trop volumineux", "Le corps de la requête dépasse la taille maximale.")

    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(demandes.router)
    v1.include_router(modifications.router)
    v1.include_router(signalements.router)
    v1.include_router(pilotage.router)
    app.include_router(v1)

    @app.get("/healthz", tags=["sante"], summary="Le processus répond", operation_id="verifier_vivacite")
    async def healthz() -> dict[str, str]:
        return {"statut": "ok"}

    @app.get(
        "/readyz",
        tags=["sante"],
        summary="Base de données à jour et Temporal joignable",
        operation_id="verifier_disponibilite",
    )
    async def readyz(request: Request) -> JSONResponse:
        if request.app.state.en_arret:
            # Stopping: the load balancer sends no new requests; those under way still finish.
            return JSONResponse({"statut": "arret_en_cours"}, status_code=503)
        verifications: dict[str, str] = {}
        try:
            # The schema's revision, read in the same round trip as the reachability check: a
            # deployment whose `modif-solde migrer` has not run yet is not ready.
            schema = await asyncio.wait_for(etat_schema(request.app.state.engine), timeout=2)
            verifications["base_de_donnees"] = "ok"
            verifications["schema"] = "ok" if not schema.en_retard else schema.message()
        except Exception as err:
            verifications["base_de_donnees"] = f"injoignable ({type(err).__name__})"
        try:
            await asyncio.wait_for(request.app.state.temporal.service_client.check_health(), timeout=2)
            verifications["temporal"] = "ok"
            request.app.state.temporal_refus = None
        except Exception as err:
            verifications["temporal"] = f"injoignable ({type(err).__name__})"
            _signaler_temporal(request.app, vers_temporal, err)
        pret = all(v == "ok" for v in verifications.values())
        return JSONResponse(
            {"statut": "pret" if pret else "indisponible", **verifications}, status_code=200 if pret else 503
        )

    _openapi_avec_import(app)
    # No body is read before the API's caller is known, nor past its route's cap (inside the
    # portal's middlewares: its refusals carry the security headers too).
    app.add_middleware(
        GardeCorps,
        plafonds=Plafonds(import_demande=settings.IMPORT_TAILLE_MAX, piece=settings.PIECE_TAILLE_MAX),
    )
    # The operator's portal (pages, login, session, security headers): see modif_solde/pages.
    installer_portail(app, settings)
    # GET /metrics; every request logged, counted and timed once (outermost: 413s and 500s included).
    installer_metriques(app, settings)
    app.add_middleware(Observation)
    return app


def _signaler_temporal(app: FastAPI, vers: CibleTemporal, erreur: BaseException) -> None:
    """The reason Temporal cannot be reached, in French in the log, once per change of reason
    (/readyz is polled every few seconds; its body names the error's type only)."""
    raison = raison_echec(vers, erreur)
    if raison != app.state.temporal_refus:
        app.state.temporal_refus = raison
        journal.warning(expliquer_echec(vers, erreur))


PROBLEME: dict[str, Any] = {
    "title": "Probleme",
    "description": "RFC 9457, en français ; `errors` liste chaque règle non respectée.",
    "type": "object",
    "required": ["title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["champ", "message"],
                "properties": {"champ": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_ERREURS = {
    "400": "Corps de requête illisible (JSON ou multipart mal formé)",
    "401": "Jeton absent ou invalide",
    "403": "Hors du rôle de l'appelant",
    "404": "Introuvable (ou d'un autre SIRET)",
    "409": "Transition impossible dans l'état actuel",
    "413": "Corps trop volumineux",
    "415": "Type de pièce non accepté",
    "422": "Données invalides",
    "503": "Traitement momentanément indisponible",
}


def _erreurs_documentees(operation: dict[str, Any], protege: bool) -> None:
    """Every error answer is application/problem+json, and documented as such."""
    reponses = operation.setdefault("responses", {})
    codes = [c for c in _ERREURS if protege or c in ("422",)]
    # Plus the errors a route declares itself (412…), with their own description.
    codes += [c for c in reponses if c[0] in "45" and c not in codes]
    for code in codes:
        reponses[code] = {
            "description": _ERREURS.get(code) or reponses[code].get("description", ""),
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Probleme"}}},
        }
    if protege:
        operation["security"] = [{"HTTPBearer": []}]


def _openapi_avec_import(app: FastAPI) -> None:
    """The OpenAPI document, with the bearer scheme on /api/v1 and the import's JSON Schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        composants = schema.setdefault("components", {})
        composants["x-import-json-schema"] = json.loads(json.dumps(DemandeImport.model_json_schema()))
        composants.setdefault("schemas", {})["Probleme"] = PROBLEME
        for chemin, operations in schema["paths"].items():
            for operation in operations.values():
                _erreurs_documentees(operation, protege=chemin.startswith("/api/v1"))
        composants["schemas"].pop("HTTPValidationError", None)
        composants["schemas"].pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
