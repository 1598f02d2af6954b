"""A closed modification shows what it changed: for a confirmed one the value from before and
the value applied, for one that ended without change nothing (its draft was discarded)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutModification
from modif_solde.models.tables import Demande
from modif_solde.services import lecture
from modif_solde.services import modifications as svc
from modif_solde.services.stockage import Stockage
from tests.services.test_modifications import Echeances, ouverture

TELEPHONE_AVANT, TELEPHONE_M1, TELEPHONE_M2 = "06 00 00 00 00", "06 12 34 56 78", "06 98 76 54 32"


async def _vue(factory: SessionFactory, numero: str) -> list[dict[str, str]]:
    async with factory() as session:
        vue = await lecture.modification_vue(session, await svc.charger_modification(session, numero))
    return [c.model_dump() for c in vue.changements]


def _suivantes(echeances: Echeances, jours: int) -> Echeances:
    return tuple(t + timedelta(days=jours) for t in echeances)  # type: ignore[return-value]


async def test_une_modification_confirmee_garde_la_valeur_d_avant(
    factory: SessionFactory, demande: Demande, echeances: Echeances
) -> None:
    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(echeances))
        await svc.mettre_a_jour_brouillon(
            session, "FINMSS009266M1", {"contact_support_telephone": "+33612345678"}
        )
    attendu = [
        {
            "champ": "contact_support_telephone",
            "valeur_actuelle": TELEPHONE_AVANT,
            "nouvelle_valeur": TELEPHONE_M1,
        }
    ]
    assert await _vue(factory, "FINMSS009266M1") == attendu
    async with unit_of_work(factory) as session:
        await svc.confirmer(session, "FINMSS009266M1", echeances[0] + timedelta(days=1))
    assert await _vue(factory, "FINMSS009266M1") == attendu

    # A later modification changes the same field again: the first one still shows its own pair.
    suivantes = _suivantes(echeances, 2)
    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(suivantes, numero="FINMSS009266M2"))
        await svc.mettre_a_jour_brouillon(
            session, "FINMSS009266M2", {"contact_support_telephone": TELEPHONE_M2}
        )
        await svc.confirmer(session, "FINMSS009266M2", suivantes[0] + timedelta(days=1))
    assert await _vue(factory, "FINMSS009266M1") == attendu
    assert await _vue(factory, "FINMSS009266M2") == [
        {
            "champ": "contact_support_telephone",
            "valeur_actuelle": TELEPHONE_M1,
            "nouvelle_valeur": TELEPHONE_M2,
        }
    ]


@pytest.mark.parametrize(
    "statut", [StatutModification.RENONCEE, StatutModification.EXPIREE, StatutModification.RETIREE]
)
async def test_une_modification_close_sans_changement_n_en_montre_aucun(
    factory: SessionFactory,
    stockage: Stockage,
    demande: Demande,
    echeances: Echeances,
    statut: StatutModification,
) -> None:
    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(echeances))
        await svc.mettre_a_jour_brouillon(
            session, "FINMSS009266M1", {"contact_support_telephone": TELEPHONE_M1}
        )
        await svc.cloturer_sans_modifier(
            session, stockage, "FINMSS009266M1", statut, echeances[0] + timedelta(days=1), "close"
        )
    assert await _vue(factory, "FINMSS009266M1") == []
