"""Each steering figure against the hand-built set (tests/pilotage/jeu.py), on both databases;
and each figure's condition selects, in the work queue, the requests it counts."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.services import lecture, pilotage
from modif_solde.services.erreurs import DonneesInvalides
from tests.pilotage import jeu


@pytest.fixture
async def chiffres(factory: SessionFactory, demande: Demande) -> pilotage.Pilotage:
    await jeu.construire(factory, demande)
    async with unit_of_work(factory) as session:
        return await pilotage.lire_pilotage(session, jeu.MARS)


async def test_ouvertes_et_closes_par_issue_dans_la_periode(chiffres: pilotage.Pilotage) -> None:
    # Opened in March: the four of FINMSS009266M2..M4 and FINMSS009300M2..M4 (M2 at its first
    # instant), not M1 of FINMSS009300 (a minute before).
    assert chiffres.ouvertes == 6
    assert chiffres.cloturees.model_dump() == {"confirmees": 2, "renoncees": 2, "retirees": 1, "expirees": 1}


async def test_delai_de_reponse_mediane_et_neuvieme_decile(chiffres: pilotage.Pilotage) -> None:
    # Answers of March: 5, 12, 1 and 19 days; continuous percentiles over [1, 5, 12, 19].
    assert chiffres.delai_reponse.model_dump() == {
        "reponses": 4,
        "mediane_jours": 8.5,
        "decile_9_jours": 16.9,
    }


async def test_reponses_avant_et_apres_la_relance(chiffres: pilotage.Pilotage) -> None:
    assert chiffres.relance.model_dump() == {
        "avant_relance": 2,
        "apres_relance": 2,
        "part_apres_relance": 50.0,
    }


async def test_courriels_en_echec_par_type(chiffres: pilotage.Pilotage) -> None:
    assert [(c.type.value, c.nombre) for c in chiffres.courriels_en_echec] == [
        ("invitation", 1),
        ("relance", 1),
    ]


async def test_ouvertes_maintenant_par_jours_restants(chiffres: pilotage.Pilotage) -> None:
    assert [(t.libelle, t.nombre) for t in chiffres.ouvertes_maintenant] == [
        ("Échéance dépassée", 1),
        ("0 à 2 jours", 1),
        ("3 à 5 jours", 0),
        ("6 à 10 jours", 0),
        ("11 à 20 jours", 1),
        ("Plus de 20 jours", 0),
    ]


async def test_une_periode_vide_n_a_ni_mediane_ni_part(factory: SessionFactory, demande: Demande) -> None:
    await jeu.construire(factory, demande)
    async with unit_of_work(factory) as session:
        vide = await pilotage.lire_pilotage(session, pilotage.Periode(date(2025, 1, 1), date(2025, 1, 31)))
    assert vide.ouvertes == 0 and vide.delai_reponse.mediane_jours is None
    assert vide.relance.part_apres_relance is None and vide.courriels_en_echec == []


async def test_une_mediane_sur_un_nombre_impair_de_reponses(
    factory: SessionFactory, demande: Demande
) -> None:
    """Three answers from 2 to 17 March: 5, 12 and 1 days (FINMSS009300's at the 31st excluded)."""
    await jeu.construire(factory, demande)
    async with unit_of_work(factory) as session:
        p = await pilotage.lire_pilotage(session, pilotage.Periode(date(2026, 3, 2), date(2026, 3, 30)))
    assert p.delai_reponse.model_dump() == {"reponses": 3, "mediane_jours": 5.0, "decile_9_jours": 10.6}


@pytest.mark.parametrize(
    ("filtres", "attendues"),
    [
        ({"tour": "ouverte"}, {"FINMSS009266", "FINMSS009300"}),
        ({"tour": "confirmee"}, {"FINMSS009266"}),
        ({"tour": "renoncee"}, {"FINMSS009266", "FINMSS009300"}),
        ({"tour": "retiree"}, {"FINMSS009300"}),
        ({"tour": "expiree"}, {"FINMSS009300"}),
        ({"tour": "apres_relance"}, {"FINMSS009266", "FINMSS009300"}),
        ({"tour": "avant_relance"}, {"FINMSS009266"}),
        ({"courriel_echec": "relance"}, {"FINMSS009266"}),
        ({"courriel_echec": "invitation"}, {"FINMSS009266"}),
    ],
)
async def test_la_file_filtree_comme_un_chiffre_donne_ses_demandes(
    factory: SessionFactory, demande: Demande, filtres: dict[str, str], attendues: set[str]
) -> None:
    await jeu.construire(factory, demande)
    async with unit_of_work(factory) as session:
        liste = await lecture.file_de_travail(
            session,
            lecture.FiltresFile(**filtres, periode=jeu.MARS),
            50,
            0,  # type: ignore[arg-type]
        )
    assert {d.numero for d in liste.demandes} == attendues


async def test_la_file_filtree_par_tranche_donne_les_ouvertes_de_la_tranche(
    factory: SessionFactory, demande: Demande
) -> None:
    await jeu.construire(factory, demande)
    jour = pilotage.aujourd_hui()
    trouvees = []
    for tranche in pilotage.TRANCHES:
        apres, avant = tranche.bornes(jour)
        async with unit_of_work(factory) as session:
            liste = await lecture.file_de_travail(
                session, lecture.FiltresFile(echeance_apres=apres, echeance_avant=avant), 50, 0
            )
        trouvees.append(sorted(d.numero for d in liste.demandes))
    assert trouvees == [["FINMSS009301"], ["FINMSS009302"], [], [], ["FINMSS009303"], []]


@pytest.mark.parametrize(
    ("du", "au", "champ"),
    [("2026-13-01", None, "du"), ("2026-03-10", "2026-03-01", "au"), ("2025-01-01", "2026-12-31", "au")],
)
def test_une_periode_invalide_est_refusee_en_nommant_le_champ(du: str, au: str | None, champ: str) -> None:
    with pytest.raises(DonneesInvalides) as refus:
        pilotage.lire_periode(du, au)
    assert [e["champ"] for e in refus.value.erreurs] == [champ]


def test_la_periode_par_defaut_est_le_mois_en_cours() -> None:
    p = pilotage.lire_periode(None, "")
    jour = pilotage.aujourd_hui()
    assert p.du == jour.replace(day=1) and p.au.month == jour.month and (p.au.replace(day=1) - p.du).days == 0
    assert isinstance(p.debut, datetime)


def test_une_seule_borne_donne_le_reste_de_son_mois() -> None:
    assert pilotage.lire_periode(None, "2026-03-31") == pilotage.Periode(date(2026, 3, 1), date(2026, 3, 31))
    assert pilotage.lire_periode("2026-02-10", None) == pilotage.Periode(date(2026, 2, 10), date(2026, 2, 28))
