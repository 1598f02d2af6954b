"""The modification workflow's activities: each one unit of work over the services.

Dependencies are injected (session factory, storage, mail sender, addresses), so tests run
them against the real databases and a real SMTP server. A domain refusal becomes a
non-retryable ApplicationError of the same name; anything else is retried by Temporal.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from modif_solde import compteurs as metriques
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutEnvoi, StatutModification, TypeCourriel
from modif_solde.models.tables import Demande, Operateur
from modif_solde.models.types import maintenant
from modif_solde.services import envoi
from modif_solde.services import modifications as svc
from modif_solde.services.courriels import rendre_courriel
from modif_solde.services.erreurs import ErreurDomaine
from modif_solde.services.stockage import Stockage
from modif_solde.workflows.contrat import (
    CLOTURER,
    CONFIRMER,
    ENVOYER_COURRIEL,
    NOTER_ECHEC_COURRIEL,
    NOTER_RELANCE,
    OUVRIR,
    PROLONGER,
    ClotureActivite,
    ClotureFaite,
    CourrielActivite,
    CourrielEnvoye,
    Echeances,
    EchecCourrielActivite,
    OuvertureActivite,
    OuvertureFaite,
    ProlongationActivite,
    RelanceActivite,
)

P = ParamSpec("P")
R = TypeVar("R")

# Sent to the gestionnaires' address rather than to the operator.
_POUR_GESTIONNAIRES = {TypeCourriel.CONFIRMATION_GESTIONNAIRES}
# A reminder is only worth sending while the modification is still open.
_SEULEMENT_SI_OUVERTE = {TypeCourriel.RELANCE}


def _activite(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """A domain refusal becomes a non-retryable ApplicationError of the same name. The work
    runs shielded from cancellation (worker stop, timeout): a transaction cut in half would
    leave SQLite locked; every activity is safe to repeat, so finishing it is always right."""

    @functools.wraps(fn)
    async def enveloppe(*args: P.args, **kwargs: P.kwargs) -> R:
        tache = asyncio.ensure_future(fn(*args, **kwargs))
        # Once the caller is gone, the outcome is read here so it is never reported as lost.
        tache.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            return await asyncio.shield(tache)
        except ErreurDomaine as err:
            activity.logger.info("refus : %s", err.message)
            raise ApplicationError(
                err.message, err.erreurs, type=type(err).__name__, non_retryable=True
            ) from err

    return enveloppe


@dataclass
class ActivitesModification:
    sessions: SessionFactory
    stockage: Stockage
    expediteur: envoi.Expediteur
    adresse_expediteur: str
    adresse_gestionnaires: str
    portail_url: str

    @activity.defn(name=OUVRIR)
    @_activite
    async def ouvrir(self, entree: OuvertureActivite) -> OuvertureFaite:
        async with unit_of_work(self.sessions) as session:
            modification = await svc.ouvrir(
                session,
                svc.Ouverture(
                    demande_numero=entree.demande_numero,
                    numero=entree.modification_numero,
                    commentaire=entree.commentaire,
                    champs=entree.champs,
                    ouverte_par=entree.ouverte_par,
                    ouverte_le=entree.ouverte_le,
                    relance_le=entree.relance_le,
                    expire_le=entree.expire_le,
                ),
            )
            demande = await session.get_one(Demande, modification.demande_id)
            operateur = await session.get_one(Operateur, demande.operateur_id)
        activity.logger.info("modification ouverte", extra={"modification": modification.numero})
        metriques.modification_ouverte()
        return OuvertureFaite(
            demande_numero=demande.numero,
            modification_numero=modification.numero,
            operateur_siret=operateur.siret,
            statut=StatutModification(modification.statut),
            ouverte_le=modification.ouverte_le,
            relance_le=modification.relance_le,
            expire_le=modification.expire_le,
        )

    @activity.defn(name=CONFIRMER)
    @_activite
    async def confirmer(self, entree: ClotureActivite) -> ClotureFaite:
        async with unit_of_work(self.sessions) as session:
            cloture = await svc.confirmer(
                session, entree.modification_numero, entree.le, entree.version_brouillon
            )
        metriques.modification_cloturee(cloture)
        return _faite(cloture)

    @activity.defn(name=CLOTURER)
    @_activite
    async def cloturer(self, entree: ClotureActivite) -> ClotureFaite:
        async with unit_of_work(self.sessions) as session:
            cloture = await svc.cloturer_sans_modifier(
                session, self.stockage, entree.modification_numero, entree.statut, entree.le, entree.issue
            )
        metriques.modification_cloturee(cloture)
        return _faite(cloture)

    @activity.defn(name=PROLONGER)
    @_activite
    async def prolonger(self, entree: ProlongationActivite) -> Echeances:
        async with unit_of_work(self.sessions) as session:
            modification = await svc.prolonger(
                session, entree.modification_numero, entree.expire_le, entree.le
            )
        metriques.modification_prolongee()
        return Echeances(
            relance_le=modification.relance_le,
            expire_le=modification.expire_le,
            relance_envoyee=modification.relance_envoyee_le is not None,
        )

    @activity.defn(name=NOTER_RELANCE)
    @_activite
    async def noter_relance(self, entree: RelanceActivite) -> None:
        async with unit_of_work(self.sessions) as session:
            await svc.noter_relance(session, entree.modification_numero, entree.le)

    @activity.defn(name=ENVOYER_COURRIEL)
    @_activite
    async def envoyer_courriel(self, entree: CourrielActivite) -> CourrielEnvoye:
        """Log, then send once: a row already sent (or given up) is not sent again. A final
        refusal by the server (5xx, required STARTTLS missing) marks the row `echec` and is the
        activity's answer, not an error: nothing to retry. Anything else is raised, for
        Temporal to retry with backoff, after noting the server's answer on the row."""
        cle = envoi.cle_idempotence(entree.modification_numero, entree.type, entree.discriminant)
        async with unit_of_work(self.sessions) as session:
            # One query for the modification, its request and its operator; the templates'
            # other reads (changes, documents) only for the kinds that show them.
            modification, demande, _ = await envoi.charger_pour_courriel(session, entree.modification_numero)
            if entree.type in _SEULEMENT_SI_OUVERTE and modification.statut != StatutModification.OUVERTE:
                activity.logger.info("relance sans objet : modification close")
                return CourrielEnvoye(cle=cle)
            contexte = await envoi.contexte(session, modification, self.portail_url, entree.type)
            # The address the request was filed with, whatever a later import of its SIRET says.
            destinataire = (
                self.adresse_gestionnaires
                if entree.type in _POUR_GESTIONNAIRES
                else demande.operateur_courriel
            )
            # Logged and this attempt counted in one statement (INSERT … ON CONFLICT … RETURNING).
            courriel, a_envoyer = await envoi.consigner_et_tenter(
                session,
                modification,
                entree.type,
                destinataire,
                rendre_courriel(entree.type, contexte),
                cle,
                maintenant(),
            )
            if not a_envoyer:
                activity.logger.info("courriel déjà traité", extra={"cle": cle})
                return CourrielEnvoye(
                    cle=cle,
                    statut=StatutEnvoi.ENVOYE if courriel.envoye_le else StatutEnvoi(courriel.statut_envoi),
                    erreur=courriel.erreur_envoi,
                )
        assert courriel.id is not None
        try:
            await self.expediteur.envoyer(envoi.construire_message(courriel, self.adresse_expediteur))
        except envoi.EnvoiRefuse as refus:
            async with unit_of_work(self.sessions) as session:
                await envoi.noter_erreur(session, courriel.id, refus.reponse, definitive=True)
            activity.logger.warning("courriel refusé définitivement : %s", refus.reponse, extra={"cle": cle})
            return CourrielEnvoye(cle=cle, statut=StatutEnvoi.ECHEC, erreur=refus.reponse)
        except Exception as err:
            reponse = envoi.reponse_du_serveur(err)
            activity.logger.info("courriel non envoyé, nouvel essai prévu : %s", reponse, extra={"cle": cle})
            try:
                async with unit_of_work(self.sessions) as session:
                    await envoi.noter_erreur(session, courriel.id, reponse, definitive=False)
            except Exception:  # the SMTP failure is the one to report (and retry)
                activity.logger.warning("erreur d'envoi non consignée", exc_info=True)
            raise
        async with unit_of_work(self.sessions) as session:
            await envoi.marquer_envoye(session, courriel, maintenant())
        activity.logger.info("courriel envoyé", extra={"cle": cle, "destinataire": destinataire})
        return CourrielEnvoye(cle=cle, statut=StatutEnvoi.ENVOYE)

    @activity.defn(name=NOTER_ECHEC_COURRIEL)
    @_activite
    async def noter_echec_courriel(self, entree: EchecCourrielActivite) -> CourrielEnvoye:
        """Mark `echec` an e-mail the workflow gave up on (its retries ran out)."""
        cle = envoi.cle_idempotence(entree.modification_numero, entree.type, entree.discriminant)
        async with unit_of_work(self.sessions) as session:
            courriel = await envoi.noter_echec_par_cle(session, cle, entree.erreur)
        if courriel is None:
            return CourrielEnvoye(cle=cle, statut=StatutEnvoi.ECHEC, erreur=entree.erreur)
        activity.logger.warning("courriel abandonné : %s", courriel.erreur_envoi, extra={"cle": cle})
        return CourrielEnvoye(
            cle=cle,
            statut=StatutEnvoi.ENVOYE if courriel.envoye_le else StatutEnvoi(courriel.statut_envoi),
            erreur=courriel.erreur_envoi,
        )

    def toutes(self) -> list[Callable[..., Awaitable[object]]]:
        return [
            self.ouvrir,
            self.confirmer,
            self.cloturer,
            self.prolonger,
            self.noter_relance,
            self.envoyer_courriel,
            self.noter_echec_courriel,
        ]


def _faite(cloture: svc.Cloture) -> ClotureFaite:
    assert cloture.modification.cloturee_le is not None
    return ClotureFaite(
        modification_numero=cloture.modification.numero,
        statut=StatutModification(cloture.modification.statut),
        cloturee_le=cloture.modification.cloturee_le,
        version_appliquee=cloture.modification.version_appliquee,
    )
