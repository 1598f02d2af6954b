"""Liveness and readiness: /readyz says which of the database and Temporal is unreachable."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import httpx

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.services import modifications as svc
from modif_solde.temporal import connecter
from modif_solde.workflows.modification import ModificationWorkflow
from tests.api.conftest import OPERATEUR
from tests.constructeurs import entree_modification
from tests.workflows.conftest import Banc, port_libre


async def test_pret_quand_tout_repond(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"statut": "ok"}
    r = await http.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"statut": "pret", "base_de_donnees": "ok", "schema": "ok", "temporal": "ok"}


async def test_indisponible_sans_temporal(settings: Settings) -> None:
    ailleurs = settings.model_copy(update={"TEMPORAL_ADDRESS": f"127.0.0.1:{port_libre()}"})
    app = create_app(ailleurs, client=await connecter(ailleurs, lazy=True))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            assert (await client.get("/healthz")).status_code == 200
            r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["statut"] == "indisponible" and r.json()["base_de_donnees"] == "ok"
    assert r.json()["temporal"].startswith("injoignable")


async def test_aucun_worker_ne_repond_503_borne(
    settings: Settings,
    banc: Banc,
    factory: SessionFactory,
    demande: Demande,
    echeances: tuple[datetime, datetime, datetime],
) -> None:
    """The modification exists, its workflow sits on a task queue no worker polls: the update
    cannot be answered, and the API says so within DELAI_REPONSE_WORKFLOW instead of hanging."""
    ouverte_le, relance_le, expire_le = echeances
    async with unit_of_work(factory) as session:
        await svc.ouvrir(
            session,
            svc.Ouverture(
                "FINMSS009266",
                "FINMSS009266M1",
                "À corriger",
                ["pieces"],
                "g",
                ouverte_le,
                relance_le,
                expire_le,
            ),
        )
    entree = entree_modification(commentaire="À corriger", champs=["pieces"], ouverte_par="g")
    await banc.client.start_workflow(
        ModificationWorkflow.run, entree, id="FINMSS009266M1", task_queue="file-sans-worker"
    )
    rapide = settings.model_copy(update={"DELAI_REPONSE_WORKFLOW": timedelta(seconds=1)})
    app = create_app(rapide, client=banc.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            debut = time.monotonic()
            r = await client.post("/api/v1/modifications/FINMSS009266M1/confirmer", headers=OPERATEUR)
            duree = time.monotonic() - debut
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert duree < 5
    async with factory() as session:
        assert (await svc.charger_modification(session, "FINMSS009266M1")).statut == "ouverte"
