"""After `expire_le`, nothing the operator does gets through: draft, documents, confirmation,
renunciation are refused with the date; the expiry and a withdrawal still close the modification."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutModification
from modif_solde.models.tables import Demande, Modification
from modif_solde.models.types import maintenant
from modif_solde.services import modifications as svc
from modif_solde.services.courriels import format_date_heure_fr
from modif_solde.services.erreurs import Conflit
from modif_solde.services.stockage import Stockage

NUMERO = "FINMSS009266M1"


async def flux(contenu: bytes) -> AsyncIterator[bytes]:
    yield contenu


@pytest.fixture
async def echue(factory: SessionFactory, demande: Demande) -> Modification:
    """Modification M1 opened 21 days ago: its deadline passed yesterday, the expiry has not run yet."""
    ouverte_le = maintenant().replace(microsecond=0) - timedelta(days=21)
    async with unit_of_work(factory) as session:
        return await svc.ouvrir(
            session,
            svc.Ouverture(
                demande_numero="FINMSS009266",
                numero=NUMERO,
                commentaire="Le téléphone du contact support ne correspond pas à la pièce jointe.",
                champs=["contact_support_telephone", "pieces"],
                ouverte_par="gestionnaire-1",
                ouverte_le=ouverte_le,
                relance_le=ouverte_le + timedelta(days=10),
                expire_le=ouverte_le + timedelta(days=20),
            ),
        )


def refus_date(echue: Modification) -> str:
    return re.escape(f"le {format_date_heure_fr(echue.expire_le)}")


async def test_apres_l_echeance_le_brouillon_et_les_pieces_sont_refuses(
    factory: SessionFactory, echue: Modification, stockage: Stockage, pdf: bytes
) -> None:
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, NUMERO)
        modification.brouillon = {"contact_support_nom": "Avant"}
        session.add(modification)
    fichiers = sorted(stockage.racine.rglob("*"))
    for action in (
        lambda s: svc.mettre_a_jour_brouillon(s, NUMERO, {"contact_support_nom": "Après"}),
        lambda s: svc.ajouter_piece(s, stockage, NUMERO, "AUTRE_S", "a.pdf", flux(pdf), 1 << 20),
    ):
        with pytest.raises(Conflit, match=refus_date(echue)):
            async with unit_of_work(factory) as session:
                await action(session)
    async with factory() as session:
        apres = await svc.charger_modification(session, NUMERO)
    assert apres.brouillon == {"contact_support_nom": "Avant"}
    assert sorted(stockage.racine.rglob("*")) == fichiers


async def test_apres_l_echeance_une_piece_ajoutee_a_temps_ne_se_supprime_plus(
    factory: SessionFactory, demande: Demande, stockage: Stockage, pdf: bytes
) -> None:
    ouverte_le = maintenant().replace(microsecond=0) - timedelta(days=19)
    async with unit_of_work(factory) as session:
        await svc.ouvrir(
            session,
            svc.Ouverture(
                demande_numero="FINMSS009266",
                numero=NUMERO,
                commentaire="Pièce attendue.",
                champs=["pieces"],
                ouverte_par="gestionnaire-1",
                ouverte_le=ouverte_le,
                relance_le=ouverte_le + timedelta(days=10),
                expire_le=ouverte_le + timedelta(days=20),
            ),
        )
        piece = await svc.ajouter_piece(session, stockage, NUMERO, "AUTRE_S", "a.pdf", flux(pdf), 1 << 20)
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, NUMERO, verrou=True)
        modification.expire_le = maintenant() - timedelta(minutes=1)
        session.add(modification)
    with pytest.raises(Conflit, match="a expiré le"):
        async with unit_of_work(factory) as session:
            await svc.supprimer_piece(session, stockage, NUMERO, piece.id)


async def test_apres_l_echeance_confirmer_et_renoncer_sont_refuses(
    factory: SessionFactory, echue: Modification, stockage: Stockage
) -> None:
    le = echue.expire_le + timedelta(seconds=1)
    with pytest.raises(Conflit, match=refus_date(echue)):
        async with unit_of_work(factory) as session:
            await svc.confirmer(session, NUMERO, le)
    with pytest.raises(Conflit, match=refus_date(echue)):
        async with unit_of_work(factory) as session:
            await svc.cloturer_sans_modifier(
                session, stockage, NUMERO, StatutModification.RENONCEE, le, "Renoncée par l'opérateur"
            )
    async with factory() as session:
        modification = await svc.charger_modification(session, NUMERO)
    assert modification.statut == StatutModification.OUVERTE


@pytest.mark.parametrize("statut", [StatutModification.EXPIREE, StatutModification.RETIREE])
async def test_apres_l_echeance_l_expiration_et_le_retrait_passent(
    factory: SessionFactory, echue: Modification, stockage: Stockage, statut: StatutModification
) -> None:
    le = echue.expire_le + timedelta(hours=1)
    async with unit_of_work(factory) as session:
        cloture = await svc.cloturer_sans_modifier(session, stockage, NUMERO, statut, le, "clôture")
    assert cloture.modification.statut == statut
    async with factory() as session:
        demande = await session.get_one(Demande, cloture.demande.id)
    assert demande.statut == StatutDemande.EN_COURS


async def test_juste_avant_l_echeance_la_confirmation_passe(
    factory: SessionFactory, echue: Modification
) -> None:
    async with unit_of_work(factory) as session:
        cloture = await svc.confirmer(session, NUMERO, echue.expire_le - timedelta(seconds=1))
    assert cloture.modification.statut == StatutModification.CONFIRMEE
