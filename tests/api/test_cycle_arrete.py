"""A modification whose workflow was ended from the Temporal UI: every action is refused with
a 409 that tells operations to run the check, and nothing is written."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

import httpx
import pytest
from sqlmodel import select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande, Modification, Piece
from modif_solde.services import modifications as svc
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_parcours import ouvrir, probleme
from tests.workflows.conftest import Banc, port_libre

NUMERO = "FINMSS009266M1"
MESSAGE = (
    f"Le cycle de la modification {NUMERO} s'est arrêté dans Temporal sans la clore : aucune action "
    "n'est possible. L'exploitation doit lancer la vérification (`modif-solde verifier`)."
)


@pytest.mark.parametrize("fin", ["terminate", "cancel"])
async def test_toute_action_sur_un_cycle_arrete_est_refusee(
    http: httpx.AsyncClient, banc: Banc, demande: Demande, factory: SessionFactory, pdf: bytes, fin: str
) -> None:
    await ouvrir(http)
    r = await http.post(
        f"/api/v1/modifications/{NUMERO}/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": ("avant.pdf", pdf, "application/pdf")},
        headers=OPERATEUR,
    )
    piece_id = r.json()["id"]
    handle = banc.client.get_workflow_handle(NUMERO)
    if fin == "terminate":
        await handle.terminate("terminé depuis l'UI")
    else:
        await handle.cancel()
        with pytest.raises(Exception):  # noqa: B017 (the SDK's failure for a cancelled workflow)
            await handle.result()
    async with factory() as session:
        avant = (await session.exec(select(Modification))).one()
        pieces_avant = len((await session.exec(select(Piece))).all())

    actions = [
        http.patch(
            f"/api/v1/modifications/{NUMERO}/brouillon",
            json={"contact_support_telephone": "06 12 34 56 78"},
            headers=OPERATEUR,
        ),
        http.post(
            f"/api/v1/modifications/{NUMERO}/pieces",
            data={"type": "AUTRE_S"},
            files={"fichier": ("apres.pdf", pdf, "application/pdf")},
            headers=OPERATEUR,
        ),
        http.delete(f"/api/v1/modifications/{NUMERO}/pieces/{piece_id}", headers=OPERATEUR),
        http.post(f"/api/v1/modifications/{NUMERO}/confirmer", headers=OPERATEUR),
        http.post(f"/api/v1/modifications/{NUMERO}/renoncer", headers=OPERATEUR),
        http.post(f"/api/v1/modifications/{NUMERO}/retirer", json={"motif": "x"}, headers=GESTIONNAIRE),
        http.post(
            f"/api/v1/modifications/{NUMERO}/prolonger",
            json={"expire_le": "2099-01-01T00:00:00+01:00"},
            headers=GESTIONNAIRE,
        ),
    ]
    for action in actions:
        r = await action
        assert probleme(r, 409)["detail"] == MESSAGE, r.request.url

    async with factory() as session:
        apres = (await session.exec(select(Modification))).one()
        assert len((await session.exec(select(Piece))).all()) == pieces_avant
    assert (apres.statut, apres.brouillon) == (avant.statut, avant.brouillon) == ("ouverte", {})


async def test_une_modification_close_garde_son_refus_habituel(
    http: httpx.AsyncClient, banc: Banc, demande: Demande
) -> None:
    await ouvrir(http)
    r = await http.post(f"/api/v1/modifications/{NUMERO}/renoncer", headers=OPERATEUR)
    assert r.status_code == 200, r.text
    # Ended for good, whether it had finished its closing e-mails or not.
    with contextlib.suppress(RPCError):
        await banc.client.get_workflow_handle(NUMERO).terminate("après la clôture")
    r = await http.patch(
        f"/api/v1/modifications/{NUMERO}/brouillon",
        json={"contact_support_telephone": "06 12 34 56 78"},
        headers=OPERATEUR,
    )
    assert "modif-solde verifier" not in probleme(r, 409)["detail"]
    r = await http.post(f"/api/v1/modifications/{NUMERO}/confirmer", headers=OPERATEUR)
    assert "modif-solde verifier" not in probleme(r, 409)["detail"]


async def test_temporal_injoignable_donne_un_503(
    settings: Settings, factory: SessionFactory, demande: Demande, t0: datetime
) -> None:
    async with unit_of_work(factory) as session:
        await svc.ouvrir(
            session,
            svc.Ouverture(
                demande_numero="FINMSS009266",
                numero=NUMERO,
                commentaire="Le téléphone ne répond pas.",
                champs=["contact_support_telephone"],
                ouverte_par="gestionnaire.test",
                ouverte_le=t0,
                relance_le=t0 + timedelta(days=10),
                expire_le=t0 + timedelta(days=20),
            ),
        )
    injoignable = await Client.connect(
        f"127.0.0.1:{port_libre()}", data_converter=pydantic_data_converter, lazy=True
    )
    app = create_app(settings, client=injoignable)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            r = await http.patch(
                f"/api/v1/modifications/{NUMERO}/brouillon",
                json={"contact_support_telephone": "06 12 34 56 78"},
                headers=OPERATEUR,
            )
            probleme(r, 503)
            r = await http.post(f"/api/v1/modifications/{NUMERO}/confirmer", headers=OPERATEUR)
            probleme(r, 503)
    async with factory() as session:
        assert (await session.exec(select(Modification))).one().brouillon == {}
