"""gzip for the answers built on the fly (pages, fragments, JSON, a static file `make` did not
precompress), by Starlette's GZip responder, limited to the types compression helps: a
document download (PDF, image, archive), a font or an already encoded body goes out as it is,
unbuffered, and so does a body under a kilobyte."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipResponder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modif_solde.pages.statiques import TAILLE_MINIMALE

TYPES = frozenset(
    {
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "application/json",
        "application/problem+json",
        "image/svg+xml",
        "text/plain",
    }
)
# Level 6 (zlib's default): nearly level 9's size for a page, at a fraction of its CPU.
NIVEAU = 6


class _Repondeur(GZipResponder):
    """Starlette's responder, told to stand aside for a type outside TYPES."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, TAILLE_MINIMALE, compresslevel=NIVEAU)
        self.direct = False

    async def send_with_compression(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            type_ = Headers(raw=message.get("headers", [])).get("content-type", "")
            self.direct = type_.partition(";")[0].strip().lower() not in TYPES
        if self.direct:
            await self.send(message)
            return
        await super().send_with_compression(message)


class Compression:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or "gzip" not in Headers(scope=scope).get("accept-encoding", ""):
            await self.app(scope, receive, send)
            return
        await _Repondeur(self.app)(scope, receive, send)
