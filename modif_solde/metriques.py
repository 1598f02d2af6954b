"""The worker's metrics server: its counters (modif_solde.compteurs' `REGISTRE_WORKER`) and the
Temporal SDK's own metrics (read from the SDK's loopback endpoint and merged in), on one port
with the worker's health, in Prometheus' text format. `jeton_valide`: the scraper's bearer token,
for the API's /metrics too (api/metriques.py)."""

from __future__ import annotations

import hmac
import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    pass

from modif_solde.compteurs import REGISTRE_WORKER

journal = logging.getLogger(__name__)


def jeton_valide(autorisation: str | None, jeton: str) -> bool:
    attendu = f"Bearer {jeton}".encode()
    return hmac.compare_digest((autorisation or "").encode(), attendu)


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
