"""Dependencies: settings, session (one transaction per request), current user, Temporal client.

Every dependency is `async def`, even those that do not wait: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop per dependency and per request for a few attribute
reads (the JWT check included: a few dozen microseconds, less than the hop; a JWKS at a URL is
refreshed in the background, never by the request)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from modif_solde.api.auth import ClesIndisponibles, JetonInvalide, Role, Utilisateur, Verificateur
from modif_solde.api.problemes import Probleme
from modif_solde.config import Settings
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.journal import noter_appelant
from modif_solde.services.cycle import Cycle
from modif_solde.services.stockage import Stockage

journal = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False, description="Jeton JWT : `modif-solde token --role …`")
_DEFI = {"WWW-Authenticate": 'Bearer realm="modif-solde"'}


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


_NON_ENREGISTRE = "L'enregistrement n'a pas pu être validé : rien n'a été enregistré. Réessayez."


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request; a GET only reads. It commits before the answer is sent
    (scope "function"): a commit that fails answers an error, never a success."""
    state = request.app.state
    route_finie = False
    try:
        async with unit_of_work(
            state.sessions_lecture if request.method == "GET" else state.sessions
        ) as session:
            yield session
            route_finie = True
    except SQLAlchemyError as err:
        if not route_finie:
            raise
        journal.exception("commit refusé sur %s %s", request.method, request.url.path)
        # The database refusing or losing the commit: the connection's fault is worth a retry.
        indisponible = isinstance(err, OperationalError | InterfaceError) or (
            isinstance(err, DBAPIError) and err.connection_invalidated
        )
        raise Probleme(
            503 if indisponible else 500,
            _NON_ENREGISTRE,
            entetes={"Retry-After": "5"} if indisponible else None,
        ) from err


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_sessions(request: Request) -> SessionFactory:
    """For routes that wait on the workflow: they open short transactions themselves, so that
    no transaction (a lock, on SQLite) is held while an activity needs to write."""
    sessions: SessionFactory = request.app.state.sessions
    return sessions


SessionsDep = Annotated[SessionFactory, Depends(get_sessions)]


async def get_stockage(request: Request) -> Stockage:
    stockage: Stockage = request.app.state.stockage
    return stockage


StockageDep = Annotated[Stockage, Depends(get_stockage)]


async def get_client(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


TemporalDep = Annotated[Client, Depends(get_client)]


async def get_cycle(request: Request) -> Cycle:
    cycle: Cycle = request.app.state.cycle
    return cycle


CycleDep = Annotated[Cycle, Depends(get_cycle)]


async def authentifier(verificateur: Verificateur, autorisation: str | None) -> Utilisateur:
    """The caller of an `Authorization: Bearer …` header, or the Probleme to answer (401, or 503
    while the keys cannot be read). The one check, for the route's dependency and for the body
    guard that runs it before a body is read (api/limites.py)."""
    schema, _, jeton = (autorisation or "").strip().partition(" ")
    if schema.lower() != "bearer" or not jeton.strip():
        raise Probleme(401, "Un jeton d'accès (Authorization: Bearer …) est requis.", entetes=_DEFI)
    try:
        utilisateur = await verificateur.lire(jeton.strip())
    except JetonInvalide as exc:
        # The reason is logged, never answered: the caller learns only that the token is refused.
        journal.info("jeton refusé : %s", exc)
        raise Probleme(401, "Le jeton d'accès est invalide ou expiré.", entetes=_DEFI) from None
    except ClesIndisponibles:
        raise Probleme(
            503,
            "Les clés de vérification des jetons sont momentanément indisponibles.",
            entetes={"Retry-After": "5"},
        ) from None
    # Who asked: on this request's log lines, and in the workflow's and activities' for its actions.
    noter_appelant(utilisateur.sub)
    return utilisateur


async def get_utilisateur(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Utilisateur:
    # HTTPBearer states the scheme in the OpenAPI document; the header is read by authentifier.
    return await authentifier(request.app.state.jetons, request.headers.get("authorization"))


UtilisateurDep = Annotated[Utilisateur, Depends(get_utilisateur)]


def exiger(role: Role) -> object:
    async def _verifier(utilisateur: UtilisateurDep) -> Utilisateur:
        if utilisateur.role != role:
            raise Probleme(403, f"Cette action est réservée au rôle « {role.value} ».")
        return utilisateur

    return Depends(_verifier)


OperateurDep = Annotated[Utilisateur, exiger(Role.OPERATEUR)]
GestionnaireDep = Annotated[Utilisateur, exiger(Role.GESTIONNAIRE)]
