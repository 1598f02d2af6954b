"""EntretienWorkflow: the daily maintenance a Temporal Schedule starts (`modif-solde temporal
preparer` creates it): the check that the database, Temporal and the document storage agree, then
the purge of the requests past their retention period. No I/O here: both are activities."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

WORKFLOW_ENTRETIEN = "EntretienQuotidien"
VERIFIER_COHERENCE = "verifier_coherence"
PURGER_DONNEES = "purger_donnees"

# A few attempts a minute apart: the next day's run picks up what a longer outage left.
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=30), backoff_coefficient=2.0, maximum_attempts=4)
# The check walks the open cycles and the whole storage in one go; the purge heartbeats
# between requests (a worker lost mid-purge is noticed within minutes, and its run resumes).
_DELAI_VERIFICATION = timedelta(hours=1)
_DELAI_PURGE = timedelta(hours=2)
_BATTEMENT_PURGE = timedelta(minutes=5)


class EntretienEntree(BaseModel):
    """Nothing yet: a model, so that a field can be added without breaking the Schedule's runs."""


class VerificationFaite(BaseModel):
    differences: list[str]


class PurgeFaite(BaseModel):
    # False when no retention period is set (development): nothing was looked at.
    active: bool
    purgees: list[str] = []
    reportees: list[str] = []


class EntretienResultat(BaseModel):
    verification: VerificationFaite | None
    purge: PurgeFaite | None


@workflow.defn(name=WORKFLOW_ENTRETIEN)
class EntretienWorkflow:
    @workflow.run
    async def run(self, entree: EntretienEntree) -> EntretienResultat:
        """The purge runs even when the check failed (they are independent); the workflow fails
        at the end if either did, so that the Web UI and the SDK's metrics show it."""
        echecs: list[str] = []
        verification: VerificationFaite | None = None
        purge: PurgeFaite | None = None
        try:
            verification = await workflow.execute_activity(
                VERIFIER_COHERENCE,
                entree,
                result_type=VerificationFaite,
                start_to_close_timeout=_DELAI_VERIFICATION,
                retry_policy=_RETRY,
            )
        except ActivityError as err:
            echecs.append(f"vérification : {err.cause or err}")
        try:
            purge = await workflow.execute_activity(
                PURGER_DONNEES,
                entree,
                result_type=PurgeFaite,
                start_to_close_timeout=_DELAI_PURGE,
                heartbeat_timeout=_BATTEMENT_PURGE,
                retry_policy=_RETRY,
            )
        except ActivityError as err:
            echecs.append(f"purge : {err.cause or err}")
        if echecs:
            raise ApplicationError("Entretien incomplet : " + " ; ".join(echecs), non_retryable=True)
        return EntretienResultat(verification=verification, purge=purge)
