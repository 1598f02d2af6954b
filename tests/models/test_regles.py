"""Every rule shared by import and draft: valid and invalid values, the seed's own included."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from modif_solde.models.regles import (
    Bic,
    Courriel,
    Iban,
    Montant,
    NombreBal,
    NomContactOptionnel,
    Siret,
    Telephone,
    UrlWeb,
    erreurs_en_francais,
)
from modif_solde.models.schemas import DemandeImport, InformationsEditables


class _Un(BaseModel):
    telephone: Telephone | None = None
    courriel: Courriel | None = None
    url: UrlWeb | None = None
    siret: Siret | None = None
    iban: Iban | None = None
    bic: Bic | None = None
    montant: Montant | None = None
    bal: NombreBal | None = None
    nom: NomContactOptionnel = None


def valider(champ: str, valeur: Any) -> Any:
    return getattr(_Un.model_validate({champ: valeur}), champ)


def refus(champ: str, valeur: Any) -> str:
    with pytest.raises(ValidationError) as exc:
        _Un.model_validate({champ: valeur})
    erreurs = erreurs_en_francais(exc.value)
    assert [e["champ"] for e in erreurs] == [champ]
    return erreurs[0]["message"]


@pytest.mark.parametrize(
    ("champ", "valeur", "attendu"),
    [
        ("telephone", "0600000000", "06 00 00 00 00"),
        ("telephone", "06 00 00 00 00", "06 00 00 00 00"),
        ("telephone", "+33 6 00 00 00 00", "06 00 00 00 00"),
        ("telephone", "01.23.45.67.89", "01 23 45 67 89"),
        ("telephone", "+262 692 12 34 56", "06 92 12 34 56"),
        ("courriel", "mail@contact-support.fr", "mail@contact-support.fr"),
        ("courriel", "  Prenom.Nom@Exemple.FR ", "Prenom.Nom@exemple.fr"),
        ("url", "https://lien_site_web.fr", "https://lien_site_web.fr"),
        ("url", "http://docs.exemple.fr/api?v=2", "http://docs.exemple.fr/api?v=2"),
        ("siret", "50961588600025", "50961588600025"),
        ("siret", "73282932000074", "73282932000074"),
        ("iban", "FR7630006000011234567890189", "FR7630006000011234567890189"),
        ("iban", "FR76 3000 6000 0112 3456 7890 189", "FR7630006000011234567890189"),
        ("bic", "AGRIFRPPXXX", "AGRIFRPPXXX"),
        ("bic", "AGRIFRPP", "AGRIFRPP"),
        ("montant", "6666.67", "6666.67"),
        ("montant", "0", "0.00"),
        ("montant", "58588.3", "58588.30"),
        ("bal", 1000, 1000),
        ("bal", 0, 0),
        ("nom", "NOM Prénom", "NOM Prénom"),
        ("nom", "", None),
    ],
)
def test_valeurs_valides(champ: str, valeur: Any, attendu: Any) -> None:
    assert str(valider(champ, valeur)) == str(attendu)


@pytest.mark.parametrize(
    ("champ", "valeur", "extrait"),
    [
        ("telephone", "12", "numéro de téléphone valide"),
        ("telephone", "06000000", "numéro de téléphone valide"),
        ("telephone", "+44 20 7946 0958", "français"),
        ("telephone", "06 00 00 00 00\r\nBcc: x@y.fr", "caractère de contrôle"),
        ("telephone", 600000000, "chaîne de caractères"),
        ("courriel", "pas-une-adresse", "adresse électronique"),
        ("courriel", "a@b", "adresse électronique"),
        ("courriel", "x@exemple.fr\nBcc: y@z.fr", "caractère de contrôle"),
        ("url", "ftp://exemple.fr", "adresse web"),
        ("url", "javascript:alert(1)", "adresse web"),
        ("url", "https://", "adresse web"),
        ("url", "lien_site_web.fr", "adresse web"),
        ("url", "https://exemple.fr/a b", "adresse web"),
        ("siret", "50961588600026", "SIRET"),
        ("siret", "5096158860002", "SIRET"),
        ("siret", "ABCDEFGHIJKLMN", "SIRET"),
        ("iban", "FR7630006000011234567890188", "IBAN"),
        ("iban", "XX00", "IBAN"),
        ("bic", "AGRI", "BIC"),
        ("bic", "AGRIZZPPXXX", "BIC"),
        ("montant", "-1.00", "montant"),
        ("montant", "1.234", "montant"),
        ("montant", "1,50", "montant"),
        ("montant", 6666.67, "montant"),
        ("montant", "999999999.99", "montant maximal"),
        ("bal", -1, "supérieur ou égal à 0"),
        ("bal", "10", "nombre entier"),
        ("bal", 1.5, "nombre entier"),
        ("bal", True, "nombre entier"),
        ("bal", 10_000_001, "inférieur ou égal"),
        ("nom", "x" * 201, "200 caractères"),
        ("nom", "NOM\tPrénom", "caractère de contrôle"),
        ("nom", "NOM\u2028Prénom", "caractère de contrôle"),
    ],
)
def test_valeurs_refusees(champ: str, valeur: Any, extrait: str) -> None:
    message = refus(champ, valeur)
    assert extrait in message
    assert message.startswith(f"Le champ « {champ} »")


def test_l_exemple_du_portail_est_valide(seed: dict[str, Any]) -> None:
    demande = DemandeImport.model_validate(seed)
    assert demande.informations.site_documentation_url == "https://lien_site_web.fr"
    assert demande.informations.contact_support_telephone == "06 00 00 00 00"
    assert str(demande.montants.solde) == "58588.30"


def test_solde_egal_engagement_moins_avance_au_centime(donnees: dict[str, Any]) -> None:
    donnees["montants"]["solde"] = "58588.31"
    with pytest.raises(ValidationError) as exc:
        DemandeImport.model_validate(donnees)
    assert erreurs_en_francais(exc.value) == [
        {
            "champ": "montants.solde",
            "message": "Le champ « montants.solde » doit être égal à engagement_solde − avance (58588.30).",
        }
    ]


def test_toutes_les_regles_cassees_sont_rapportees_ensemble(donnees: dict[str, Any]) -> None:
    donnees["informations"]["contact_support_telephone"] = "12"
    donnees["informations"]["contact_support_courriel"] = "non"
    donnees["operateur"]["siret"] = "50961588600026"
    donnees["coordonnees_bancaires"]["iban"] = "FR00"
    donnees["bal"]["applicatives"] = -3
    del donnees["dsr"]
    with pytest.raises(ValidationError) as exc:
        DemandeImport.model_validate(donnees)
    champs = {e["champ"] for e in erreurs_en_francais(exc.value)}
    assert champs == {
        "informations.contact_support_telephone",
        "informations.contact_support_courriel",
        "operateur.siret",
        "coordonnees_bancaires.iban",
        "bal.applicatives",
        "dsr",
    }


def test_le_brouillon_suit_les_memes_regles_que_l_import(seed: dict[str, Any]) -> None:
    informations = InformationsEditables.model_validate(seed["informations"])
    assert informations.model_dump() == DemandeImport.model_validate(seed).informations.model_dump()
    with pytest.raises(ValidationError) as exc:
        InformationsEditables.model_validate({**seed["informations"], "contact_support_telephone": None})
    assert (
        erreurs_en_francais(exc.value, prefixe="informations")[0]["champ"]
        == "informations.contact_support_telephone"
    )
