"""One structured log line per request, with the modification number when the path names one."""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modif_solde.journal import modification_courante

journal = logging.getLogger("modif_solde.api")
_NUMERO = re.compile(r"/(FINMSS\d{6}(?:M\d{1,4})?)(?:/|$)")


class JournalHttp:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trouve = _NUMERO.search(scope["path"])
        numero = trouve.group(1) if trouve else None
        jeton = modification_courante.set(numero)
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
            modification_courante.reset(jeton)
