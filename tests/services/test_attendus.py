"""The expected items of a round (champs attendus), ticked as the operator works: a field when
the draft changes it, « pieces » when a document is added in this round; and the J+10
reminder's content, which recalls only what is still expected."""

from __future__ import annotations

import pytest

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import TypeCourriel
from modif_solde.models.tables import Demande, Modification
from modif_solde.services import attendus, envoi
from modif_solde.services import modifications as svc
from modif_solde.services.attendus import ElementAttendu
from modif_solde.services.courriels import rendre_courriel
from modif_solde.services.stockage import Stockage
from tests.services.test_modifications import Echeances, flux, ouverture

NUMERO = "FINMSS009266M1"


@pytest.fixture
async def ouverte(factory: SessionFactory, demande: Demande, echeances: Echeances) -> Modification:
    """M1 open, expecting the phone and a document."""
    async with unit_of_work(factory) as session:
        return await svc.ouvrir(session, ouverture(echeances))


async def etat(factory: SessionFactory) -> list[ElementAttendu]:
    async with factory() as session:
        return await attendus.etat_modification(session, await svc.charger_modification(session, NUMERO))


async def relance(factory: SessionFactory) -> str:
    async with factory() as session:
        modification = await svc.charger_modification(session, NUMERO)
        contexte = await envoi.contexte(
            session, modification, "https://portail.example", TypeCourriel.RELANCE
        )
    return rendre_courriel(TypeCourriel.RELANCE, contexte).texte


async def test_each_expected_item_is_done_when_the_round_changes_it(
    factory: SessionFactory, ouverte: Modification, stockage: Stockage, pdf: bytes
) -> None:
    assert await etat(factory) == [
        ElementAttendu("contact_support_telephone", fait=False),
        ElementAttendu("pieces", fait=False),
    ]
    texte = await relance(factory)
    assert "- Numéro de téléphone du contact support de l'opérateur" in texte
    assert "- Pièces justificatives (ajout)" in texte

    # A field another than the expected one changes nothing to the list.
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(session, NUMERO, {"contact_support_nom": "Autre Nom"})
    assert [e.fait for e in await etat(factory)] == [False, False]

    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(session, NUMERO, {"contact_support_telephone": "02 62 40 12 34"})
    assert await etat(factory) == [
        ElementAttendu("contact_support_telephone", fait=True),
        ElementAttendu("pieces", fait=False),
    ]
    texte = await relance(factory)
    assert "Numéro de téléphone du contact support" not in texte
    assert "- Pièces justificatives (ajout)" in texte

    # Set back to the request's value: the draft no longer changes it, so it is to do again.
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(session, NUMERO, {"contact_support_telephone": "06 00 00 00 00"})
    assert [e.fait for e in await etat(factory)] == [False, False]
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(session, NUMERO, {"contact_support_telephone": "02 62 40 12 34"})

    async with unit_of_work(factory) as session:
        piece = await svc.ajouter_piece(
            session, stockage, NUMERO, "AUTRE_S", "justif.pdf", flux(pdf), 1024 * 1024
        )
    assert [e.fait for e in await etat(factory)] == [True, True]
    texte = await relance(factory)
    assert "Rappel des données à modifier" not in texte
    assert "ont toutes été modifiées : il vous reste à cliquer sur « Confirmer »" in texte

    # The document deleted again: to do again.
    async with unit_of_work(factory) as session:
        await svc.supprimer_piece(session, stockage, NUMERO, piece.id)
    assert [e.fait for e in await etat(factory)] == [True, False]


def test_the_state_keeps_the_gestionnaire_s_order() -> None:
    elements = attendus.etat(
        ["pieces", "site_documentation_url", "contact_support_courriel"], ["contact_support_courriel"], 0
    )
    assert [(e.champ, e.fait) for e in elements] == [
        ("pieces", False),
        ("site_documentation_url", False),
        ("contact_support_courriel", True),
    ]
    assert attendus.restants(elements) == ["pieces", "site_documentation_url"]
