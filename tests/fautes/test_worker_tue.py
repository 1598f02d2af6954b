"""The worker killed (SIGKILL) in the middle of an activity, then restarted: the cycle goes on,
nothing is sent twice, the expiry happens at its time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from modif_solde.models.tables import Courriel
from tests.fautes.conftest import Pile, attendre


async def test_le_worker_tue_pendant_l_envoi_de_l_invitation_puis_relance(
    pile: Pile, donnees: dict[str, Any]
) -> None:
    await pile.importer(donnees, "FINMSS000001")
    await pile.importer(donnees, "FINMSS000002")
    worker = pile.worker()
    pile.boite.retenir = True  # the invitation's SMTP exchange stops at RCPT: the activity is running
    await pile.ouvrir("FINMSS000001", timedelta(seconds=20), timedelta(seconds=40))
    await attendre(lambda: pile.boite.retenus == 1, 30, "l'envoi de l'invitation commence")

    worker.tuer()
    pile.boite.retenir = False
    # Opened while no worker runs: it waits for the next one.
    ouverture = pile.ouvrir("FINMSS000002", timedelta(seconds=20), timedelta(seconds=40))
    pile.worker()
    await ouverture

    cycle = ["invitation", "relance", "expiration"]
    await pile.verifier_tout({"FINMSS000001M1": cycle, "FINMSS000002M1": cycle})
    async with pile.factory() as session:
        invitation = (
            await session.exec(
                select(Courriel).where(Courriel.cle_idempotence == "FINMSS000001M1:invitation")
            )
        ).one()
    # The killed attempt counted, then the new worker's retry sent it.
    assert invitation.tentatives == 2
