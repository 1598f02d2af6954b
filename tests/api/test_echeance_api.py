"""Through the API: an extension the modification's deadline refuses answers a conflict in
French naming `expire_le` (409: it depends on the modification, not on the body), and past the deadline the
operator's draft and documents are refused with the date (409)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.services import modifications as svc
from modif_solde.services.courriels import format_date_heure_fr
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_parcours import ouvrir, probleme
from tests.workflows.conftest import ServeurSmtp

NUMERO = "FINMSS009266M1"


async def test_prolongation_avant_l_echeance_actuelle_est_un_conflit(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    ouverte = await ouvrir(http)
    avant = (datetime.fromisoformat(ouverte["expire_le"]) - timedelta(days=1)).isoformat()
    r = await http.post(
        f"/api/v1/modifications/{NUMERO}/prolonger", json={"expire_le": avant}, headers=GESTIONNAIRE
    )
    corps = probleme(r, 409)
    assert corps["detail"] == "La nouvelle échéance (expire_le) doit être postérieure à l'échéance actuelle."


async def test_apres_l_echeance_brouillon_et_pieces_refuses_avec_la_date(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp, factory: SessionFactory, pdf: bytes
) -> None:
    await ouvrir(http)
    # The deadline passed a minute ago; the expiry has not run yet (its timer is later).
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, NUMERO, verrou=True)
        modification.expire_le = datetime.now(modification.ouverte_le.tzinfo) - timedelta(minutes=1)
        session.add(modification)
        expire_le = modification.expire_le
    date = format_date_heure_fr(expire_le)
    r = await http.patch(
        f"/api/v1/modifications/{NUMERO}/brouillon",
        json={"contact_support_telephone": "0612345678"},
        headers=OPERATEUR,
    )
    assert f"a expiré le {date}" in probleme(r, 409)["detail"]
    r = await http.post(
        f"/api/v1/modifications/{NUMERO}/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": ("a.pdf", pdf, "application/pdf")},
        headers=OPERATEUR,
    )
    assert f"a expiré le {date}" in probleme(r, 409)["detail"]
    async with factory() as session:
        assert (await svc.charger_modification(session, NUMERO)).brouillon == {}
