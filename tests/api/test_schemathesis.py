"""The OpenAPI document says what the service does: schemathesis runs every check (`--checks
all`) through its four phases (examples, coverage, fuzzing, stateful), as the request's
operator and as a gestionnaire, on both databases, against the real application served by
uvicorn, with a worker on the Temporal test server. Example counts are bounded so that the run
stays short (about 15 s each)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.models.tables import Demande
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_parcours import ouvrir
from tests.workflows.conftest import Banc, ServeurSmtp, port_libre

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIGURATION = Path(__file__).with_name("schemathesis.toml")
# The formats the schema names (siret, iban, telephone-fr…), drawn valid by the application's rules.
FORMATS = Path(__file__).with_name("formats_schemathesis.py")
EXEMPLES_PAR_OPERATION = 30


@pytest.fixture
async def serveur(settings: Settings, banc: Banc) -> AsyncIterator[str]:
    """The application under uvicorn, on a free port, in this test's event loop."""
    port = port_libre()
    app = create_app(settings, client=banc.client)
    serveur = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    tache = asyncio.create_task(serveur.serve())
    while not serveur.started:
        if tache.done():
            tache.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        serveur.should_exit = True
        await tache


@pytest.mark.parametrize("identite", ["operateur", "gestionnaire"])
async def test_schemathesis_toutes_les_verifications(
    serveur: str, demande: Demande, smtp: ServeurSmtp, identite: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=serveur, timeout=30) as http:
        # An open modification, so that generated calls on it reach the workflow too.
        await ouvrir(http)
    entetes = OPERATEUR if identite == "operateur" else GESTIONNAIRE
    processus = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIGURATION),
        "run",
        f"{serveur}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(EXEMPLES_PAR_OPERATION),
        "--seed",
        "20261127",
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--suppress-health-check",
        "all",
        "--header",
        f"Authorization: {entetes['Authorization']}",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(FORMATS)},
    )
    sortie, _ = await processus.communicate()
    texte = sortie.decode(errors="replace")
    assert processus.returncode == 0, texte
