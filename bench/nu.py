"""The bare FastAPI baseline: one route answering a fixed JSON the size of the request page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI


def creer_app(corps: dict[str, Any]) -> FastAPI:
    app = FastAPI(title="bench-nu")

    # Same path shape as the real route; no auth, no database: FastAPI and uvicorn only.
    @app.get("/api/v1/demandes/{numero}")
    async def page(numero: str) -> dict[str, Any]:
        return corps

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"statut": "ok"}

    return app


def servir(hote: str, port: int, fichier_corps: Path) -> None:
    # As `modif-solde api` serves: uvicorn.run, one process, no access log.
    corps = json.loads(fichier_corps.read_text())
    uvicorn.run(creer_app(corps), host=hote, port=port, log_config=None, access_log=False)
