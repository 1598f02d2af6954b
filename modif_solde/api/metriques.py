"""The API's GET /metrics: the HTTP counters (counted by api/observation.py) and the open
modifications' deadlines, read from the database at scrape time (at most every few seconds)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import case, func, select
from starlette.requests import Request
from starlette.responses import Response

from modif_solde.api.metriques_pilotage import actualiser as actualiser_pilotage
from modif_solde.api.problemes import reponse
from modif_solde.compteurs import (
    CACHE_ECHEANCES,
    MODIFICATIONS_ECHEANCE_48H,
    MODIFICATIONS_ECHEANCE_DEPASSEE,
    MODIFICATIONS_OUVERTES,
    REGISTRE_API,
)
from modif_solde.metriques import jeton_valide
from modif_solde.models.enums import StatutModification
from modif_solde.models.tables import Modification
from modif_solde.models.types import maintenant

if TYPE_CHECKING:
    from fastapi import FastAPI

    from modif_solde.config import Settings
    from modif_solde.db import SessionFactory

journal = logging.getLogger(__name__)

# Past its deadline, a modification's workflow closes it within seconds; 15 minutes leaves room
# for a worker restart without counting it.
MARGE_ECHEANCE = timedelta(minutes=15)
BIENTOT = timedelta(hours=48)


@dataclass
class _Echeances:
    lues_le: float = float("-inf")
    verrou: asyncio.Lock | None = None
    duree: float = CACHE_ECHEANCES


async def lire_echeances(sessions: SessionFactory, le: datetime | None = None) -> tuple[int, int, int]:
    """Open modifications: all, due within 48 h, overdue by more than MARGE_ECHEANCE. One query
    over the partial index of open modifications."""
    le = le or maintenant()
    expire_le = Modification.__table__.c.expire_le  # type: ignore[attr-defined]
    requete = select(
        func.count(),
        func.coalesce(func.sum(case(((expire_le > le) & (expire_le <= le + BIENTOT), 1), else_=0)), 0),
        func.coalesce(func.sum(case((expire_le < le - MARGE_ECHEANCE, 1), else_=0)), 0),
    ).where(Modification.__table__.c.statut == StatutModification.OUVERTE.value)  # type: ignore[attr-defined]
    async with sessions() as session:
        connexion = await session.connection()
        ouvertes, bientot, depassees = (await connexion.execute(requete)).one()
    return int(ouvertes), int(bientot), int(depassees)


async def _actualiser_echeances(app: Any) -> None:
    etat: _Echeances = app.state.metriques_echeances
    if etat.verrou is None:
        etat.verrou = asyncio.Lock()
    async with etat.verrou:
        if time.monotonic() - etat.lues_le < etat.duree:
            return
        try:
            ouvertes, bientot, depassees = await asyncio.wait_for(
                lire_echeances(app.state.sessions_lecture), timeout=5
            )
        except Exception:
            # The gauges keep their last value; the scrape still answers (HTTP metrics).
            journal.warning("métriques : lecture des échéances impossible", exc_info=True)
            return
        MODIFICATIONS_OUVERTES.set(ouvertes)
        MODIFICATIONS_ECHEANCE_48H.set(bientot)
        MODIFICATIONS_ECHEANCE_DEPASSEE.set(depassees)
        etat.lues_le = time.monotonic()


def installer_api(app: FastAPI, settings: Settings) -> None:
    """GET /metrics (the HTTP measure is api/observation.py's). Protection: with MODIF_SOLDE_METRIQUES_JETON, the
    scraper sends it as a bearer token; without it, /metrics is open in development only, and
    answers 404 in production."""
    app.state.metriques_echeances = _Echeances()

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        jeton = settings.METRIQUES_JETON
        if jeton is None and settings.ENVIRONNEMENT != "developpement":
            return reponse(
                404,
                "Métriques désactivées",
                "Définissez MODIF_SOLDE_METRIQUES_JETON pour servir /metrics en production.",
            )
        if jeton is not None and not jeton_valide(request.headers.get("authorization"), jeton):
            refus = reponse(401, "Jeton absent ou invalide", "/metrics demande le jeton des métriques.")
            refus.headers["WWW-Authenticate"] = 'Bearer realm="metriques"'
            return refus
        await _actualiser_echeances(request.app)
        await actualiser_pilotage(request.app)
        return Response(generate_latest(REGISTRE_API), media_type=CONTENT_TYPE_LATEST)
