"""The steering gauges on the API's /metrics, read from the database at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutEnvoi
from modif_solde.models.tables import Courriel, Demande
from tests.metriques.lecture import lire, valeur
from tests.pilotage import jeu

OUVERTES = "modif_solde_pilotage_ouvertes_par_jours_restants"
ECHECS = "modif_solde_pilotage_courriels_echec_mois"


async def test_les_jauges_du_pilotage(
    http: httpx.AsyncClient, factory: SessionFactory, demande: Demande
) -> None:
    await jeu.construire(factory, demande)
    async with unit_of_work(factory) as session:
        # A relance given up now: this month's.
        session.add(
            Courriel(
                demande_id=demande.id or 0, type="relance", destinataire="a@b.fr", sujet="S", corps_texte="T",
                corps_html="<p>T</p>", cle_idempotence="maintenant", message_id="<m@x>",
                cree_le=datetime.now(UTC), statut_envoi=StatutEnvoi.ECHEC,
            )
        )  # fmt: skip
    r = await http.get("/metrics")
    assert r.status_code == 200
    e = lire(r.text)
    assert {t: valeur(e, OUVERTES, tranche=t) for t in ("depassee", "0-2", "3-5", "6-10", "11-20", "21-plus")} == {
        "depassee": 1, "0-2": 1, "3-5": 0, "6-10": 0, "11-20": 1, "21-plus": 0,
    }  # fmt: skip
    assert valeur(e, ECHECS, type="relance") == 1 and valeur(e, ECHECS, type="invitation") == 0
    assert ("modif_solde_pilotage_delai_reponse_mois_jours", frozenset({("quantile", "0.5")})) in e
