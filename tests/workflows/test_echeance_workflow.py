"""Past `expire_le`, the workflow refuses the operator's actions whatever the order in which the
timer and the update reach it; a refused extension names its field."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory
from modif_solde.models.enums import StatutDemande, StatutModification
from modif_solde.models.tables import Demande
from modif_solde.services.courriels import format_date_heure_fr
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.stockage import Stockage
from modif_solde.temporal import demarrer_modification
from modif_solde.workflows.contrat import ActionOperateur, Prolongation
from modif_solde.workflows.modification import ModificationWorkflow
from tests.workflows import test_redemarrage_worker as redemarrage
from tests.workflows.conftest import GESTIONNAIRES, Banc, ServeurSmtp
from tests.workflows.test_modification_workflow import NUMERO, entree, lire, ouvrir
from tests.workflows.test_redemarrage_worker import BoiteHorodatee, attendre, attendre_le_minuteur, worker

# The dev server and the timestamping SMTP server of the worker-restart tests, for this module too.
serveur_dev = redemarrage.serveur_dev
boite_horodatee = redemarrage.boite_horodatee


@pytest.mark.parametrize("action", ["confirmer", "renoncer"])
async def test_update_arrive_apres_l_echeance_worker_arrete_refuse(
    serveur_dev: Client,
    factory: SessionFactory,
    stockage: Stockage,
    demande: Demande,
    boite_horodatee: tuple[BoiteHorodatee, int],
    action: str,
) -> None:
    """The worker is down across the deadline; the operator's update waits on the server with
    the fired timers. When a worker comes back, the update is refused with the date and the
    modification ends `expiree`. (On the dev server in real time, with a 2 s deadline: the
    time-skipping server stops its clock while a workflow task waits for a worker.)"""
    client = serveur_dev
    boite, port_smtp = boite_horodatee
    boite.vider()
    activites = ActivitesModification(
        sessions=factory,
        stockage=stockage,
        expediteur=ExpediteurSmtp(f"smtp://127.0.0.1:{port_smtp}"),
        adresse_expediteur="Portail <ne-pas-repondre@portail.example>",
        adresse_gestionnaires=GESTIONNAIRES,
        portail_url="https://portail.example",
    )
    task_queue = f"echeance-{uuid.uuid4()}"
    numero = NUMERO
    async with worker(client, task_queue, activites):
        etat = await demarrer_modification(
            client,
            task_queue,
            entree().model_copy(
                update={
                    "modification_numero": numero,
                    "relance_apres": timedelta(seconds=1),
                    "expiration_apres": timedelta(seconds=2),
                }
            ),
            "50961588600025",
        )
        await attendre(lambda: boite.moment(numero, "invitation") is not None, delai=5)
        await attendre_le_minuteur(client, numero)
    assert etat.expire_le is not None
    handle = client.get_workflow_handle_for(ModificationWorkflow.run, numero)

    # No worker: the deadline passes unheard; then the operator acts.
    await asyncio.sleep(max(0.0, (etat.expire_le - datetime.now(UTC)).total_seconds()) + 0.3)
    update = getattr(ModificationWorkflow, action)
    tardive = asyncio.ensure_future(handle.execute_update(update, ActionOperateur(par="operateur")))
    await asyncio.sleep(0.2)  # the update reaches the server before the worker does
    try:
        async with worker(client, task_queue, activites):
            with pytest.raises(WorkflowUpdateFailedError) as exc:
                await asyncio.wait_for(tardive, timeout=30)
            resultat = await asyncio.wait_for(handle.result(), timeout=30)
    finally:
        # The next test reuses this workflow id on the same server: never leave it running.
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("fin du test")
    cause = exc.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Conflit"
    assert f"a expiré le {format_date_heure_fr(etat.expire_le)}" in cause.message
    assert resultat.statut == StatutModification.EXPIREE
    demande_apres, modification, _ = await lire(factory, numero)
    assert (demande_apres.statut, demande_apres.version) == (StatutDemande.EN_COURS, 1)
    assert modification.statut == StatutModification.EXPIREE
    assert [ty for _, m, ty in boite.recus if m == numero] == ["invitation", "expiration"]


async def test_prolongation_refusee_est_un_conflit(
    banc: Banc, factory: SessionFactory, demande: Demande, smtp: ServeurSmtp
) -> None:
    handle = await ouvrir(banc)
    _, modification, _ = await lire(factory)
    for expire_le, regle in (
        (modification.expire_le - timedelta(days=1), "postérieure à l'échéance actuelle"),
        (modification.expire_le + timedelta(days=400), "un an"),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as exc:
            await handle.execute_update(ModificationWorkflow.prolonger, Prolongation(expire_le=expire_le))
        cause = exc.value.cause
        # The modification's state (and today's date) decide: a conflict, not invalid data.
        assert isinstance(cause, ApplicationError) and cause.type == "Conflit"
        assert cause.message.startswith("La nouvelle échéance (expire_le) ") and regle in cause.message
