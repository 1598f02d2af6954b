"""The daily maintenance's activities: `verifier` and `purger` as the CLI runs them, on the
worker's database, storage and Temporal client (the activity's own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity

from modif_solde import compteurs as metriques
from modif_solde.db import SessionFactory
from modif_solde.services import conservation
from modif_solde.services.stockage import Stockage
from modif_solde.services.verification import (
    decrire_envoi_inacheve,
    decrire_orphelin,
    envois_inacheves,
    fichiers_orphelins,
    verifier,
)
from modif_solde.workflows.entretien import (
    PURGER_DONNEES,
    VERIFIER_COHERENCE,
    EntretienEntree,
    PurgeFaite,
    VerificationFaite,
)


@dataclass
class ActivitesEntretien:
    sessions: SessionFactory
    stockage: Stockage
    # None (development only): nothing is purged.
    duree_conservation: timedelta | None

    @activity.defn(name=VERIFIER_COHERENCE)
    async def verifier_coherence(self, entree: EntretienEntree) -> VerificationFaite:
        """Report only: repairs stay a decision of operations (`modif-solde verifier --reparer`)."""
        ecarts = await verifier(self.sessions, activity.client())
        activity.heartbeat()
        differences = [e.message for e in ecarts]
        differences += [decrire_orphelin(o) for o in await fichiers_orphelins(self.sessions, self.stockage)]
        differences += [decrire_envoi_inacheve(e) for e in await envois_inacheves(self.stockage)]
        for difference in differences:
            activity.logger.warning("vérification : %s", difference)
        activity.logger.info("vérification : %d différence(s)", len(differences))
        metriques.verification_faite(len(differences))
        return VerificationFaite(differences=differences)

    @activity.defn(name=PURGER_DONNEES)
    async def purger_donnees(self, entree: EntretienEntree) -> PurgeFaite:
        if self.duree_conservation is None:
            activity.logger.info("purge : MODIF_SOLDE_DUREE_CONSERVATION non défini, rien n'est purgé")
            return PurgeFaite(active=False)
        rapport = await conservation.purger(
            self.sessions,
            self.stockage,
            self.duree_conservation,
            await conservation.cycles_en_cours(activity.client()),
            battement=activity.heartbeat,
        )
        for ligne in rapport.lignes():
            activity.logger.info("purge : %s", ligne)
        metriques.purge_faite(len(rapport.purgees))
        return PurgeFaite(
            active=True,
            purgees=[p.numero for p in rapport.purgees],
            reportees=rapport.reportees,
        )
