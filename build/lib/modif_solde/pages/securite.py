"""Security headers of every answer: a CSP without inline script, no framing, no referrer leak,
and outside development HTTPS only (HSTS)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class EnTetesSecurite:
    """Set on every answer unless the route set its own (a document download has a stricter CSP)."""

    def __init__(self, app: ASGIApp, origine_fournisseur: str, https_seulement: bool) -> None:
        self.app = app
        # A form's redirect (logout) leads to the identity provider: form-action allows it.
        self.entetes = {
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
                f"form-action 'self' {origine_fournisseur}; frame-ancestors 'none'"
            ),
            "Referrer-Policy": "same-origin",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
            "Cross-Origin-Opener-Policy": "same-origin",
        }
        if https_seulement:
            # Two years, the usual preload value. Sent by the service itself so that a proxy
            # that forgets it changes nothing; includeSubDomains is the domain owner's choice (the
            # proxy may add it), since the service does not know what else lives under its domain.
            self.entetes["Strict-Transport-Security"] = "max-age=63072000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def envoyer(message: Message) -> None:
            if message["type"] == "http.response.start":
                entetes = MutableHeaders(scope=message)
                for nom, valeur in self.entetes.items():
                    if nom not in entetes:
                        entetes[nom] = valeur
                # Pages hold personal data: no shared or back-button cache of them.
                if entetes.get("content-type", "").startswith("text/html") and "cache-control" not in entetes:
                    entetes["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, envoyer)
