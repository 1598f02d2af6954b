"""ModificationWorkflow: one modification round of a balance request, from opening to outcome.

It opens the modification (request `a_modifier`), e-mails the invitation, then waits for the
operator (confirm, renounce) or the gestionnaire (withdraw, extend) with a reminder timer and an
expiry timer. Every database write happens in an activity; the updates answer once the outcome
is persisted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from modif_solde.models.enums import PROLONGATION_MAX, StatutModification, TypeCourriel
    from modif_solde.workflows.contrat import (
        CLOTURER,
        CONFIRMER,
        ENVOYER_COURRIEL,
        ERREUR_CONFLIT,
        ERREUR_DONNEES_INVALIDES,
        ERREURS_DU_DOMAINE,
        NOTER_RELANCE,
        OUVRIR,
        PROLONGER,
        WORKFLOW_MODIFICATION,
        ActionOperateur,
        ClotureActivite,
        ClotureFaite,
        CourrielActivite,
        Echeances,
        EtatModification,
        ModificationEntree,
        ModificationResultat,
        OuvertureActivite,
        OuvertureFaite,
        Prolongation,
        ProlongationActivite,
        RelanceActivite,
        Retrait,
    )

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
        self._courriels: list[CourrielActivite] = []
        self._echeances_changees = False

    @workflow.run
    async def run(self, entree: ModificationEntree) -> ModificationResultat:
        if not await self._ouvrir():
            await workflow.wait_condition(workflow.all_handlers_finished)
            return ModificationResultat(
                modification_numero=entree.modification_numero, statut=None, motif=self._refus_ouverture
            )
        self._envoyer_plus_tard(TypeCourriel.INVITATION)
        while self._statut == StatutModification.OUVERTE:
            await self._attendre()
        await self._envoyer_courriels()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return ModificationResultat(modification_numero=entree.modification_numero, statut=self._statut)

    # --- opening -------------------------------------------------------------------------

    async def _ouvrir(self) -> bool:
        maintenant = workflow.now()
        entree = self._entree
        try:
            ouverture: OuvertureFaite = await workflow.execute_activity(
                OUVRIR,
                OuvertureActivite(
                    demande_numero=entree.demande_numero,
                    modification_numero=entree.modification_numero,
                    commentaire=entree.commentaire,
                    champs=entree.champs,
                    ouverte_par=entree.ouverte_par,
                    ouverte_le=maintenant,
                    relance_le=maintenant + entree.relance_apres,
                    expire_le=maintenant + entree.expiration_apres,
                ),
                result_type=OuvertureFaite,
                start_to_close_timeout=_DELAI_BASE,
                retry_policy=_RETRY_BASE,
                summary="Ouverture : la demande passe « à modifier »",
            )
        except ActivityError as err:
            if isinstance(err.cause, ApplicationError) and err.cause.type in ERREURS_DU_DOMAINE:
                self._refus_ouverture = err.cause.message
                self._ouverture_terminee = True
                workflow.set_current_details(f"**Ouverture refusée** : {err.cause.message}")
                return False
            raise
        self._statut = StatutModification.OUVERTE
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
        if self._courriels:
            await self._envoyer_courriels()
            return
        if self._action is not None:
            await workflow.wait_condition(lambda: self._action is None)
            return
        assert self._relance_le is not None and self._expire_le is not None
        maintenant = workflow.now()
        if maintenant >= self._expire_le:
            await self._expirer()
            return
        if not self._relance_envoyee and maintenant >= self._relance_le:
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
                lambda: self._echeances_changees or self._action is not None or bool(self._courriels),
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
        self._verifier_disponible()

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
        self._verifier_disponible()

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
        self._verifier_disponible()

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
        self._verifier_disponible()
        assert self._expire_le is not None
        if prolongation.expire_le <= self._expire_le or prolongation.expire_le <= workflow.now():
            raise ApplicationError(
                "La nouvelle échéance doit être postérieure à l'échéance actuelle.",
                type=ERREUR_DONNEES_INVALIDES,
                non_retryable=True,
            )
        if prolongation.expire_le > workflow.now() + PROLONGATION_MAX:
            raise ApplicationError(
                "La nouvelle échéance ne peut pas dépasser un an à compter d'aujourd'hui.",
                type=ERREUR_DONNEES_INVALIDES,
                non_retryable=True,
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

    def _verifier_disponible(self) -> None:
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

    def _commencer(self, action: str) -> None:
        # Several updates may pass their validators in one activation: only the first proceeds.
        self._verifier_disponible()
        self._action = action

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
        workflow.upsert_search_attributes([SA_STATUT.value_set(faite.statut.value)])
        for type_courriel in courriels:
            self._envoyer_plus_tard(type_courriel)
        self._decrire()

    def _envoyer_plus_tard(self, type_courriel: TypeCourriel, discriminant: str = "") -> None:
        self._courriels.append(
            CourrielActivite(
                modification_numero=self._entree.modification_numero,
                type=type_courriel,
                discriminant=discriminant,
            )
        )

    async def _envoyer_courriels(self) -> None:
        while self._courriels:
            courriel = self._courriels[0]
            await workflow.execute_activity(
                ENVOYER_COURRIEL,
                courriel,
                start_to_close_timeout=_DELAI_BASE,
                retry_policy=_RETRY_COURRIEL,
                summary=f"Courriel : {courriel.type.value}",
            )
            self._courriels.pop(0)

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
        workflow.set_current_details("\n".join(lignes))


def _refus(err: ActivityError) -> BaseException:
    """A domain refusal from an activity, passed on to the update's caller as it is."""
    cause = err.cause
    if isinstance(cause, ApplicationError) and cause.type in ERREURS_DU_DOMAINE:
        return ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True)
    return err
