"""What a request body may be, checked before anything reads it: on the API the caller's token
first, then a cap per route, by Content-Length or counted as the body streams in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modif_solde.api.deps import authentifier
from modif_solde.api.problemes import Probleme, reponse
from modif_solde.formats import taille_lisible

# A draft (four fields), an action (a reason of 2,000 characters at most), an opening (a comment
# of 4,000), a portal's form: the longest valid one, every character escaped as JSON's
# \uXXXX\uXXXX or a form's %XX%XX%XX%XX, stays under this.
CORPS_ACTION = 64 * 1024
# What a multipart envelope adds around a file (boundaries, headers, the other fields).
ENVELOPPE = 64 * 1024
_PIECES = re.compile(r"(?:/api/v1)?/modifications/[^/]+/pieces")


class CorpsTropGrand(Exception):
    pass


@dataclass(frozen=True)
class Plafonds:
    """The cap of each route's body, in bytes."""

    import_demande: int  # a request with its documents, in base64 (MODIF_SOLDE_IMPORT_TAILLE_MAX)
    piece: int  # one document (MODIF_SOLDE_PIECE_TAILLE_MAX)

    def pour(self, methode: str, chemin: str) -> int:
        if methode != "POST":
            return CORPS_ACTION
        if chemin == "/api/v1/demandes":
            return self.import_demande
        if chemin == "/demandes/importer":  # the portal's form: the file in a multipart envelope
            return self.import_demande + ENVELOPPE
        if _PIECES.fullmatch(chemin):
            return self.piece + ENVELOPPE
        return CORPS_ACTION


class GardeCorps:
    """Before the application reads a body (FastAPI parses a JSON body before it runs the
    dependencies that check the token): an API request that carries one must first show a valid
    token (the same check as the routes', its result remembered by the verifier), then its body
    is refused past its route's cap, by its Content-Length or as it streams (413 problem+json)."""

    def __init__(self, app: ASGIApp, plafonds: Plafonds) -> None:
        self.app = app
        self.plafonds = plafonds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entetes = Headers(scope=scope)
        longueur = entetes.get("content-length")
        avec_corps = "transfer-encoding" in entetes or (longueur is not None and longueur != "0")
        if avec_corps and scope["path"].startswith("/api/"):
            try:
                await authentifier(scope["app"].state.jetons, entetes.get("authorization"))
            except Probleme as refus:
                await reponse(refus.statut, refus.titre, refus.detail, entetes=refus.entetes)(
                    scope, receive, send
                )
                return
        limite = self.plafonds.pour(scope["method"], scope["path"])
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
        "detail": f"Le corps de la requête dépasse la taille maximale ({taille_lisible(limite)}).",
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
