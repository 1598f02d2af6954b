"""Full 20-day cycles (open → reminder → expiry) on the time-skipping test server."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from bench.bases import SIRET, importer, numeros, preparer, url_async
from bench.processus import BIN
from bench.puits import PuitsHorodate
from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import create_engine, session_factory
from modif_solde.models.enums import StatutModification
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.stockage import StockageDossier
from modif_solde.temporal import demarrer_modification, enregistrer_search_attributes
from modif_solde.worker import construire_worker
from modif_solde.workflows.contrat import ModificationEntree
from modif_solde.workflows.modification import ModificationWorkflow

journal = logging.getLogger("bench")

TEST_SERVER = BIN / "temporal-test-server"
RELANCE = timedelta(days=10)
EXPIRATION = timedelta(days=20)


async def cycles(n: int, dossier: Path, puits: PuitsHorodate) -> dict[str, Any]:
    """`n` cycles one after another, real activities on SQLite, e-mails to the bench's sink."""
    if not TEST_SERVER.exists():
        # Never let the SDK download a server: without the binary, no measure.
        journal.warning("pas de %s : cycles non mesurés", TEST_SERVER)
        return {}
    url = await preparer("sablier", dossier, "")
    liste = numeros("sablier", 1, n + 1)  # one more: the warm-up
    await importer(url, dossier / "pieces-sablier", liste, pieces=1)
    engine = create_engine(url_async(url))
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
    )
    durees: list[float] = []
    try:
        await enregistrer_search_attributes(env.client)
        activites = ActivitesModification(
            sessions=session_factory(engine),
            stockage=StockageDossier(dossier / "pieces-sablier"),
            expediteur=ExpediteurSmtp(puits.url),
            adresse_expediteur="Portail <ne-pas-repondre@bench.invalid>",
            adresse_gestionnaires="gestionnaires@bench.invalid",
            portail_url="http://127.0.0.1",
        )
        task_queue = f"bench-sablier-{uuid.uuid4().hex[:8]}"
        async with construire_worker(env.client, activites, task_queue, arret_gracieux=timedelta(seconds=10)):
            for rang, numero in enumerate(liste):
                modification = f"{numero}M1"
                debut = time.monotonic()
                await demarrer_modification(
                    env.client,
                    task_queue,
                    ModificationEntree(
                        demande_numero=numero,
                        modification_numero=modification,
                        commentaire="Cycle complet du banc.",
                        champs=["site_documentation_url"],
                        ouverte_par="gestionnaire.bench",
                        relance_apres=RELANCE,
                        expiration_apres=EXPIRATION,
                    ),
                    SIRET,
                )
                await _courriel(puits, modification, "invitation")
                # After an update the test server no longer skips time by itself: skip explicitly.
                await env.sleep(RELANCE + timedelta(hours=1))
                await _courriel(puits, modification, "relance")
                await env.sleep(EXPIRATION - RELANCE)
                handle = env.client.get_workflow_handle_for(ModificationWorkflow.run, modification)
                resultat = await handle.result()
                if resultat.statut != StatutModification.EXPIREE:
                    raise RuntimeError(f"{modification} : {resultat.statut} au lieu d'expiree")
                await _courriel(puits, modification, "expiration")
                duree = time.monotonic() - debut
                if rang == 0:
                    # The first cycle also pays the worker's first workflow and first e-mails.
                    journal.info("  cycle %s : %.2f s (chauffe, non compté)", modification, duree)
                    continue
                durees.append(duree)
                journal.info("  cycle %s : %.2f s", modification, durees[-1])
    finally:
        await env.shutdown()
        await engine.dispose()
    return {
        "cycle_20j_s": round(sum(durees) / len(durees), 3),
        "cycle_20j_min_s": round(min(durees), 3),
        "cycle_20j_max_s": round(max(durees), 3),
        "cycles": len(durees),
    }


async def _courriel(puits: PuitsHorodate, modification: str, type_: str) -> None:
    if await puits.attendre([f"{modification}:{type_}"], delai=30):
        raise RuntimeError(f"courriel {type_} de {modification} jamais reçu")
