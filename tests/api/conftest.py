"""The API over ASGI (httpx), on the real databases, with a worker on a real time-skipping
Temporal test server and a real SMTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modif_solde.api.app import create_app
from modif_solde.api.auth import Role, emettre_jeton
from modif_solde.config import Settings
from modif_solde.services.stockage import Stockage
from tests.workflows import conftest as temporal
from tests.workflows.conftest import Banc

# The Temporal test server, the SMTP server and the worker, shared with the workflow tests.
env = temporal.env
serveur_smtp = temporal.serveur_smtp
smtp = temporal.smtp
activites = temporal.activites
banc = temporal.banc

SECRET = "secret-de-test-0123456789-0123456789-abcdef"
SIRET = "50961588600025"
AUTRE_SIRET = "73282932000074"


def jeton(role: Role, siret: str | None = None, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {emettre_jeton(secret, f'{role.value}.test', role, siret)}"}


GESTIONNAIRE = jeton(Role.GESTIONNAIRE)
OPERATEUR = jeton(Role.OPERATEUR, SIRET)
AUTRE_OPERATEUR = jeton(Role.OPERATEUR, AUTRE_SIRET)


@pytest.fixture
def settings(engine: AsyncEngine, stockage: Stockage, banc: Banc) -> Settings:
    return Settings(
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        JWT_SECRET=SECRET,
        STORAGE_DIR=stockage.racine,
        TASK_QUEUE=banc.task_queue,
        PIECE_TAILLE_MAX=64 * 1024,
        PORTAIL_URL="https://portail.example",
    )


@pytest.fixture
async def http(settings: Settings, banc: Banc, factory: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=banc.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
