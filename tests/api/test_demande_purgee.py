"""A request whose retention period is over, as the API and the back-office show it: the page
says when its data were erased, and no modification can be opened on what is left."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.models.types import maintenant
from modif_solde.services.conservation import purger
from modif_solde.services.stockage import StockageDossier
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_parcours import OUVERTURE, probleme


async def test_la_page_le_dit_et_l_ouverture_est_refusee(
    http: httpx.AsyncClient, demande: Demande, factory: SessionFactory, stockage: StockageDossier
) -> None:
    assert (await http.get("/api/v1/demandes/FINMSS009266", headers=OPERATEUR)).json()["purgee_le"] is None
    async with unit_of_work(factory) as session:
        await session.exec(update(Demande).values(statut_modifie_le=maintenant() - timedelta(days=800)))  # type: ignore[call-overload]
    assert len((await purger(factory, stockage, timedelta(days=730), en_cours=set())).purgees) == 1

    page = (await http.get("/api/v1/demandes/FINMSS009266", headers=OPERATEUR)).json()
    assert page["purgee_le"] is not None and page["pieces"] == []
    assert (
        page["informations"]["contact_support_courriel"] == ""
        and page["coordonnees_bancaires"]["iban_masque"] == ""
    )
    assert page["montants"]["solde"]["valeur"] == "58588.30"
    refus = probleme(
        await http.post("/api/v1/demandes/FINMSS009266/modifications", json=OUVERTURE, headers=GESTIONNAIRE),
        409,
    )
    assert "durée de conservation atteinte" in refus["detail"]
