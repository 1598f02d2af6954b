"""The Temporal client and the project's search attributes."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from modif_solde.config import Settings
from modif_solde.connexion_temporal import CibleTemporal, TemporalInjoignable, cible_temporal, expliquer_echec
from modif_solde.propagation import PropagationAppel
from modif_solde.workflows.contrat import WORKFLOW_MODIFICATION, EtatModification, ModificationEntree
from modif_solde.workflows.modification import (
    SA_DEMANDE,
    SA_EXPIRE_LE,
    SA_SIRET,
    SA_STATUT,
    ModificationWorkflow,
)

journal = logging.getLogger(__name__)

# The clients whose server refused update-with-start (ExecuteMultiOperation): the time-skipping
# test server does not implement it, a server may have it disabled
# (`frontend.enableExecuteMultiOperation`). Found once per client, then start + update.
_SANS_UPDATE_WITH_START: weakref.WeakSet[Client] = weakref.WeakSet()
_NON_PRIS_EN_CHARGE = (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.PERMISSION_DENIED)

# API.md: what operations filter on in the Web UI and `temporal workflow list --query`.
# The names are the workflow's own keys (workflows/modification.py), defined there once.
SEARCH_ATTRIBUTES = {
    SA_DEMANDE.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_SIRET.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_STATUT.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_EXPIRE_LE.name: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
}
# A type as the CLI, tcld and the Web UI spell it.
NOMS_TYPES: dict[int, str] = {
    IndexedValueType.INDEXED_VALUE_TYPE_TEXT: "Text",
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
}


def options_dev_server() -> list[str]:
    """`temporal server start-dev` registering the service's search attributes at start."""
    return [
        o
        for nom, type_ in SEARCH_ATTRIBUTES.items()
        for o in ("--search-attribute", f"{nom}={NOMS_TYPES[type_]}")
    ]


def cible(settings: Settings, environ: Mapping[str, str] | None = None) -> CibleTemporal:
    """The Temporal frontend of these settings and the environment (connexion_temporal.py)."""
    return cible_temporal(settings.TEMPORAL_ADDRESS, settings.TEMPORAL_NAMESPACE, environ)


async def connecter(
    settings: Settings,
    lazy: bool = False,
    runtime: Runtime | None = None,
    environ: Mapping[str, str] | None = None,
) -> Client:
    """`runtime`: the SDK's runtime, for its telemetry (the worker's metrics); the default one otherwise.
    A refused connection raises TemporalInjoignable, its message in French; settings that cannot
    work, ConfigurationTemporalInvalide."""
    vers = cible(settings, environ)
    try:
        return await Client.connect(
            **vers.options(),
            data_converter=pydantic_data_converter,
            # The request id and caller of each action, to the workflow's and activities' logs.
            interceptors=[PropagationAppel()],
            lazy=lazy,
            runtime=runtime,
        )
    except RuntimeError as exc:
        raise TemporalInjoignable(expliquer_echec(vers, exc)) from exc


def runtime_avec_metriques(adresse: str) -> Runtime:
    """A runtime whose SDK metrics (workflow and activity tasks, polls, failures, latencies) are
    served in Prometheus' format on `adresse` (host:port): counters with `_total`, durations in
    seconds, as Prometheus names them."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=adresse, counters_total_suffix=True, durations_as_seconds=True
            )
        )
    )


async def enregistrer_search_attributes(client: Client) -> None:
    """Register the missing search attributes (idempotent)."""
    try:
        existants = set(
            (
                await client.operator_service.list_search_attributes(
                    ListSearchAttributesRequest(namespace=client.namespace)
                )
            ).custom_attributes
        )
    except RPCError as err:
        # The time-skipping test server cannot list them; it accepts adding them all.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existants = set()
    manquants = {nom: type_ for nom, type_ in SEARCH_ATTRIBUTES.items() if nom not in existants}
    if manquants:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=manquants)
        )


async def demarrer_modification(
    client: Client,
    task_queue: str,
    entree: ModificationEntree,
    operateur_siret: str | None = None,
    update_with_start: bool = True,
) -> EtatModification:
    """Start the modification's workflow (its id is the modification number) and answer once
    the opening is persisted: one update-with-start call where the server offers it, otherwise
    a start then the `attendre_ouverture` update (also with `update_with_start=False`). A second start of the same number while it
    runs is refused by Temporal itself (WorkflowAlreadyStartedError); a refused opening raises
    the update's error."""
    attributs: list[SearchAttributePair[Any]] = [SearchAttributePair(SA_DEMANDE, entree.demande_numero)]
    if operateur_siret:
        attributs.append(SearchAttributePair(SA_SIRET, operateur_siret))
    options: dict[str, Any] = {
        "id": entree.modification_numero,
        "task_queue": task_queue,
        "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        "id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
        "search_attributes": TypedSearchAttributes(attributs),
        "static_summary": (
            f"Modification {entree.modification_numero} de la demande de solde {entree.demande_numero}"
        ),
        "static_details": (
            f"**Commentaire du gestionnaire** :\n\n{entree.commentaire}\n\n"
            f"**Champs attendus** : {', '.join(entree.champs)}\n\nOuverte par {entree.ouverte_par}."
        ),
    }
    if update_with_start and client not in _SANS_UPDATE_WITH_START:
        # One call: the workflow starts with the update in its first task, which (since the
        # patch "ouverture-en-activite-locale") also writes the opening and answers it.
        try:
            return await client.execute_update_with_start_workflow(
                ModificationWorkflow.attendre_ouverture,  # type: ignore[arg-type]
                start_workflow_operation=WithStartWorkflowOperation(
                    ModificationWorkflow.run, entree, **options
                ),
            )
        except RPCError as err:
            if err.status == RPCStatusCode.ALREADY_EXISTS:
                # The SDK makes it a WorkflowAlreadyStartedError only when the server details
                # it (the time-skipping test server does not): the same refusal either way.
                raise WorkflowAlreadyStartedError(entree.modification_numero, WORKFLOW_MODIFICATION) from err
            if err.status not in _NON_PRIS_EN_CHARGE:
                raise
            journal.info("update-with-start refusé par le serveur Temporal (%s) : démarrage puis update", err)
            _SANS_UPDATE_WITH_START.add(client)
    handle = await client.start_workflow(ModificationWorkflow.run, entree, **options)
    # The SDK's overloads do not match a parameterless async update under mypy.
    return await handle.execute_update(ModificationWorkflow.attendre_ouverture)  # type: ignore[arg-type]
