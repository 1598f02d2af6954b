"""Calls to the modification workflow from the API: bounded in time, refusals mapped to HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from modif_solde.api.deps import UtilisateurDep
from modif_solde.api.problemes import Probleme
from modif_solde.db import unit_of_work
from modif_solde.models.enums import StatutModification
from modif_solde.services import modifications as svc
from modif_solde.services.erreurs import BrouillonPerime, Conflit, DonneesInvalides
from modif_solde.workflows.contrat import ERREUR_DONNEES_INVALIDES, EtatModification
from modif_solde.workflows.modification import ModificationWorkflow

T = TypeVar("T")

_INDISPONIBLE = (
    "Le traitement des modifications ne répond pas pour le moment ; réessayez dans quelques instants."
)


def cycle_arrete(numero: str) -> Conflit:
    """The refusal for a modification still open in the database whose workflow has ended
    (terminated or cancelled from the Temporal UI): only operations can repair it."""
    return Conflit(
        f"Le cycle de la modification {numero} s'est arrêté dans Temporal sans la clore : aucune action "
        "n'est possible. L'exploitation doit lancer la vérification (`modif-solde verifier`)."
    )


async def exiger_cycle_actif(client: Client, numero: str) -> None:
    """409 unless the modification's workflow is running; 503 if Temporal does not answer."""
    try:
        description = await client.get_workflow_handle(numero).describe(rpc_timeout=timedelta(seconds=5))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise cycle_arrete(numero) from None
        raise Probleme(503, _INDISPONIBLE, entetes={"Retry-After": "5"}) from None
    except RuntimeError:
        # The lazy client's first connection failed: Temporal is not there.
        raise Probleme(503, _INDISPONIBLE, entetes={"Retry-After": "5"}) from None
    if description.status != WorkflowExecutionStatus.RUNNING:
        raise cycle_arrete(numero)


async def exiger_cycle_actif_si_ouverte(request: Request, numero: str, siret: str | None) -> None:
    """For what writes the draft or its documents without the workflow (API routes and pages):
    a modification the caller may not see stays a 404 (asked first), a closed one gets the
    service's own refusal, an open one needs its workflow running. Read in a read-only
    transaction, so that no lock is held while Temporal answers."""
    async with unit_of_work(request.app.state.sessions_lecture) as session:
        modification = await svc.charger_modification(session, numero, siret)
    if modification.statut == StatutModification.OUVERTE:
        await exiger_cycle_actif(request.app.state.temporal, numero)


async def _cycle_actif(numero: str, utilisateur: UtilisateurDep, request: Request) -> None:
    await exiger_cycle_actif_si_ouverte(request, numero, utilisateur.perimetre_siret)


CycleActifDep = Annotated[None, Depends(_cycle_actif)]


def mise_a_jour(
    client: Client, numero: str, methode: Any, argument: BaseModel, id: str | None = None
) -> Awaitable[EtatModification]:
    """One of the workflow's updates, by reference; `id`: the update's id (Temporal answers a
    repeated id with the first update's outcome). (The SDK's overloads type an async handler's
    result as a coroutine under mypy: the cast states what it really returns.)"""
    handle = client.get_workflow_handle_for(ModificationWorkflow.run, numero)
    return cast(Awaitable[EtatModification], handle.execute_update(methode, argument, id=id))


async def appeler(
    appel: Awaitable[T], delai: timedelta, numero: str, champ: str = "corps", ouverte_en_base: bool = False
) -> T:
    """Await a workflow call; no answer within `delai` is a 503, never a hang. A refusal of
    the data without details names `champ` (the field the call carries) with its message.
    `ouverte_en_base`: the database still has the modification open, so a workflow found over
    means a stopped cycle."""
    try:
        return await asyncio.wait_for(appel, timeout=delai.total_seconds())
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # The SDK turns the cancellation of a waiting update into its own error.
        raise Probleme(503, _INDISPONIBLE, entetes={"Retry-After": "5"}) from None
    except WorkflowAlreadyStartedError:
        raise Conflit(f"La modification {numero} est déjà en cours d'ouverture.") from None
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError):
            if cause.type == ERREUR_DONNEES_INVALIDES:
                erreurs = cause.details[0] if cause.details and isinstance(cause.details[0], list) else []
                raise DonneesInvalides(
                    cause.message, erreurs or [{"champ": champ, "message": cause.message}]
                ) from None
            if cause.type == BrouillonPerime.__name__:
                raise BrouillonPerime(cause.message) from None
            raise Conflit(cause.message) from None
        raise Conflit(f"La modification {numero} n'a pas pu être traitée.") from None
    except RPCError as err:
        if err.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
            if ouverte_en_base:
                raise cycle_arrete(numero) from None
            # The workflow is over (or was ended by operations): nothing is open any more.
            raise Conflit(f"La modification {numero} n'est plus ouverte.") from None
        # Anything else is Temporal not serving the call: an unavailability, never a 500.
        raise Probleme(503, _INDISPONIBLE, entetes={"Retry-After": "5"}) from None
    except RuntimeError:
        # The lazy client's first connection failed: Temporal is not there.
        raise Probleme(503, _INDISPONIBLE, entetes={"Retry-After": "5"}) from None
