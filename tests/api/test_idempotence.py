"""Idempotency-Key on the workflow's actions: a retry of the same action with the same key gets
the same answer, even once the workflow has ended or after a 503 whose update went through."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.models.tables import Demande
from modif_solde.worker import construire_worker
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_parcours import OUVERTURE, ouvrir, probleme
from tests.workflows.conftest import Banc, ServeurSmtp
from tests.workflows.test_redemarrage_worker import serveur_dev

__all__ = ["serveur_dev"]  # the dev server fixture, shared with the restart tests

M1 = "/api/v1/modifications/FINMSS009266M1"


def cle(valeur: str) -> dict[str, str]:
    return {"Idempotency-Key": valeur}


async def courriels(http: httpx.AsyncClient, attendus: int) -> list[str]:
    """The e-mail log once `attendus` e-mails are in it (they go out beside the answer)."""
    types: list[str] = []
    for _ in range(200):
        r = await http.get("/api/v1/demandes/FINMSS009266/courriels", headers=GESTIONNAIRE)
        corps: Any = r.json()
        types = [c["type"] for c in (corps["elements"] if isinstance(corps, dict) else corps)]
        if len(types) >= attendus:
            break
        await asyncio.sleep(0.05)
    return types


async def test_confirmer_deux_fois_meme_cle_meme_reponse(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    premiere = await http.post(f"{M1}/confirmer", headers={**OPERATEUR, **cle("k-confirmer-1")})
    assert premiere.status_code == 200, premiere.text
    assert len(await courriels(http, 3)) == 3  # the workflow has ended
    seconde = await http.post(f"{M1}/confirmer", headers={**OPERATEUR, **cle("k-confirmer-1")})
    assert seconde.status_code == 200, seconde.text
    assert seconde.json() == premiere.json()
    assert (await courriels(http, 3)).count("confirmation") == 1
    # Another key is another action: the modification is closed.
    probleme(await http.post(f"{M1}/confirmer", headers={**OPERATEUR, **cle("k-confirmer-2")}), 409)


async def test_prolonger_rejoue_ne_prolonge_qu_une_fois(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    ouverte = await ouvrir(http)
    echeance = (datetime.fromisoformat(ouverte["expire_le"]) + timedelta(days=5)).isoformat()
    reponses = [
        await http.post(
            f"{M1}/prolonger", json={"expire_le": echeance}, headers={**GESTIONNAIRE, **cle("k-prolonger")}
        )
        for _ in range(2)
    ]
    assert [r.status_code for r in reponses] == [200, 200]
    assert reponses[0].json() == reponses[1].json()
    assert (await courriels(http, 2)).count("prolongation") == 1


async def test_meme_cle_autre_action_ou_autre_modification_409(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    r = await http.post(f"{M1}/retirer", json={"motif": "doublon"}, headers={**GESTIONNAIRE, **cle("k-1")})
    assert r.status_code == 200, r.text
    r = await http.post(f"{M1}/renoncer", headers={**OPERATEUR, **cle("k-1")})
    detail = probleme(r, 409)["detail"]
    assert "Idempotency-Key" in detail and "déjà servi" in detail
    r = await http.post("/api/v1/demandes/FINMSS009266/modifications", json=OUVERTURE, headers=GESTIONNAIRE)
    assert r.status_code == 201, r.text
    r = await http.post("/api/v1/modifications/FINMSS009266M2/renoncer", headers={**OPERATEUR, **cle("k-1")})
    assert "déjà servi" in probleme(r, 409)["detail"]
    # A key outside the allowed form names the header.
    r = await http.post(
        "/api/v1/modifications/FINMSS009266M2/renoncer", headers={**OPERATEUR, **cle("a" * 300)}
    )
    assert probleme(r, 422)["errors"][0]["champ"] == "Idempotency-Key"


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
async def test_apres_un_503_la_reprise_avec_la_cle_dit_que_c_est_fait(
    settings: Settings, banc: Banc, engine: AsyncEngine, demande: Demande, smtp: ServeurSmtp
) -> None:
    """The database holds the modification's row locked while the operator confirms: the
    confirmation waits, the API answers 503. The lock goes, the confirmation goes through; the
    operator's retry with the same key answers 200, not 409."""
    rapide = settings.model_copy(update={"DELAI_REPONSE_WORKFLOW": timedelta(seconds=1)})
    app = create_app(rapide, client=banc.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await ouvrir(client)
            async with engine.connect() as verrou:
                transaction = await verrou.begin()
                await verrou.execute(
                    text("SELECT id FROM modification WHERE numero = 'FINMSS009266M1' FOR UPDATE")
                )
                r = await client.post(f"{M1}/confirmer", headers={**OPERATEUR, **cle("k-panne")})
                assert r.status_code == 503, r.text
                await transaction.rollback()
            r = await client.post(f"{M1}/confirmer", headers={**OPERATEUR, **cle("k-panne")})
            assert r.status_code == 200, r.text
            assert r.json()["statut"] == "confirmee"
            types = await courriels(client, 3)
    assert types.count("confirmation") == 1


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_sur_le_serveur_de_dev_la_reprise_apres_la_fin_du_workflow(
    settings: Settings, serveur_dev: Client, activites: Any, demande: Demande, smtp: ServeurSmtp
) -> None:
    """The same promise on `temporal server start-dev`: the outcome of an update id is kept
    after the workflow has completed."""
    file = f"tq-{uuid.uuid4()}"
    app = create_app(settings.model_copy(update={"TASK_QUEUE": file}), client=serveur_dev)
    async with construire_worker(serveur_dev, activites, file, timedelta(seconds=10)):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await ouvrir(client)
                premiere = await client.post(f"{M1}/confirmer", headers={**OPERATEUR, **cle("k-dev")})
                assert premiere.status_code == 200, premiere.text
                handle = serveur_dev.get_workflow_handle("FINMSS009266M1")
                await handle.result()
                seconde = await client.post(f"{M1}/confirmer", headers={**OPERATEUR, **cle("k-dev")})
                assert seconde.status_code == 200, seconde.text
                assert seconde.json() == premiere.json()


async def test_meme_cle_autre_contenu_409(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    ouverte = await ouvrir(http)
    echeance = datetime.fromisoformat(ouverte["expire_le"])
    for jours, statut in ((5, 200), (5, 200), (9, 409)):
        r = await http.post(
            f"{M1}/prolonger",
            json={"expire_le": (echeance + timedelta(days=jours)).isoformat()},
            headers={**GESTIONNAIRE, **cle("k-contenu")},
        )
        assert r.status_code == statut, r.text
    # A number is not a date (pydantic would read it as a Unix timestamp).
    r = await http.post(f"{M1}/prolonger", json={"expire_le": 0}, headers=GESTIONNAIRE)
    assert probleme(r, 422)["errors"][0]["champ"] == "expire_le"


async def test_la_documentation_dit_ce_que_repond_une_cle_reutilisee(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    """What the OpenAPI document tells a client of a reused key is what the service answers."""
    await ouvrir(http)
    r = await http.post(f"{M1}/retirer", json={"motif": "doublon"}, headers={**GESTIONNAIRE, **cle("k-doc")})
    assert r.status_code == 200, r.text
    reutilisee = (await http.post(f"{M1}/renoncer", headers={**OPERATEUR, **cle("k-doc")})).status_code
    assert reutilisee == 409

    chemins = (await http.get("/openapi.json")).json()["paths"]
    for action in ("confirmer", "renoncer", "retirer", "prolonger"):
        operation = chemins[f"/api/v1/modifications/{{numero}}/{action}"]["post"]
        (parametre,) = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert f"refusée ({reutilisee})" in parametre["description"], action
        assert "422" not in parametre["description"], action
        assert str(reutilisee) in operation["responses"], action
