"""Carries the request id and the caller's `sub` from the API to the workflow and its activities
in a Temporal header, so that their log lines name the request that caused them.

The pattern of temporalio/samples-python `context_propagation`: the client puts the current
`Appel` (modif_solde.journal) in a header of what it starts, signals or updates; the workflow
sets it while it runs the handler that header came with and puts it in the header of each
activity it schedules from there; the activity sets it while it runs. One interceptor object
does both sides: given to `Client.connect`, it is used by the workers built on that client too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

import temporalio.client
import temporalio.converter
import temporalio.worker
import temporalio.workflow
from temporalio.api.common.v1 import Payload

from modif_solde.journal import Appel, appel_courant

ENTETE = "modif-solde-appel"
_CONVERTISSEUR = temporalio.converter.default().payload_converter


class _AvecEntetes(Protocol):
    headers: Mapping[str, Payload]


def _poser(entree: _AvecEntetes) -> None:
    appel = appel_courant.get()
    if appel is None or not (appel.requete_id or appel.sub):
        return
    valeur = {"requete_id": appel.requete_id, "sub": appel.sub}
    entree.headers = {**entree.headers, ENTETE: _CONVERTISSEUR.to_payload(valeur)}


@contextmanager
def _depuis(entree: _AvecEntetes) -> Iterator[None]:
    """The header's Appel for the duration (none: no Appel, not the one of another action)."""
    charge = entree.headers.get(ENTETE)
    appel = None
    if charge is not None:
        try:
            valeur = _CONVERTISSEUR.from_payload(charge, dict)
            appel = Appel(requete_id=valeur.get("requete_id"), sub=valeur.get("sub"))
        except Exception:  # a malformed header must never fail a task
            appel = None
    # The previous value set back, not a token reset: an evicted workflow's coroutines are
    # closed from another context, where a token is refused.
    precedent = appel_courant.get()
    appel_courant.set(appel)
    try:
        yield
    finally:
        appel_courant.set(precedent)


class PropagationAppel(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _Client(next)

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _Activite(next)

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[temporalio.worker.WorkflowInboundInterceptor]:
        return _WorkflowEntrant


class _Client(temporalio.client.OutboundInterceptor):
    async def start_workflow(
        self, input: temporalio.client.StartWorkflowInput
    ) -> temporalio.client.WorkflowHandle[Any, Any]:
        _poser(input)
        return await super().start_workflow(input)

    async def signal_workflow(self, input: temporalio.client.SignalWorkflowInput) -> None:
        _poser(input)
        await super().signal_workflow(input)

    async def start_workflow_update(
        self, input: temporalio.client.StartWorkflowUpdateInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        _poser(input)
        return await super().start_workflow_update(input)

    async def start_update_with_start_workflow(
        self, input: temporalio.client.StartWorkflowUpdateWithStartInput
    ) -> temporalio.client.WorkflowUpdateHandle[Any]:
        _poser(input.start_workflow_input)
        _poser(input.update_workflow_input)
        return await super().start_update_with_start_workflow(input)


class _Activite(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input: temporalio.worker.ExecuteActivityInput) -> Any:
        with _depuis(input):
            return await super().execute_activity(input)


class _WorkflowEntrant(temporalio.worker.WorkflowInboundInterceptor):
    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowSortant(outbound))

    async def execute_workflow(self, input: temporalio.worker.ExecuteWorkflowInput) -> Any:
        with _depuis(input):
            return await super().execute_workflow(input)

    async def handle_signal(self, input: temporalio.worker.HandleSignalInput) -> None:
        with _depuis(input):
            await super().handle_signal(input)

    def handle_update_validator(self, input: temporalio.worker.HandleUpdateInput) -> None:
        with _depuis(input):
            super().handle_update_validator(input)

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        with _depuis(input):
            return await super().handle_update_handler(input)


class _WorkflowSortant(temporalio.worker.WorkflowOutboundInterceptor):
    def start_activity(
        self, input: temporalio.worker.StartActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        _poser(input)
        return super().start_activity(input)

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        _poser(input)
        return super().start_local_activity(input)

    async def start_child_workflow(
        self, input: temporalio.worker.StartChildWorkflowInput
    ) -> temporalio.workflow.ChildWorkflowHandle[Any, Any]:
        _poser(input)
        return await super().start_child_workflow(input)
