"""The Temporal dev server killed (SIGKILL) and restarted on the same database file while
modifications wait on their timers and while an update is in flight: the timers still fire,
the update is applied once, nothing is sent twice."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from typing import Any

from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from modif_solde.models.tables import Demande, Modification
from modif_solde.workflows.contrat import ActionOperateur, EtatModification
from modif_solde.workflows.modification import ModificationWorkflow
from tests.fautes.conftest import Pile, attendre


async def attend_son_minuteur(pile: Pile, numero: str) -> bool:
    """The workflow waits on a timer with nothing in flight: a timer started, every activity
    scheduled is done, its last task completed (e-mails go out beside the timers, so the last
    event is the timer's start or the task that handled an e-mail's result)."""
    types = [e.event_type for e in (await pile.client.get_workflow_handle(numero).fetch_history()).events]
    planifiees = types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    finies = types.count(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)
    return (
        EventType.EVENT_TYPE_TIMER_STARTED in types
        and planifiees == finies
        and types[-1] in (EventType.EVENT_TYPE_TIMER_STARTED, EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    )


async def confirmer_jusqu_a_reponse(pile: Pile, numero: str) -> EtatModification | str:
    """What the portal does: retry while Temporal does not answer. A refusal because it is no
    longer open means an earlier attempt went through."""
    while True:
        handle = pile.client.get_workflow_handle_for(ModificationWorkflow.run, numero)
        try:
            etat: EtatModification = await handle.execute_update(
                ModificationWorkflow.confirmer, ActionOperateur(par="operateur.test")
            )
            return etat
        except WorkflowUpdateFailedError as err:
            return str(err.cause)
        except RPCError:
            await asyncio.sleep(0.2)


async def test_temporal_tue_pendant_l_attente_et_pendant_une_confirmation(
    pile: Pile, donnees: dict[str, Any]
) -> None:
    for numero in ("FINMSS000001", "FINMSS000002"):
        await pile.importer(donnees, numero)
    worker = pile.worker()
    for numero in ("FINMSS000001", "FINMSS000002"):
        await pile.ouvrir(numero, timedelta(seconds=20), timedelta(seconds=40))
    for numero in ("FINMSS000001M1", "FINMSS000002M1"):
        await attendre(lambda n=numero: attend_son_minuteur(pile, n), 30, f"{numero} attend sa relance")

    # 1. Killed while both wait on their timers.
    pile.temporal.tuer()
    pile.temporal.demarrer()
    await pile.reconnecter()

    # 2. Killed again while a confirmation is in flight: the worker is frozen, so the update
    # waits in the server when it goes down.
    assert worker.popen is not None
    os.kill(worker.popen.pid, signal.SIGSTOP)
    try:
        confirmation = asyncio.create_task(confirmer_jusqu_a_reponse(pile, "FINMSS000001M1"))
        await asyncio.sleep(0.5)  # the update reaches the server and waits for the worker
        assert not confirmation.done()
        pile.temporal.tuer()
        pile.temporal.demarrer()
        await pile.reconnecter()
    finally:
        os.kill(worker.popen.pid, signal.SIGCONT)
    reponse = await asyncio.wait_for(confirmation, timeout=60)
    assert not isinstance(reponse, str) or "n'est plus ouverte" in reponse, reponse

    await pile.verifier_tout(
        {
            "FINMSS000001M1": ["invitation", "confirmation", "confirmation_gestionnaires"],
            "FINMSS000002M1": ["invitation", "relance", "expiration"],
        }
    )
    async with pile.factory() as session:
        modifications = {m.numero: m for m in (await session.exec(select(Modification))).all()}
        demandes = {d.numero: d for d in (await session.exec(select(Demande))).all()}
    assert modifications["FINMSS000001M1"].statut == "confirmee"
    assert modifications["FINMSS000002M1"].statut == "expiree"
    assert {d.statut for d in demandes.values()} == {"en_cours"}
