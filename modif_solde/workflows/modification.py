"""ModificationWorkflow: one modification round of a balance request, from opening to outcome.

It opens the modification (request `a_modifier`), e-mails the invitation, then waits for the
operator (confirm, renounce) or the gestionnaire (withdraw, extend) with a reminder timer and an
expiry timer. Every database write happens in an activity; the updates answer once the outcome
is persisted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.exceptions import TimeoutError as DelaiDepasse

with workflow.unsafe.imports_passed_through():
    from modif_solde.journal import Appel, appel_courant
    from modif_solde.models.enums import PROLONGATION_MAX, StatutEnvoi, StatutModification, TypeCourriel
    from modif_solde.workflows.contrat import (
        CLOTURER,
        CONFIRMER,
        ENVOYER_COURRIEL,
        ERREUR_CONFLIT,
        ERREURS_DU_DOMAINE,
        NOTER_ECHEC_COURRIEL,
        NOTER_RELANCE,
        OUVRIR,
        PROLONGER,
        WORKFLOW_MODIFICATION,
        ActionOperateur,
        ClotureActivite,
        ClotureFaite,
        CourrielActivite,
        CourrielEnvoye,
        Echeances,
        EchecCourrielActivite,
        EtatModification,
        ModificationEntree,
        ModificationResultat,
        OuvertureActivite,
        OuvertureFaite,
        Prolongation,
        ProlongationActivite,
        RelanceActivite,
        Retrait,
        message_echeance_passee,
    )


@dataclass(frozen=True)
class CourrielEnFile:
    """An e-mail waiting its turn, with the action that caused it (request id and caller,
    docs/exploitation.md, « Suivre une action, du proxy au courriel »): the sender task sends it later, under that action's name."""

    courriel: CourrielActivite
    appel: Appel | None


@contextmanager
def _sous_appel(appel: Appel | None) -> Iterator[None]:
    # The previous value set back, not a token reset: an evicted workflow's coroutines are
    # closed from another context, where a token is refused.
    precedent = appel_courant.get()
    appel_courant.set(appel)
    try:
        yield
    finally:
        appel_courant.set(precedent)


SA_DEMANDE = SearchAttributeKey.for_keyword("DemandeNumero")
SA_SIRET = SearchAttributeKey.for_keyword("OperateurSiret")
SA_STATUT = SearchAttributeKey.for_keyword("ModificationStatut")
SA_EXPIRE_LE = SearchAttributeKey.for_datetime("ExpireLe")

# Database activities: short, retried until the database answers; domain refusals are final.
_RETRY_BASE = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=ERREURS_DU_DOMAINE,
)
_DELAI_BASE = timedelta(seconds=30)
# E-mail: the SMTP server may be down for a while; keep trying, never twice what it accepted.
_RETRY_COURRIEL = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=ERREURS_DU_DOMAINE,
)

# The e-mail activity's timeout: above the SMTP exchange's own bound (ExpediteurSmtp: 10 s per
# command, 20 s in all), so an attempt ends before Temporal starts another one.
DELAI_ACTIVITE_COURRIEL = timedelta(seconds=30)
# Since this patch, e-mails go out beside the timers (a sender task fed by a queue) and a
# temporary failure is retried for at most `ModificationEntree.abandon_courriel_apres`.
PATCH_COURRIELS_A_COTE = "courriels-a-cote-des-minuteries"
# Since this patch, the opening write is a local activity: it runs in the workflow task that
# starts the workflow (no activity task, no second workflow task), which also answers the
# `attendre_ouverture` update when it came with the start (update-with-start). Sound because
# the write is short and idempotent (`svc.ouvrir` returns the same open modification when
# repeated): a worker lost mid-task has its workflow task retried elsewhere, which runs it again.
PATCH_OUVERTURE_LOCALE = "ouverture-en-activite-locale"
# Actions of the operator (and extensions) refused once `expire_le` is past.
_ACTIONS_AVANT_ECHEANCE = {"confirmation", "renonciation", "prolongation"}

_LIBELLES_ACTION = {
    "confirmation": "une confirmation",
    "renonciation": "une renonciation",
    "retrait": "un retrait",
    "prolongation": "une prolongation",
    "expiration": "l'expiration",
}


@workflow.defn(name=WORKFLOW_MODIFICATION)
class ModificationWorkflow:
    @workflow.init
    def __init__(self, entree: ModificationEntree) -> None:
        self._entree = entree
        self._statut: StatutModification | None = None  # None until the opening is persisted
        self._ouverture_terminee = False
        self._refus_ouverture: str | None = None
        self._action: str | None = None  # the transition under way, one at a time
        self._ouverte_le: datetime | None = None
        self._relance_le: datetime | None = None
        self._expire_le: datetime | None = None
        self._relance_envoyee = False
        self._version_appliquee: int | None = None
        self._courriels: list[CourrielEnFile] = []
        self._echeances_changees = False
        self._courriels_a_cote = False  # the sender task sends them, the main loop only waits
        self._echecs_courriel: list[str] = []
        self._ouverture_locale = False  # since the patch "ouverture-en-activite-locale"

    @workflow.run
    async def run(self, entree: ModificationEntree) -> ModificationResultat:
        if not await self._ouvrir():
            await workflow.wait_condition(workflow.all_handlers_finished)
            return ModificationResultat(
                modification_numero=entree.modification_numero, statut=None, motif=self._refus_ouverture
            )
        self._envoyer_plus_tard(TypeCourriel.INVITATION)
        # A run with the local opening is newer than the e-mails beside the timers: no second
        # marker (nor its TemporalChangeVersion upsert) to say so.
        if self._ouverture_locale or workflow.patched(PATCH_COURRIELS_A_COTE):
            # The timers run whatever the e-mails do: they go out beside the wait, in order.
            self._courriels_a_cote = True
            expediteur = asyncio.create_task(self._expedier())
            while self._statut == StatutModification.OUVERTE:
                await self._attendre()
            await expediteur  # the closing e-mails: sent or marked failed
        else:
            while self._statut == StatutModification.OUVERTE:
                await self._attendre()
            await self._envoyer_courriels()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ModificationResultat(modification_numero=entree.modification_numero, statut=self._statut)

    # --- opening -------------------------------------------------------------------------

    async def _ouvrir(self) -> bool:
        maintenant = workflow.now()
        entree = self._entree
        ecriture = OuvertureActivite(
            demande_numero=entree.demande_numero,
            modification_numero=entree.modification_numero,
            commentaire=entree.commentaire,
            champs=entree.champs,
            ouverte_par=entree.ouverte_par,
            ouverte_le=maintenant,
            relance_le=maintenant + entree.relance_apres,
            expire_le=maintenant + entree.expiration_apres,
        )
        try:
            ouverture: OuvertureFaite
            if workflow.patched(PATCH_OUVERTURE_LOCALE):
                self._ouverture_locale = True
                ouverture = await workflow.execute_local_activity(
                    OUVRIR,
                    ecriture,
                    result_type=OuvertureFaite,
                    start_to_close_timeout=_DELAI_BASE,
                    retry_policy=_RETRY_BASE,
                    summary="Ouverture : la demande passe « à modifier »",
                )
            else:
                ouverture = await workflow.execute_activity(
                    OUVRIR,
                    ecriture,
                    result_type=OuvertureFaite,
                    start_to_close_timeout=_DELAI_BASE,
                    retry_policy=_RETRY_BASE,
                    summary="Ouverture : la demande passe « à modifier »",
                )
        except (ActivityError, ApplicationError) as err:
            # A local activity's refusal may come as the ApplicationError itself, not wrapped.
            cause = err.cause if isinstance(err, ActivityError) else err
            if isinstance(cause, ApplicationError) and cause.type in ERREURS_DU_DOMAINE:
                self._refus_ouverture = cause.message
                self._ouverture_terminee = True
                workflow.set_current_details(f"**Ouverture refusée** : {cause.message}")
                return False
            raise
        self._statut = StatutModification.OUVERTE
        workflow.logger.info("modification ouverte, échéance %s", ouverture.expire_le.isoformat())
        self._ouverte_le = ouverture.ouverte_le
        self._relance_le = ouverture.relance_le
        self._expire_le = ouverture.expire_le
        self._ouverture_terminee = True
        workflow.upsert_search_attributes(
            [
                SA_DEMANDE.value_set(ouverture.demande_numero),
                SA_SIRET.value_set(ouverture.operateur_siret),
                SA_STATUT.value_set(StatutModification.OUVERTE.value),
                SA_EXPIRE_LE.value_set(ouverture.expire_le),
            ]
        )
        self._decrire()
        return True

    # --- waiting: reminder and expiry timers -----------------------------------------------

    async def _attendre(self) -> None:
        if self._courriels and not self._courriels_a_cote:
            await self._envoyer_courriels()
            return
        if self._action is not None:
            await workflow.wait_condition(lambda: self._action is None)
            return
        assert self._relance_le is not None and self._expire_le is not None
        maintenant = workflow.now()
        if maintenant >= self._expire_le:
            with _sous_appel(None):  # a timer's doing, not the request that started the cycle
                await self._expirer()
            return
        if not self._relance_envoyee and maintenant >= self._relance_le:
            with _sous_appel(None):
                await self._relancer()
            return
        echeance, libelle = (
            (self._relance_le, "relance (J+10)")
            if not self._relance_envoyee
            else (self._expire_le, "expiration (J+20)")
        )
        self._echeances_changees = False
        try:
            await workflow.wait_condition(
                lambda: (
                    self._echeances_changees
                    or self._action is not None
                    or (bool(self._courriels) and not self._courriels_a_cote)
                ),
                timeout=echeance - maintenant,
                timeout_summary=libelle,
            )
        except TimeoutError:
            pass

    async def _relancer(self) -> None:
        try:
            await workflow.execute_activity(
                NOTER_RELANCE,
                RelanceActivite(modification_numero=self._entree.modification_numero, le=workflow.now()),
                start_to_close_timeout=_DELAI_BASE,
                retry_policy=_RETRY_BASE,
                summary="Relance : noter l'envoi",
            )
        except ActivityError as err:
            if isinstance(err.cause, ApplicationError) and err.cause.type == ERREUR_CONFLIT:
                return  # closed meanwhile: no reminder
            raise
        self._relance_envoyee = True
        workflow.logger.info("relance due : courriel de relance")
        self._envoyer_plus_tard(TypeCourriel.RELANCE)
        self._decrire()

    async def _expirer(self) -> None:
        # Marked first, so that a late confirmation is refused by the validators.
        self._action = "expiration"
        try:
            faite = await self._cloturer(
                StatutModification.EXPIREE, "Expirée : aucune action avant l'échéance."
            )
        finally:
            self._action = None
        self._terminer(faite, TypeCourriel.EXPIRATION)

    # --- updates -----------------------------------------------------------------------------

    @workflow.update(
        description="L'opérateur confirme ses modifications : elles sont appliquées, la demande repasse « en cours »."
    )
    async def confirmer(self, action: ActionOperateur) -> EtatModification:
        self._commencer("confirmation")
        try:
            faite: ClotureFaite = await workflow.execute_activity(
                CONFIRMER,
                ClotureActivite(
                    modification_numero=self._entree.modification_numero,
                    statut=StatutModification.CONFIRMEE,
                    le=workflow.now(),
                    issue=f"Confirmée par {action.par or 'l’opérateur'}",
                    version_brouillon=action.version_brouillon,
                ),
                result_type=ClotureFaite,
                start_to_close_timeout=_DELAI_BASE,
                retry_policy=_RETRY_BASE,
                summary="Confirmation : appliquer le brouillon",
            )
        except ActivityError as err:
            raise _refus(err) from None
        finally:
            self._action = None
        self._version_appliquee = faite.version_appliquee
        self._terminer(faite, TypeCourriel.CONFIRMATION, TypeCourriel.CONFIRMATION_GESTIONNAIRES)
        return self.etat()

    @confirmer.validator
    def _valider_confirmer(self, action: ActionOperateur) -> None:
        self._verifier_disponible("confirmation")

    @workflow.update(
        description="L'opérateur renonce à modifier : la demande repasse « en cours » inchangée."
    )
    async def renoncer(self, action: ActionOperateur) -> EtatModification:
        self._commencer("renonciation")
        try:
            faite = await self._cloturer(
                StatutModification.RENONCEE, f"Renoncée par {action.par or 'l’opérateur'}"
            )
        finally:
            self._action = None
        self._terminer(faite, TypeCourriel.RENONCIATION)
        return self.etat()

    @renoncer.validator
    def _valider_renoncer(self, action: ActionOperateur) -> None:
        self._verifier_disponible("renonciation")

    @workflow.update(
        description="Le gestionnaire retire la demande de modification : la demande repasse « en cours »."
    )
    async def retirer(self, retrait: Retrait) -> EtatModification:
        self._commencer("retrait")
        issue = f"Retirée par {retrait.par or 'un gestionnaire'}" + (
            f" : {retrait.motif}" if retrait.motif else ""
        )
        try:
            faite = await self._cloturer(StatutModification.RETIREE, issue)
        finally:
            self._action = None
        self._terminer(faite, TypeCourriel.RETRAIT)
        return self.etat()

    @retirer.validator
    def _valider_retirer(self, retrait: Retrait) -> None:
        self._verifier_disponible("retrait")

    @workflow.update(
        description="Le gestionnaire repousse l'échéance (date ISO 8601 avec fuseau) ; la relance suit si elle n'est pas partie."
    )
    async def prolonger(self, prolongation: Prolongation) -> EtatModification:
        self._commencer("prolongation")
        try:
            echeances: Echeances = await workflow.execute_activity(
                PROLONGER,
                ProlongationActivite(
                    modification_numero=self._entree.modification_numero,
                    expire_le=prolongation.expire_le,
                    le=workflow.now(),
                ),
                result_type=Echeances,
                start_to_close_timeout=_DELAI_BASE,
                retry_policy=_RETRY_BASE,
                summary="Prolongation : nouvelle échéance",
            )
        except ActivityError as err:
            raise _refus(err) from None
        finally:
            self._action = None
        self._relance_le, self._expire_le = echeances.relance_le, echeances.expire_le
        self._echeances_changees = True
        workflow.upsert_search_attributes([SA_EXPIRE_LE.value_set(echeances.expire_le)])
        self._envoyer_plus_tard(TypeCourriel.PROLONGATION, discriminant=echeances.expire_le.isoformat())
        self._decrire()
        return self.etat()

    @prolonger.validator
    def _valider_prolonger(self, prolongation: Prolongation) -> None:
        self._verifier_disponible("prolongation")
        assert self._expire_le is not None
        # Rules on the modification's state and on today's date, not on the body alone: no
        # schema can state them, so they answer a conflict (409), not invalid data (422).
        if prolongation.expire_le <= self._expire_le or prolongation.expire_le <= workflow.now():
            raise ApplicationError(
                "La nouvelle échéance (expire_le) doit être postérieure à l'échéance actuelle.",
                type=ERREUR_CONFLIT,
            )
        if prolongation.expire_le > workflow.now() + PROLONGATION_MAX:
            raise ApplicationError(
                "La nouvelle échéance (expire_le) ne peut pas dépasser un an à compter d'aujourd'hui.",
                type=ERREUR_CONFLIT,
            )

    @workflow.update(
        description="Attend que l'ouverture soit enregistrée (la demande est alors « à modifier »)."
    )
    async def attendre_ouverture(self) -> EtatModification:
        await workflow.wait_condition(lambda: self._ouverture_terminee)
        if self._refus_ouverture is not None:
            raise ApplicationError(self._refus_ouverture, type=ERREUR_CONFLIT, non_retryable=True)
        return self.etat()

    @workflow.query(description="Statut et échéances de la modification.")
    def etat(self) -> EtatModification:
        return EtatModification(
            modification_numero=self._entree.modification_numero,
            demande_numero=self._entree.demande_numero,
            statut=self._statut,
            ouverte_le=self._ouverte_le,
            relance_le=self._relance_le,
            expire_le=self._expire_le,
            relance_envoyee=self._relance_envoyee,
            version_appliquee=self._version_appliquee,
        )

    # --- helpers ------------------------------------------------------------------------------

    def _verifier_disponible(self, action: str | None = None) -> None:
        """Open and idle; with `action` (from a validator), also before the deadline for the
        operator's actions. Handlers re-check without it: they also run on replay, where a
        check added later must not change what an older history did."""
        numero = self._entree.modification_numero
        if self._statut is None:
            raise ApplicationError(f"La modification {numero} n'est pas encore ouverte.", type=ERREUR_CONFLIT)
        if self._statut != StatutModification.OUVERTE:
            raise ApplicationError(
                f"La modification {numero} n'est plus ouverte (statut : {self._statut.value}).",
                type=ERREUR_CONFLIT,
            )
        if self._action is not None:
            raise ApplicationError(
                f"La modification {numero} traite déjà {_LIBELLES_ACTION[self._action]}.", type=ERREUR_CONFLIT
            )
        # Past the deadline, whatever arrived first (the timer, the update): the expiry wins.
        if (
            action in _ACTIONS_AVANT_ECHEANCE
            and self._expire_le is not None
            and workflow.now() >= self._expire_le
        ):
            raise ApplicationError(message_echeance_passee(numero, self._expire_le), type=ERREUR_CONFLIT)

    def _commencer(self, action: str) -> None:
        # Several updates may pass their validators in one activation: only the first proceeds.
        self._verifier_disponible()
        self._action = action
        workflow.logger.info("%s demandée", action)

    async def _cloturer(self, statut: StatutModification, issue: str) -> ClotureFaite:
        try:
            return await workflow.execute_activity(
                CLOTURER,
                ClotureActivite(
                    modification_numero=self._entree.modification_numero,
                    statut=statut,
                    le=workflow.now(),
                    issue=issue,
                ),
                result_type=ClotureFaite,
                start_to_close_timeout=_DELAI_BASE,
                retry_policy=_RETRY_BASE,
                summary=f"Clôture : {statut.value}",
            )
        except ActivityError as err:
            raise _refus(err) from None

    def _terminer(self, faite: ClotureFaite, *courriels: TypeCourriel) -> None:
        self._statut = faite.statut
        workflow.logger.info("modification close : %s", faite.statut.value)
        workflow.upsert_search_attributes([SA_STATUT.value_set(faite.statut.value)])
        for type_courriel in courriels:
            self._envoyer_plus_tard(type_courriel)
        self._decrire()

    def _envoyer_plus_tard(self, type_courriel: TypeCourriel, discriminant: str = "") -> None:
        courriel = CourrielActivite(
            modification_numero=self._entree.modification_numero,
            type=type_courriel,
            discriminant=discriminant,
        )
        self._courriels.append(CourrielEnFile(courriel, appel_courant.get()))

    async def _envoyer_courriels(self) -> None:
        while self._courriels:
            en_file = self._courriels[0]
            courriel = en_file.courriel
            with _sous_appel(en_file.appel):
                await workflow.execute_activity(
                    ENVOYER_COURRIEL,
                    courriel,
                    start_to_close_timeout=_DELAI_BASE,
                    retry_policy=_RETRY_COURRIEL,
                    summary=f"Courriel : {courriel.type.value}",
                )
            self._courriels.pop(0)

    async def _expedier(self) -> None:
        """The sender task: each queued e-mail in turn, until the modification is closed and
        its last e-mails are sent or marked failed."""
        while True:
            await workflow.wait_condition(
                lambda: bool(self._courriels) or self._statut != StatutModification.OUVERTE
            )
            if not self._courriels:
                return
            await self._expedier_un(self._courriels[0])
            self._courriels.pop(0)

    async def _expedier_un(self, en_file: CourrielEnFile) -> None:
        with _sous_appel(en_file.appel):
            await self._expedier_courriel(en_file.courriel)

    async def _expedier_courriel(self, courriel: CourrielActivite) -> None:
        try:
            resultat: CourrielEnvoye = await workflow.execute_activity(
                ENVOYER_COURRIEL,
                courriel,
                result_type=CourrielEnvoye,
                start_to_close_timeout=DELAI_ACTIVITE_COURRIEL,
                schedule_to_close_timeout=self._entree.abandon_courriel_apres,
                retry_policy=_RETRY_COURRIEL,
                summary=f"Courriel : {courriel.type.value}",
            )
        except ActivityError as err:
            resultat = await self._abandonner(
                courriel, _raison_abandon(err, self._entree.abandon_courriel_apres)
            )
        if resultat.statut == StatutEnvoi.ECHEC:
            self._echecs_courriel.append(f"Courriel « {courriel.type.value} » non envoyé : {resultat.erreur}")
            self._decrire()

    async def _abandonner(self, courriel: CourrielActivite, raison: str) -> CourrielEnvoye:
        try:
            return await workflow.execute_activity(
                NOTER_ECHEC_COURRIEL,
                EchecCourrielActivite(
                    modification_numero=courriel.modification_numero,
                    type=courriel.type,
                    discriminant=courriel.discriminant,
                    erreur=raison,
                ),
                result_type=CourrielEnvoye,
                start_to_close_timeout=_DELAI_BASE,
                retry_policy=_RETRY_BASE,
                summary=f"Courriel abandonné : {courriel.type.value}",
            )
        except ActivityError as err:
            return CourrielEnvoye(statut=StatutEnvoi.ECHEC, erreur=f"{raison} ({err.cause or err})")

    def _decrire(self) -> None:
        """The details shown in the Web UI, in French."""
        e = self._entree
        lignes = [
            f"**Modification {e.modification_numero}** de la demande de solde **{e.demande_numero}**",
            f"- Statut : **{self._statut.value if self._statut else 'ouverture'}**",
            f"- Champs attendus : {', '.join(e.champs)}",
        ]
        if self._relance_le and self._expire_le:
            relance = "envoyée" if self._relance_envoyee else f"prévue le {self._relance_le.isoformat()}"
            lignes += [f"- Relance : {relance}", f"- Échéance : {self._expire_le.isoformat()}"]
        if self._version_appliquee is not None:
            lignes.append(f"- Version appliquée : {self._version_appliquee}")
        lignes += [f"- {echec}" for echec in self._echecs_courriel]
        workflow.set_current_details("\n".join(lignes))


def _raison_abandon(err: ActivityError, apres: timedelta) -> str:
    """Why an e-mail is given up, in French, for its log row and the workflow's details."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in ERREURS_DU_DOMAINE:
        return cause.message
    if isinstance(cause, DelaiDepasse) or err.retry_state == RetryState.TIMEOUT:
        secondes = int(apres.total_seconds())
        duree = (
            f"{secondes // 86400} jour(s)"
            if secondes >= 86400
            else f"{secondes // 3600} heure(s)"
            if secondes >= 3600
            else f"{secondes // 60} minute(s)"
        )
        return f"serveur SMTP injoignable : aucun envoi réussi en {duree}"
    return f"envoi abandonné : {cause or err}"


def _refus(err: ActivityError) -> BaseException:
    """A domain refusal from an activity, passed on to the update's caller as it is."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in ERREURS_DU_DOMAINE:
        return ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True)
    return err
