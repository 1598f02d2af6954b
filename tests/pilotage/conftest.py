"""The API over ASGI on the real databases; Temporal is not needed to read figures (the API
connects to it lazily)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.services.stockage import Stockage
from tests.api.conftest import SECRET


@pytest.fixture
async def http(engine: AsyncEngine, stockage: Stockage, factory: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        JWT_SECRET=SECRET,
        STORAGE_DIR=stockage.racine,
        PORTAIL_URL="https://portail.example",
        ENVIRONNEMENT="developpement",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
