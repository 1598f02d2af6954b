"""The service's metrics, in Prometheus' text format (prometheus_client).

Two registries, one per role, so that each process exposes only what it measures:
- the API's (`REGISTRE_API`): HTTP requests by route template and status, their latency, and the
  open modifications read from the database at scrape time (open, due within 48 h, overdue);
- the worker's (`REGISTRE_WORKER`): modifications opened, closed (by outcome) and extended, e-mails
  sent / retried / failed by kind, the time from the invitation to the operator's answer, plus
  the Temporal SDK's own metrics (read from the SDK's loopback endpoint and merged in).

Counters live in the process: with several replicas, each exposes its own and Prometheus sums
them (`sum(rate(...))`). The gauges read from the database are the same on every API replica:
alert rules take their `max`.

The activities and the e-mail service call the one-line hooks below (`modification_ouverte`,
`modification_cloturee`, ...) once the outcome is written.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modif_solde.models.enums import StatutModification, TypeCourriel
from modif_solde.models.tables import Modification
from modif_solde.models.types import maintenant

if TYPE_CHECKING:
    from fastapi import FastAPI

    from modif_solde.config import Settings
    from modif_solde.db import SessionFactory
    from modif_solde.services.modifications import Cloture

journal = logging.getLogger(__name__)

# No `_created` series beside each counter: they double the output for nothing the rules use.
disable_created_metrics()

REGISTRE_API = CollectorRegistry()
REGISTRE_WORKER = CollectorRegistry()
for _registre in (REGISTRE_API, REGISTRE_WORKER):
    ProcessCollector(registry=_registre)
    PlatformCollector(registry=_registre)

# --- API ---

HTTP_REQUETES = Counter(
    "modif_solde_http_requetes",
    "Requêtes HTTP traitées, par méthode, modèle de route (jamais le chemin brut) et statut.",
    ["methode", "route", "statut"],
    registry=REGISTRE_API,
)
HTTP_DUREE = Histogram(
    "modif_solde_http_duree_secondes",
    "Durée de traitement des requêtes HTTP, par méthode et modèle de route.",
    ["methode", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRE_API,
)
MODIFICATIONS_OUVERTES = Gauge(
    "modif_solde_modifications_ouvertes",
    "Modifications ouvertes, lues dans la base au moment de la collecte.",
    registry=REGISTRE_API,
)
MODIFICATIONS_ECHEANCE_48H = Gauge(
    "modif_solde_modifications_echeance_48h",
    "Modifications ouvertes dont l'échéance tombe dans les 48 heures.",
    registry=REGISTRE_API,
)
MODIFICATIONS_ECHEANCE_DEPASSEE = Gauge(
    "modif_solde_modifications_echeance_depassee",
    "Modifications encore ouvertes 15 minutes après leur échéance : leur workflow aurait dû les clore.",
    registry=REGISTRE_API,
)

# Past its deadline, a modification's workflow closes it within seconds; 15 minutes leaves room
# for a worker restart without counting it.
MARGE_ECHEANCE = timedelta(minutes=15)
BIENTOT = timedelta(hours=48)
# The database is read at most this often, whatever the number of scrapers.
CACHE_ECHEANCES = 5.0
_METHODES = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# --- Worker ---

EVENEMENTS = ("ouverte", "confirmee", "renoncee", "expiree", "retiree", "prolongee")
MODIFICATIONS = Counter(
    "modif_solde_modifications",
    "Modifications ouvertes, closes (par issue) ou prolongées, une fois l'issue enregistrée.",
    ["evenement"],
    registry=REGISTRE_WORKER,
)
RESULTATS_COURRIEL = ("envoye", "reessai", "echec")
COURRIELS = Counter(
    "modif_solde_courriels",
    "Courriels acceptés par le serveur SMTP (envoye), refusés pour un temps et réessayés (reessai), "
    "abandonnés (echec), par type.",
    ["type", "resultat"],
    registry=REGISTRE_WORKER,
)
_HEURE, _JOUR = 3600.0, 86400.0
DELAI_REPONSE = Histogram(
    "modif_solde_delai_reponse_secondes",
    "Temps entre l'invitation (ouverture) et la réponse de l'opérateur (confirmation ou renonciation).",
    ["issue"],
    buckets=(_HEURE, 6 * _HEURE, *(j * _JOUR for j in (1, 2, 3, 5, 7, 10, 14, 20, 30, 60))),
    registry=REGISTRE_WORKER,
)

# The daily maintenance (workflows/entretien.py): gauges of the worker that ran it last; with
# several workers, rules take the `max` (the others stay at 0).
VERIFICATION_DIFFERENCES = Gauge(
    "modif_solde_verification_differences",
    "Différences entre la base, Temporal et le stockage trouvées par la dernière vérification de ce worker.",
    registry=REGISTRE_WORKER,
)
VERIFICATION_FAITE_LE = Gauge(
    "modif_solde_verification_faite_le_secondes",
    "Heure (epoch) de la dernière vérification menée à bien par ce worker.",
    registry=REGISTRE_WORKER,
)
DEMANDES_PURGEES = Counter(
    "modif_solde_demandes_purgees",
    "Demandes dont les données personnelles, les courriels et les pièces ont été supprimés (durée de conservation).",
    registry=REGISTRE_WORKER,
)

# Every series exists from the start (at 0): rate() and increase() see the first event.
for _evenement in EVENEMENTS:
    MODIFICATIONS.labels(_evenement)
for _type in TypeCourriel:
    for _resultat in RESULTATS_COURRIEL:
        COURRIELS.labels(_type.value, _resultat)
for _issue in (StatutModification.CONFIRMEE, StatutModification.RENONCEE):
    DELAI_REPONSE.labels(_issue.value)


# --- Hooks: one line where the outcome is written ---


def modification_ouverte() -> None:
    MODIFICATIONS.labels("ouverte").inc()


def modification_prolongee() -> None:
    MODIFICATIONS.labels("prolongee").inc()


def modification_cloturee(cloture: Cloture) -> None:
    """A close written now (not a repeat of one already done): its outcome, and for the
    operator's own answers the time since the invitation."""
    if cloture.deja_fait:
        return
    modification = cloture.modification
    statut = StatutModification(modification.statut)
    MODIFICATIONS.labels(statut.value).inc()
    if statut in (StatutModification.CONFIRMEE, StatutModification.RENONCEE) and modification.cloturee_le:
        delai = (modification.cloturee_le - modification.ouverte_le).total_seconds()
        DELAI_REPONSE.labels(statut.value).observe(max(delai, 0.0))


def verification_faite(differences: int) -> None:
    VERIFICATION_DIFFERENCES.set(differences)
    VERIFICATION_FAITE_LE.set(time.time())


def purge_faite(demandes: int) -> None:
    DEMANDES_PURGEES.inc(demandes)


def courriel(type_courriel: str, resultat: str) -> None:
    """`resultat`: envoye, reessai or echec (RESULTATS_COURRIEL)."""
    COURRIELS.labels(TypeCourriel(type_courriel).value, resultat).inc()


# --- The API's /metrics ---


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


def jeton_valide(autorisation: str | None, jeton: str) -> bool:
    attendu = f"Bearer {jeton}".encode()
    return hmac.compare_digest((autorisation or "").encode(), attendu)


def _route(scope: Scope) -> str:
    """The matched route's template (`/api/v1/modifications/{numero}`), never the raw path: no
    request or modification number in a label. Rebuilt from the path and its parameters, which
    holds whatever the nesting of routers and mounts; "aucune" when no route matched."""
    if scope.get("route") is None:
        # A mount (the static files) sets no route: its prefix is the scope's root path.
        if scope.get("endpoint") is not None and scope.get("root_path"):
            return f"{scope['root_path']}/{{path}}"
        return "aucune"
    modele = str(scope["path"])
    parametres = scope.get("path_params") or {}
    for nom, v in sorted(parametres.items(), key=lambda p: -len(str(p[1]))):
        if str(v):
            modele = re.sub(rf"(?<=/){re.escape(str(v))}(?=/|$)", f"{{{nom}}}", modele, count=1)
    if any(f"{{{nom}}}" not in modele for nom in parametres):
        # A value the path does not spell as is (a converter's): never the raw path.
        return str(getattr(scope["route"], "path_format", None) or "inconnue")
    return modele


class MesureHttp:
    """Counts every HTTP request and times it, labelled by the matched route's template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        debut = time.perf_counter()
        statut = 500

        async def envoyer(message: Message) -> None:
            nonlocal statut
            if message["type"] == "http.response.start":
                statut = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, envoyer)
        finally:
            methode = scope["method"] if scope["method"] in _METHODES else "AUTRE"
            route = _route(scope)
            HTTP_REQUETES.labels(methode, route, str(statut)).inc()
            HTTP_DUREE.labels(methode, route).observe(time.perf_counter() - debut)


def installer_api(app: FastAPI, settings: Settings) -> None:
    """GET /metrics and the HTTP measure. Protection: with MODIF_SOLDE_METRIQUES_JETON, the
    scraper sends it as a bearer token; without it, /metrics is open in development only, and
    answers 404 in production."""
    from modif_solde.api.problemes import reponse

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
        return Response(generate_latest(REGISTRE_API), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(MesureHttp)


# --- The worker's /metrics ---


class MetriquesTemporal(Collector):
    """The Temporal SDK's metrics, read from its own Prometheus endpoint on loopback and given out
    with the worker's: one port, one scrape target. `modif_solde_temporal_sdk_lisible` says
    whether the read worked."""

    def __init__(self, url: str) -> None:
        self.url = url

    def collect(self) -> Iterable[Metric]:
        lisible = GaugeMetricFamily(
            "modif_solde_temporal_sdk_lisible",
            "1 si les métriques du SDK Temporal ont pu être lues pour cette collecte.",
        )
        try:
            with urllib.request.urlopen(self.url, timeout=3) as reponse:  # noqa: S310 (loopback URL of ours)
                texte = reponse.read().decode()
            familles = list(text_string_to_metric_families(texte))
        except Exception as err:
            journal.warning("métriques du SDK Temporal illisibles : %s", err)
            lisible.add_metric([], 0)
            yield lisible
            return
        lisible.add_metric([], 1)
        yield lisible
        yield from familles


class _Silencieux(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ServeurThreads(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _protege(application: Any, jeton: str | None) -> Any:
    if jeton is None:
        return application

    def protegee(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        if not jeton_valide(environ.get("HTTP_AUTHORIZATION"), jeton):
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("WWW-Authenticate", 'Bearer realm="metriques"'),
                ],
            )
            return iter(["Jeton des métriques absent ou invalide.\n".encode()])
        return iter(application(environ, start_response))

    return protegee


Sante = Callable[[], tuple[int, dict[str, str]]]
_STATUTS = {200: "200 OK", 503: "503 Service Unavailable"}


def _avec_sante(application: Any, sante: Sante) -> Any:
    """GET /healthz answered by `sante` (status and JSON body), without the metrics' token: an
    orchestrator's probe carries none, and the answer tells nothing a scraper should not see."""

    def routee(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return application(environ, start_response)
        code, corps = sante()
        contenu = json.dumps(corps, ensure_ascii=False).encode()
        start_response(
            _STATUTS.get(code, f"{code} Statut"),
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(contenu))),
                ("Cache-Control", "no-store"),
            ],
        )
        return [contenu]

    return routee


class ServeurMetriques:
    """The worker's /metrics on its own port (a thread), with the SDK's metrics merged in, and its
    /healthz when given a `sante`."""

    def __init__(
        self, adresse: str, port: int, jeton: str | None, url_sdk: str | None, sante: Sante | None = None
    ) -> None:
        registre = CollectorRegistry()
        registre.register(_Tout(REGISTRE_WORKER))
        if url_sdk:
            registre.register(MetriquesTemporal(url_sdk))
        application = _protege(make_wsgi_app(registre), jeton)
        if sante is not None:
            application = _avec_sante(application, sante)
        self._serveur = make_server(
            adresse,
            port,
            application,
            server_class=_ServeurThreads,
            handler_class=_Silencieux,
        )
        self.port = int(self._serveur.server_port)
        self._thread = threading.Thread(target=self._serveur.serve_forever, name="metriques", daemon=True)

    def demarrer(self) -> None:
        self._thread.start()

    def arreter(self) -> None:
        # shutdown() waits for serve_forever(): only once it was started.
        if self._thread.is_alive():
            self._serveur.shutdown()
            self._thread.join(timeout=5)
        self._serveur.server_close()


class _Tout(Collector):
    """A registry's metrics, given out through another registry."""

    def __init__(self, registre: CollectorRegistry) -> None:
        self.registre = registre

    def collect(self) -> Iterable[Metric]:
        return self.registre.collect()
