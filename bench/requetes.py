"""SQL statements per page: the API in this process (httpx's ASGI transport) against the bench's
database, every statement counted by a SQLAlchemy `before_cursor_execute` listener.

Only public entry points: `create_app` with the same settings as the API process, and HTTP calls.
Each path is asked twice and the second call counted (the first may fill caches)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine

from modif_solde.api.app import create_app
from modif_solde.config import Settings


class _Compteur:
    def __init__(self) -> None:
        self.n = 0
        self.textes: list[str] = []
        self._verrou = threading.Lock()

    def __call__(self, _conn: Any, _curseur: Any, instruction: str, *_: Any) -> None:
        with self._verrou:
            self.n += 1
            self.textes.append(" ".join(instruction.split())[:160])


@contextmanager
def _ecoute() -> Iterator[_Compteur]:
    compteur = _Compteur()
    # On the Engine class: every engine of this process, the app's own included (async engines
    # run their statements through their sync Engine).
    event.listen(Engine, "before_cursor_execute", compteur)
    try:
        yield compteur
    finally:
        event.remove(Engine, "before_cursor_execute", compteur)


def settings_de(env: dict[str, str]) -> Settings:
    """The API process's settings, from the environment the bench gives it."""
    valeurs = {k.removeprefix("MODIF_SOLDE_"): v for k, v in env.items() if k.startswith("MODIF_SOLDE_")}
    return Settings.model_validate(valeurs)


async def compter(env: dict[str, str], pages: dict[str, tuple[str, dict[str, str]]]) -> dict[str, Any]:
    """`pages`: name → (path, headers). Answers, per name, the statements of one GET and its status."""
    app = create_app(settings_de(env))
    resultat: dict[str, Any] = {}
    # The app's request log would print every call on the bench's console.
    journal_app = logging.getLogger("modif_solde")
    niveau = journal_app.level
    journal_app.setLevel(logging.WARNING)
    try:
        return await _compter(app, pages, resultat)
    finally:
        journal_app.setLevel(niveau)


async def _compter(
    app: Any, pages: dict[str, tuple[str, dict[str, str]]], resultat: dict[str, Any]
) -> dict[str, Any]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://banc") as http:
            for nom, (chemin, entetes) in pages.items():
                await http.get(chemin, headers=entetes)
                with _ecoute() as compteur:
                    reponse = await http.get(chemin, headers=entetes)
                resultat[nom] = {
                    "chemin": chemin,
                    "statut": reponse.status_code,
                    "requetes_sql": compteur.n,
                    "instructions": compteur.textes,
                }
    return resultat
