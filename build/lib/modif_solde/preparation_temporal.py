"""What the service needs of its Temporal namespace, made so by `modif-solde temporal preparer`
(idempotent) and checked by the worker at start: the search attributes, the retention of closed
histories, and the daily maintenance Schedule. Temporal Cloud refuses the operator service's
calls: there, what to do with `tcld` or the Cloud UI is printed instead."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from google.protobuf.duration_pb2 import Duration
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from modif_solde.config import Settings
from modif_solde.connexion_temporal import CibleTemporal
from modif_solde.temporal import NOMS_TYPES, SEARCH_ATTRIBUTES
from modif_solde.workflows.entretien import EntretienEntree, EntretienWorkflow

journal = logging.getLogger(__name__)

FUSEAU = "Europe/Paris"
# The operator service answers these where it is not offered to the caller (Temporal Cloud).
_REFUS = (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.UNAUTHENTICATED)


def _nom_type(type_: int) -> str:
    return NOMS_TYPES.get(type_, str(type_))


def id_planification(settings: Settings) -> str:
    """One Schedule per task queue: two deployments sharing a namespace keep theirs apart."""
    return f"modif-solde-entretien-{settings.TASK_QUEUE}"


@dataclass
class RapportPreparation:
    faits: list[str] = field(default_factory=list)
    # What remains for a person to do (Temporal Cloud): the preparation is not complete.
    a_faire: list[str] = field(default_factory=list)


async def _attributs_presents(client: Client) -> dict[str, int] | None:
    """The namespace's custom search attributes and their types; None where the operator service
    is refused (Temporal Cloud with an API key or a namespace certificate)."""
    try:
        reponse = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status in _REFUS:
            return None
        raise
    return dict(reponse.custom_attributes)


async def _attribut_connu(client: Client, nom: str) -> bool:
    """Without the operator service: a visibility query naming an unknown attribute is refused.
    A server with neither (the SDK's time-skipping test server) cannot be checked: assumed there."""
    try:
        await client.count_workflows(f"{nom} IS NOT NULL")
    except RPCError as err:
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            return False
        if err.status == RPCStatusCode.UNIMPLEMENTED:
            journal.warning("attributs de recherche : ce serveur Temporal ne permet pas de les vérifier")
            return True
        raise
    return True


async def attributs_manquants(client: Client) -> list[str]:
    """The search attributes the service writes and filters on that the namespace lacks (or has
    under another type), as « Nom (Type) »; empty when all are there."""
    presents = await _attributs_presents(client)
    manquants = []
    for nom, type_ in SEARCH_ATTRIBUTES.items():
        attendu = f"{nom} ({_nom_type(type_)})"
        if presents is None:
            if not await _attribut_connu(client, nom):
                manquants.append(attendu)
        elif nom not in presents:
            manquants.append(attendu)
        elif presents[nom] != type_:
            manquants.append(f"{attendu}, de type {_nom_type(presents[nom])} sur ce namespace")
    return manquants


def _instructions_attributs(namespace: str, manquants: list[str]) -> list[str]:
    options = " ".join(
        f'--search-attribute "{nom}={_nom_type(type_)}"'
        for nom, type_ in SEARCH_ATTRIBUTES.items()
        if any(m.startswith(f"{nom} ") for m in manquants)
    )
    return [
        f"Attributs de recherche à créer sur le namespace {namespace} : {', '.join(manquants)}.",
        f"  tcld namespace search-attributes add --namespace {namespace} {options}",
        "  (ou Temporal Cloud UI → Namespaces → le namespace → Custom Search Attributes → Add)",
    ]


async def _preparer_attributs(client: Client, cible: CibleTemporal, rapport: RapportPreparation) -> None:
    manquants = await attributs_manquants(client)
    if not manquants:
        rapport.faits.append("Attributs de recherche : déjà présents (" + ", ".join(SEARCH_ATTRIBUTES) + ").")
        return
    types_faux = [m for m in manquants if ", de type " in m]
    if types_faux:
        # Temporal cannot change an attribute's type: a person must decide (rename, recreate).
        rapport.a_faire.append(
            "Attributs de recherche d'un autre type que celui attendu : "
            + " ; ".join(types_faux)
            + ". Temporal ne change pas le type d'un attribut : supprimez-le puis relancez cette commande."
        )
        return
    a_creer = {
        nom: type_
        for nom, type_ in SEARCH_ATTRIBUTES.items()
        if any(m.startswith(f"{nom} ") for m in manquants)
    }
    if not cible.nuage:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=a_creer)
            )
        except RPCError as err:
            if err.status not in _REFUS:
                raise
        else:
            rapport.faits.append("Attributs de recherche créés : " + ", ".join(manquants) + ".")
            return
    rapport.a_faire.extend(_instructions_attributs(client.namespace, manquants))


async def _preparer_retention(
    client: Client, cible: CibleTemporal, retention: timedelta, rapport: RapportPreparation
) -> None:
    jours = retention.total_seconds() / 86400
    texte = f"{jours:g} jour(s)"
    description = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    actuelle = description.config.workflow_execution_retention_ttl.ToTimedelta()
    if actuelle == retention:
        rapport.faits.append(f"Rétention du namespace {client.namespace} : déjà {texte}.")
        return
    consigne = [
        f"Rétention du namespace {client.namespace} à porter de {actuelle.total_seconds() / 86400:g} à {texte} "
        "(MODIF_SOLDE_TEMPORAL_RETENTION) :",
        f"  tcld namespace retention set --namespace {client.namespace} --retention-days {max(1, round(jours))}",
        "  (ou Temporal Cloud UI → Namespaces → le namespace → Edit → Retention Period)",
    ]
    if cible.nuage:
        rapport.a_faire.extend(consigne)
        return
    duree = Duration()
    duree.FromTimedelta(retention)
    try:
        await client.workflow_service.update_namespace(
            UpdateNamespaceRequest(
                namespace=client.namespace, config=NamespaceConfig(workflow_execution_retention_ttl=duree)
            )
        )
    except RPCError as err:
        if err.status not in _REFUS:
            raise
        rapport.a_faire.extend(consigne)
        return
    rapport.faits.append(
        f"Rétention du namespace {client.namespace} : {texte} (était {actuelle.total_seconds() / 86400:g})."
    )


def planification(settings: Settings) -> Schedule:
    heure = settings.ENTRETIEN_HEURE
    return Schedule(
        action=ScheduleActionStartWorkflow(
            EntretienWorkflow.run,
            EntretienEntree(),
            id=f"entretien-{settings.TASK_QUEUE}",
            task_queue=settings.TASK_QUEUE,
            # A run stuck on an outage ends; the next day's starts anyway.
            execution_timeout=timedelta(hours=12),
            static_summary="Entretien quotidien : vérification base/Temporal/stockage, puis purge",
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(heure.hour)],
                    minute=[ScheduleRange(heure.minute)],
                    second=[ScheduleRange(0)],
                    comment="modif-solde : verifier puis purger",
                )
            ],
            time_zone_name=FUSEAU,
        ),
        # Never two at once; a run missed by an outage of up to 12 h still happens.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=12)),
    )


async def _preparer_planification(client: Client, settings: Settings, rapport: RapportPreparation) -> None:
    ident = id_planification(settings)
    voulue = planification(settings)
    heure = f"{settings.ENTRETIEN_HEURE:%H:%M} ({FUSEAU})"
    try:
        await client.create_schedule(ident, voulue)
    except ScheduleAlreadyRunningError:

        def mettre_a_jour(entree: ScheduleUpdateInput) -> ScheduleUpdate:
            # A pause (and its note) set by operations is kept.
            voulue.state = entree.description.schedule.state
            return ScheduleUpdate(schedule=voulue)

        await client.get_schedule_handle(ident).update(mettre_a_jour)
        rapport.faits.append(f"Planification « {ident} » mise à jour : tous les jours à {heure}.")
        return
    rapport.faits.append(f"Planification « {ident} » créée : tous les jours à {heure}, verifier puis purger.")


async def preparer(client: Client, cible: CibleTemporal, settings: Settings) -> RapportPreparation:
    """Each step says what it did; what Temporal Cloud leaves to a person is in `a_faire`."""
    rapport = RapportPreparation()
    await _preparer_attributs(client, cible, rapport)
    await _preparer_retention(client, cible, settings.TEMPORAL_RETENTION, rapport)
    await _preparer_planification(client, settings, rapport)
    return rapport
