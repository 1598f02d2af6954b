"""A cap on request bodies, checked while they stream in: nothing oversized is buffered."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CorpsTropGrand(Exception):
    pass


class LimiteCorps:
    """Answers 413 once a body passes `limite_pour(path)` bytes (Content-Length or counted)."""

    def __init__(self, app: ASGIApp, limite_json: int, limite_pieces: int) -> None:
        self.app = app
        self.limite_json = limite_json
        self.limite_pieces = limite_pieces

    def limite_pour(self, scope: Scope) -> int:
        return self.limite_pieces if scope["path"].endswith("/pieces") else self.limite_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limite = self.limite_pour(scope)
        longueur = dict(scope.get("headers") or []).get(b"content-length")
        if longueur is not None and longueur.isdigit() and int(longueur) > limite:
            await _refuser(send, limite)
            return
        recu = 0
        depasse = False
        commence = False

        async def recevoir() -> Message:
            nonlocal recu, depasse
            message = await receive()
            if message["type"] == "http.request":
                recu += len(message.get("body", b""))
                if recu > limite:
                    depasse = True
                    raise CorpsTropGrand
            return message

        async def envoyer(message: Message) -> None:
            nonlocal commence
            if depasse:
                # A parser that caught CorpsTropGrand answers its own 400 (the multipart one
                # does): the answer is the 413, whatever the application made of it.
                if message["type"] == "http.response.start" and not commence:
                    commence = True
                    await _refuser(send, limite)
                return
            commence = commence or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, recevoir, envoyer)
        except CorpsTropGrand:
            if not commence:
                commence = True
                await _refuser(send, limite)
        if depasse and not commence:
            await _refuser(send, limite)


async def _refuser(send: Send, limite: int) -> None:
    corps: dict[str, Any] = {
        "type": "about:blank",
        "title": "Contenu trop volumineux",
        "status": 413,
        "detail": f"Le corps de la requête dépasse la taille maximale ({_taille(limite)}).",
    }
    donnees = json.dumps(corps, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(donnees)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": donnees})


def _taille(octets: int) -> str:
    if octets >= 1024 * 1024:
        return f"{octets // (1024 * 1024)} Mo"
    return f"{octets // 1024} Ko"
