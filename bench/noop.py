"""The raw Temporal baseline: a no-op workflow running one no-op activity, and its worker."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel


class EntreeNoop(BaseModel):
    """About the size of the modification's input, through the same pydantic converter."""

    numero: str
    commentaire: str
    champs: list[str]


@activity.defn(name="bench_noop")
async def activite_noop(entree: EntreeNoop) -> str:
    return entree.numero


@workflow.defn(name="BenchNoopWorkflow")
class NoopWorkflow:
    @workflow.run
    async def run(self, entree: EntreeNoop) -> str:
        return await workflow.execute_activity(
            activite_noop, entree, start_to_close_timeout=timedelta(seconds=30)
        )


async def executer_worker(adresse: str, task_queue: str) -> None:
    """Like `modif-solde worker`: one process, default worker settings, stops on SIGTERM."""
    arret = asyncio.Event()
    boucle = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        boucle.add_signal_handler(sig, arret.set)
    client = await Client.connect(adresse, data_converter=pydantic_data_converter)
    async with Worker(client, task_queue=task_queue, workflows=[NoopWorkflow], activities=[activite_noop]):
        print(f"worker noop prêt sur {task_queue}", flush=True)
        await arret.wait()
