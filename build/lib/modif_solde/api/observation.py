"""What every HTTP request leaves behind, timed once: one structured log line (with the
modification number when the path names one, and the request id: `X-Request-ID` taken when
well-formed, the reverse proxy's, made otherwise, returned on the answer and carried to the
workflow and its activities, modif_solde.propagation), and its count and latency under its
route's template (modif_solde.compteurs, exposed by api/metriques.py)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modif_solde.compteurs import HTTP_DUREE, HTTP_REQUETES
from modif_solde.journal import Appel, appel_courant, modification_courante

journal = logging.getLogger("modif_solde.api")
_NUMERO = re.compile(r"/(FINMSS\d{6}(?:M\d{1,4})?)(?:/|$)")
ENTETE_REQUETE = "X-Request-ID"
# What a proxy or a client sends (nginx's $request_id: 32 hex digits; UUIDs; trace ids): safe in
# a log line and a header. Anything else is replaced, never copied into the logs.
_REQUETE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")
_METHODES = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def identifiant_requete(recu: bytes | None) -> str:
    if recu is not None:
        try:
            texte = recu.decode("ascii")
        except UnicodeDecodeError:
            texte = ""
        if _REQUETE_ID.fullmatch(texte):
            return texte
    return uuid.uuid4().hex


class Observation:
    """The one observability middleware, outermost: 413s and 500s are logged and counted too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trouve = _NUMERO.search(scope["path"])
        numero = trouve.group(1) if trouve else None
        recu = next((v for k, v in scope["headers"] if k == b"x-request-id"), None)
        appel = Appel(requete_id=identifiant_requete(recu))
        jeton = modification_courante.set(numero)
        jeton_appel = appel_courant.set(appel)
        debut = time.perf_counter()
        statut = 500

        async def envoyer(message: Message) -> None:
            nonlocal statut
            if message["type"] == "http.response.start":
                statut = message["status"]
                MutableHeaders(scope=message)[ENTETE_REQUETE] = appel.requete_id or ""
            await send(message)

        try:
            await self.app(scope, receive, envoyer)
        finally:
            duree = time.perf_counter() - debut
            methode = scope["method"] if scope["method"] in _METHODES else "AUTRE"
            route = _route(scope)
            HTTP_REQUETES.labels(methode, route, str(statut)).inc()
            HTTP_DUREE.labels(methode, route).observe(duree)
            journal.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                statut,
                extra={
                    "modification": numero,
                    "statut": statut,
                    "duree_ms": round(duree * 1000, 1),
                },
            )
            appel_courant.reset(jeton_appel)
            modification_courante.reset(jeton)


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
