"""French phone numbers as people type them, metropolitan and overseas, in one stored form.

Each number below is valid in phonenumbers' metadata for its territory. The stored form:
`0X XX XX XX XX` for every number of the ten-digit plan (metropolitan France and the overseas
departments and collectivities that share it), the national form for Saint-Pierre-et-Miquelon,
the international form for the Pacific collectivities (they have no trunk prefix).
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from modif_solde.models.regles import Telephone


class _Modele(BaseModel):
    telephone: Telephone


def _normalise(valeur: str) -> str:
    return _Modele(telephone=valeur).telephone


# (territory, as typed in national form, as typed in international form, stored form)
NUMEROS = [
    ("métropole fixe", "01 23 45 67 89", "+33 1 23 45 67 89", "01 23 45 67 89"),
    ("métropole mobile", "06 12 34 56 78", "+33 6 12 34 56 78", "06 12 34 56 78"),
    ("Réunion fixe", "0262 16 12 34", "+262 262 16 12 34", "02 62 16 12 34"),
    ("Réunion mobile", "0692 12 34 56", "+262 692 12 34 56", "06 92 12 34 56"),
    ("Mayotte fixe", "0269 60 12 34", "+262 269 60 12 34", "02 69 60 12 34"),
    ("Mayotte mobile", "0639 01 23 45", "+262 639 01 23 45", "06 39 01 23 45"),
    ("Guadeloupe fixe", "0590 20 12 34", "+590 590 20 12 34", "05 90 20 12 34"),
    ("Guadeloupe mobile", "0690 00 12 34", "+590 690 00 12 34", "06 90 00 12 34"),
    ("Martinique fixe", "0596 30 12 34", "+596 596 30 12 34", "05 96 30 12 34"),
    ("Martinique mobile", "0696 20 12 34", "+596 696 20 12 34", "06 96 20 12 34"),
    ("Guyane fixe", "0594 10 12 34", "+594 594 10 12 34", "05 94 10 12 34"),
    ("Guyane mobile", "0694 20 12 34", "+594 694 20 12 34", "06 94 20 12 34"),
    ("Saint-Barthélemy fixe", "0590 27 12 34", "+590 590 27 12 34", "05 90 27 12 34"),
    ("Saint-Martin fixe", "0590 43 12 34", "+590 590 43 12 34", "05 90 43 12 34"),
    ("Saint-Pierre-et-Miquelon fixe", "041 12 34", "+508 41 12 34", "041 12 34"),
    ("Saint-Pierre-et-Miquelon mobile", "055 12 34", "+508 55 12 34", "055 12 34"),
]


@pytest.mark.parametrize(
    ("territoire", "national", "international", "stocke"), NUMEROS, ids=[n[0] for n in NUMEROS]
)
def test_chaque_territoire_sous_ses_formes_usuelles(
    territoire: str, national: str, international: str, stocke: str
) -> None:
    formes = {
        national,
        national.replace(" ", ""),
        international,
        international.replace(" ", ""),
        "00" + international.removeprefix("+").replace(" ", ""),
        national.replace(" ", "."),
    }
    assert {forme: _normalise(forme) for forme in formes} == dict.fromkeys(formes, stocke)


@pytest.mark.parametrize(
    ("international", "stocke"),
    [
        ("+687 20 12 34", "+687 20.12.34"),  # Nouvelle-Calédonie (its own separator)
        ("+689 40 41 23 45", "+689 40 41 23 45"),  # Polynésie française
        ("+681 72 12 34", "+681 72 12 34"),  # Wallis-et-Futuna
    ],
)
def test_le_pacifique_en_forme_internationale(international: str, stocke: str) -> None:
    assert _normalise(international) == stocke
    assert _normalise(international.replace(" ", "")) == stocke


@pytest.mark.parametrize(
    "valeur",
    [
        "0262 00 00 0",  # one digit short
        "0692 12 34 567",  # one digit too many
        "+262 162 40 12 34",  # not a Réunion number
        "+32 2 123 45 67",  # Belgium
        "+1 202 555 0143",  # United States
        "09 99 99 99 999",
    ],
)
def test_les_autres_restent_refuses(valeur: str) -> None:
    with pytest.raises(ValidationError):
        _normalise(valeur)
