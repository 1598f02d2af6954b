"""An activity cancelled mid-way (worker stop, timeout) still finishes its transaction: the
outcome is persisted once and the database is left unlocked for the next writer."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutModification
from modif_solde.models.types import maintenant
from modif_solde.services import modifications as svc
from modif_solde.workflows.contrat import ClotureActivite
from tests.activities.test_envoi_courriel import NUMERO, ouverte  # noqa: F401


@pytest.mark.usefixtures("ouverte")
async def test_annulee_en_cours_la_confirmation_aboutit_et_la_base_reste_libre(
    factory: SessionFactory, activites: ActivitesModification
) -> None:
    commencee = asyncio.Event()

    def sessions_observees() -> Any:
        commencee.set()
        return factory()

    observees = dataclasses.replace(activites, sessions=sessions_observees)
    env = ActivityEnvironment()
    tache = asyncio.ensure_future(
        env.run(
            observees.confirmer,
            ClotureActivite(
                modification_numero=NUMERO, statut=StatutModification.CONFIRMEE, le=maintenant(), issue="test"
            ),
        )
    )
    await commencee.wait()  # the activity is inside its unit of work
    tache.cancel()
    with pytest.raises(asyncio.CancelledError):
        await tache
    # The shielded work goes on to its commit; a write after it does not wait on a stale lock.
    for _ in range(200):
        async with factory() as session:
            if (await svc.charger_modification(session, NUMERO)).statut == StatutModification.CONFIRMEE:
                break
        await asyncio.sleep(0.01)
    async with asyncio.timeout(5):
        async with unit_of_work(factory) as session:
            modification = await svc.charger_modification(session, NUMERO, verrou=True)
            modification.issue = "écriture suivante"
            session.add(modification)
    async with factory() as session:
        apres = await svc.charger_modification(session, NUMERO)
    assert (apres.statut, apres.issue) == (StatutModification.CONFIRMEE, "écriture suivante")
