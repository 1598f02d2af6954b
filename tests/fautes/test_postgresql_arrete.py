"""PostgreSQL (the test's own server, never the shared one) stopped and started again during a
cycle: the reminder falls due while it is down, is retried, and the cycle still ends on time
with each e-mail sent once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from modif_solde.db import create_engine
from modif_solde.migrations import migrer
from tests.fautes.conftest import Pile, attendre, jusqu_a
from tests.fautes.test_temporal_tue import attend_son_minuteur
from tests.processus import PostgresPropre


@pytest.fixture
def postgres() -> Iterator[PostgresPropre]:
    serveur = PostgresPropre()
    try:
        serveur.demarrer()
        yield serveur
    finally:
        serveur.supprimer()


async def test_postgresql_arrete_pendant_le_cycle_puis_redemarre(
    pile: Pile, postgres: PostgresPropre, donnees: dict[str, Any]
) -> None:
    await postgres.attendre_pret()
    await asyncio.to_thread(migrer, postgres.url)
    await pile.engine.dispose()
    pile.url_base, pile.engine = postgres.url, create_engine(postgres.url)
    await pile.importer(donnees, "FINMSS000001")
    pile.worker()
    etat = await pile.ouvrir("FINMSS000001", timedelta(seconds=10), timedelta(seconds=20))
    assert etat.relance_le is not None
    await attendre(lambda: attend_son_minuteur(pile, "FINMSS000001M1"), 30, "le cycle attend sa relance")

    postgres.arreter()
    # Down while the reminder falls due: its activity fails and is retried.
    await jusqu_a(etat.relance_le + timedelta(seconds=2))
    postgres.demarrer()
    await postgres.attendre_pret()

    await pile.verifier_tout({"FINMSS000001M1": ["invitation", "relance", "expiration"]})
    historique = await pile.client.get_workflow_handle("FINMSS000001M1").fetch_history()
    tentatives = [
        e.activity_task_started_event_attributes.attempt
        for e in historique.events
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert max(tentatives) >= 2, tentatives
