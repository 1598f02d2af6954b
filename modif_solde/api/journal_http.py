"""One structured log line per request, with the modification number when the path names one,
and the request id: `X-Request-ID` taken when well-formed (the reverse proxy's), made otherwise,
returned on the answer and carried to the workflow and its activities (modif_solde.propagation)."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modif_solde.journal import Appel, appel_courant, modification_courante

journal = logging.getLogger("modif_solde.api")
_NUMERO = re.compile(r"/(FINMSS\d{6}(?:M\d{1,4})?)(?:/|$)")
ENTETE_REQUETE = "X-Request-ID"
# What a proxy or a client sends (nginx's $request_id: 32 hex digits; UUIDs; trace ids): safe in
# a log line and a header. Anything else is replaced, never copied into the logs.
_REQUETE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,127}")


def identifiant_requete(recu: bytes | None) -> str:
    if recu is not None:
        try:
            texte = recu.decode("ascii")
        except UnicodeDecodeError:
            texte = ""
        if _REQUETE_ID.fullmatch(texte):
            return texte
    return uuid.uuid4().hex


class JournalHttp:
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
            journal.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                statut,
                extra={
                    "modification": numero,
                    "statut": statut,
                    "duree_ms": round((time.perf_counter() - debut) * 1000, 1),
                },
            )
            appel_courant.reset(jeton_appel)
            modification_courante.reset(jeton)
