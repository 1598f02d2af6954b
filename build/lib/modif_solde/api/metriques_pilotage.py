"""The steering figures that fit as Prometheus gauges, on the API's /metrics, read from the
database at scrape time (at most every CACHE_ECHEANCES seconds) like the open modifications'
gauges: the open modifications by days left, and over the current month (Paris) the answer
time's median and 9th decile and the failed e-mails by kind. The period figures themselves
(opened, closed by outcome) are the worker's counters already."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import Gauge

from modif_solde.compteurs import CACHE_ECHEANCES, REGISTRE_API
from modif_solde.models.enums import TypeCourriel
from modif_solde.services import pilotage

journal = logging.getLogger(__name__)

OUVERTES_PAR_JOURS_RESTANTS = Gauge(
    "modif_solde_pilotage_ouvertes_par_jours_restants",
    "Modifications ouvertes maintenant, par tranche de jours restants jusqu'à l'échéance (jours de Paris).",
    ["tranche"],
    registry=REGISTRE_API,
)
DELAI_REPONSE_MOIS = Gauge(
    "modif_solde_pilotage_delai_reponse_mois_jours",
    "Délai de l'ouverture à la réponse de l'opérateur pour les réponses du mois en cours, en jours (médiane, 9e décile).",
    ["quantile"],
    registry=REGISTRE_API,
)
COURRIELS_ECHEC_MOIS = Gauge(
    "modif_solde_pilotage_courriels_echec_mois",
    "Courriels écrits dans le mois en cours et abandonnés (refusés définitivement), par type.",
    ["type"],
    registry=REGISTRE_API,
)
TRANCHES = {
    t.libelle: ("depassee" if t.max is not None and t.max < 0 else f"{t.min}-{t.max or 'plus'}")
    for t in pilotage.TRANCHES
}


class _Etat:
    lues_le = float("-inf")
    verrou: asyncio.Lock | None = None


async def actualiser(app: Any) -> None:
    """Read the figures again if the last reading is older than CACHE_ECHEANCES; a failure
    leaves the gauges at their last value (the scrape still answers)."""
    etat: _Etat = getattr(app.state, "metriques_pilotage", None) or _Etat()
    app.state.metriques_pilotage = etat
    if etat.verrou is None:
        etat.verrou = asyncio.Lock()
    async with etat.verrou:
        if time.monotonic() - etat.lues_le < CACHE_ECHEANCES:
            return
        try:
            async with app.state.sessions_lecture() as session:
                chiffres = await asyncio.wait_for(
                    pilotage.lire_pilotage(session, pilotage.lire_periode(None, None)), timeout=5
                )
        except Exception:
            journal.warning("métriques : lecture des chiffres du pilotage impossible", exc_info=True)
            return
        for t in chiffres.ouvertes_maintenant:
            OUVERTES_PAR_JOURS_RESTANTS.labels(TRANCHES[t.libelle]).set(t.nombre)
        d = chiffres.delai_reponse
        DELAI_REPONSE_MOIS.labels("0.5").set(d.mediane_jours if d.mediane_jours is not None else float("nan"))
        DELAI_REPONSE_MOIS.labels("0.9").set(
            d.decile_9_jours if d.decile_9_jours is not None else float("nan")
        )
        echecs = {e.type: e.nombre for e in chiffres.courriels_en_echec}
        for type_courriel in TypeCourriel:
            COURRIELS_ECHEC_MOIS.labels(type_courriel.value).set(echecs.get(type_courriel, 0))
        etat.lues_le = time.monotonic()
