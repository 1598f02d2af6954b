"""What the workflow sandbox costs: CPU per replay of a recorded history, with the service's
sandboxed runner and without a sandbox.

    .venv/bin/python -m bench.rejeu [--fois 100] [--historique ouverture_locale_confirmation]

Each replay builds the workflow, runs every workflow task of the history and checks its
commands; CPU is this process's (time.process_time), after one replay not counted."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner

from modif_solde.worker import executeur_de_workflows
from modif_solde.workflows.modification import ModificationWorkflow

HISTORIQUES = Path(__file__).resolve().parent.parent / "tests" / "workflows" / "historiques"


async def cpu_par_rejeu(historique: WorkflowHistory, executeur: WorkflowRunner, fois: int) -> float:
    rejoueur = Replayer(
        workflows=[ModificationWorkflow], data_converter=pydantic_data_converter, workflow_runner=executeur
    )
    await rejoueur.replay_workflow(historique)

    async def historiques() -> AsyncIterator[WorkflowHistory]:
        for _ in range(fois):
            yield historique

    debut = time.process_time()
    async with rejoueur.workflow_replay_iterator(historiques()) as resultats:
        async for resultat in resultats:
            if resultat.replay_failure is not None:
                raise resultat.replay_failure
    return (time.process_time() - debut) / fois * 1000


async def mesurer(nom: str, fois: int) -> None:
    historique = WorkflowHistory.from_json(nom, (HISTORIQUES / f"{nom}.json").read_text())
    print(f"{nom} : {len(historique.events)} événements, {fois} rejeux")
    for libelle, executeur in (
        ("bac à sable (celui du service)", executeur_de_workflows()),
        ("sans bac à sable", UnsandboxedWorkflowRunner()),
    ):
        print(f"  {libelle:32} {await cpu_par_rejeu(historique, executeur, fois):6.2f} ms de CPU par rejeu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fois", type=int, default=100)
    parser.add_argument("--historique", default="ouverture_locale_confirmation")
    arguments = parser.parse_args()
    asyncio.run(mesurer(arguments.historique, arguments.fois))


if __name__ == "__main__":
    main()
