"""The automatic e-mails: every type renders, in French, with Paris dates, escaped HTML and safe subjects."""

from __future__ import annotations

import dataclasses
import html
import re
from datetime import UTC, datetime

import pytest

from modif_solde.models.enums import TypeCourriel
from modif_solde.services.courriels import (
    LIBELLES_CHAMPS,
    ContexteCourriel,
    format_date_fr,
    format_date_heure_fr,
    format_montant_fr,
    rendre_courriel,
)

LIEN = "https://portail.example/demandes/FINMSS009266"
COMMENTAIRE = (
    "Le numéro de téléphone du contact support ne correspond pas à la pièce jointe.\nMerci de le corriger."
)
# 22:30 UTC on 25/06 is 00:30 on 26/06 in Paris (summer time): the Paris date is the one to show.
EXPIRE_LE = datetime(2023, 6, 25, 22, 30, tzinfo=UTC)


def normaliser_espaces(texte: str) -> str:
    return texte.replace("\u202f", " ").replace("\u00a0", " ")


def texte_visible(corps_html: str) -> str:
    """What a reader sees of the HTML: tags dropped, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", corps_html)).split())


@pytest.fixture
def contexte() -> ContexteCourriel:
    return ContexteCourriel(
        demande_numero="FINMSS009266",
        modification_numero="FINMSS009266M1",
        denomination="SCI VOITURE",
        siret="50961588600025",
        commentaire=COMMENTAIRE,
        champs_attendus=["contact_support_telephone", "site_documentation_url", "pieces"],
        ouverte_le=datetime(2023, 6, 5, 22, 30, tzinfo=UTC),
        relance_le=datetime(2023, 6, 15, 22, 30, tzinfo=UTC),
        expire_le=EXPIRE_LE,
        lien=LIEN,
        changements=[
            {
                "champ": "contact_support_telephone",
                "valeur_actuelle": "0600000000",
                "nouvelle_valeur": "06 11 22 33 44",
            },
            {"champ": "contact_support_nom", "valeur_actuelle": None, "nouvelle_valeur": "NOM Prénom"},
        ],
        pieces_ajoutees=[{"type": "AUTRE_S_FINMSS009266", "nom_fichier": "attestation-telephone.pdf"}],
    )


@pytest.mark.parametrize("type_courriel", list(TypeCourriel))
def test_chaque_type_se_rend_en_texte_et_html(
    type_courriel: TypeCourriel, contexte: ContexteCourriel
) -> None:
    rendu = rendre_courriel(type_courriel, contexte)

    assert "FINMSS009266M1" in rendu.sujet
    assert "\r" not in rendu.sujet and "\n" not in rendu.sujet
    for corps in (rendu.texte, rendu.html):
        assert "FINMSS009266M1" in corps
        assert "FINMSS009266" in corps
        assert "SCI VOITURE" in corps
        assert LIEN in corps
    assert rendu.html.startswith("<!DOCTYPE html>")
    assert '<html lang="fr">' in rendu.html
    # No external resource: a mail client would block it, and it would leak the reading.
    assert "src=" not in rendu.html and "<link" not in rendu.html and "url(" not in rendu.html
    assert "<" not in rendu.texte


def test_invitation_contient_commentaire_champs_echeance_et_suite(contexte: ContexteCourriel) -> None:
    rendu = rendre_courriel(TypeCourriel.INVITATION, contexte)

    for corps in (rendu.texte, texte_visible(rendu.html)):
        assert "26/06/2023 à 00:30" in corps
        assert "25/06/2023" not in corps
        assert "J+10" in corps and "courriel de relance" in corps and "16/06/2023" in corps
        assert "J+20" in corps and "en l'état, au risque d'être rejetée" in corps
        assert "Assistance utilisateur" in corps
        assert LIEN in corps
    assert COMMENTAIRE in rendu.texte
    assert "Le numéro de téléphone du contact support ne correspond pas à la pièce jointe.<br>" in rendu.html
    for champ in contexte.champs_attendus:
        assert LIBELLES_CHAMPS[champ] in rendu.texte
        assert LIBELLES_CHAMPS[champ] in texte_visible(rendu.html)
    assert f'href="{LIEN}"' in rendu.html


def test_html_echappe_le_commentaire_et_le_texte_le_garde_tel_quel(contexte: ContexteCourriel) -> None:
    hostile = dataclasses.replace(contexte, commentaire="<script>alert(1)</script>\nDeuxième ligne")

    for type_courriel in (TypeCourriel.INVITATION, TypeCourriel.RELANCE, TypeCourriel.PROLONGATION):
        rendu = rendre_courriel(type_courriel, hostile)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;<br>" in rendu.html
        assert "<script>" not in rendu.html
        assert "<script>alert(1)</script>\nDeuxième ligne" in rendu.texte


def test_html_echappe_toutes_les_donnees_de_l_operateur(contexte: ContexteCourriel) -> None:
    hostile = dataclasses.replace(
        contexte,
        denomination="<b>SCI</b> VOITURE & Cie",
        changements=[{"champ": "contact_support_nom", "valeur_actuelle": None, "nouvelle_valeur": "<img>"}],
        pieces_ajoutees=[{"type": "AUTRE_S", "nom_fichier": "<i>x</i>.pdf"}],
    )

    for type_courriel in TypeCourriel:
        rendu = rendre_courriel(type_courriel, hostile)
        assert "&lt;b&gt;SCI&lt;/b&gt; VOITURE &amp; Cie" in rendu.html
        assert "<b>" not in rendu.html and "<img>" not in rendu.html and "<i>" not in rendu.html
        assert "<b>SCI</b> VOITURE & Cie" in rendu.texte
    assert "&lt;img&gt;" in rendre_courriel(TypeCourriel.CONFIRMATION, hostile).html


def test_le_sujet_ne_porte_jamais_de_saut_de_ligne(contexte: ContexteCourriel) -> None:
    injecte = dataclasses.replace(contexte, denomination="SCI VOITURE\r\nBcc: victime@example.org")

    for type_courriel in TypeCourriel:
        sujet = rendre_courriel(type_courriel, injecte).sujet
        assert "\r" not in sujet and "\n" not in sujet
        assert sujet == sujet.strip() and "  " not in sujet
    assert "SCI VOITURE Bcc:" in rendre_courriel(TypeCourriel.CONFIRMATION_GESTIONNAIRES, injecte).sujet


def test_le_sujet_reste_dans_la_colonne(contexte: ContexteCourriel) -> None:
    long = dataclasses.replace(contexte, denomination="X" * 500)

    sujet = rendre_courriel(TypeCourriel.CONFIRMATION_GESTIONNAIRES, long).sujet

    assert len(sujet) <= 300
    assert sujet.startswith("Modification FINMSS009266M1")


def test_confirmation_liste_changements_et_pieces(contexte: ContexteCourriel) -> None:
    for type_courriel in (TypeCourriel.CONFIRMATION, TypeCourriel.CONFIRMATION_GESTIONNAIRES):
        rendu = rendre_courriel(type_courriel, contexte)
        assert (
            "Numéro de téléphone du contact support de l'opérateur : 0600000000 → 06 11 22 33 44"
            in rendu.texte
        )
        assert "Nom du contact support de l'opérateur : (non renseigné) → NOM Prénom" in rendu.texte
        assert "attestation-telephone.pdf (type : AUTRE_S_FINMSS009266)" in rendu.texte
        visible = texte_visible(rendu.html)
        assert "Numéro de téléphone du contact support de l'opérateur 0600000000 06 11 22 33 44" in visible
        assert "attestation-telephone.pdf (type : AUTRE_S_FINMSS009266)" in visible
        assert "en cours" in rendu.texte


def test_confirmation_gestionnaires_nomme_l_operateur(contexte: ContexteCourriel) -> None:
    rendu = rendre_courriel(TypeCourriel.CONFIRMATION_GESTIONNAIRES, contexte)

    assert "SCI VOITURE" in rendu.sujet and "50961588600025" in rendu.sujet
    assert "L'opérateur SCI VOITURE (SIRET 50961588600025) a confirmé" in rendu.texte
    assert rendu.texte.startswith("Bonjour,")


def test_confirmation_sans_changement_ni_piece(contexte: ContexteCourriel) -> None:
    vide = dataclasses.replace(contexte, changements=[], pieces_ajoutees=[])

    rendu = rendre_courriel(TypeCourriel.CONFIRMATION, vide)

    assert "Aucune donnée modifiée." in rendu.texte and "Aucune donnée modifiée." in texte_visible(rendu.html)
    assert "Aucune pièce justificative ajoutée." in rendu.texte


@pytest.mark.parametrize(
    ("type_courriel", "attendu"),
    [
        (TypeCourriel.RELANCE, "aucune modification n'a été confirmée"),
        (TypeCourriel.EXPIRATION, "a expiré le 26/06/2023 à 00:30"),
        (TypeCourriel.RENONCIATION, "Vous avez choisi de ne pas modifier"),
        (TypeCourriel.RETRAIT, "Vous n'avez aucune action à effectuer"),
        (TypeCourriel.PROLONGATION, "est prolongé jusqu'au 26/06/2023 à 00:30"),
    ],
)
def test_message_propre_a_chaque_type(
    type_courriel: TypeCourriel, attendu: str, contexte: ContexteCourriel
) -> None:
    rendu = rendre_courriel(type_courriel, contexte)

    assert attendu in rendu.texte
    assert attendu in texte_visible(rendu.html)
    assert "« en cours »" in rendu.texte


def test_relance_et_prolongation_rappellent_les_champs_et_le_commentaire(contexte: ContexteCourriel) -> None:
    for type_courriel in (TypeCourriel.RELANCE, TypeCourriel.PROLONGATION):
        rendu = rendre_courriel(type_courriel, contexte)
        assert COMMENTAIRE in rendu.texte
        for champ in contexte.champs_attendus:
            assert LIBELLES_CHAMPS[champ] in rendu.texte


def test_prolongation_annonce_la_nouvelle_date(contexte: ContexteCourriel) -> None:
    prolongee = dataclasses.replace(contexte, expire_le=datetime(2023, 7, 10, 23, 15, tzinfo=UTC))

    rendu = rendre_courriel(TypeCourriel.PROLONGATION, prolongee)

    assert "11/07/2023" in rendu.sujet
    assert "11/07/2023 à 01:15" in rendu.texte and "11/07/2023 à 01:15" in texte_visible(rendu.html)


def test_dates_en_heure_de_paris() -> None:
    assert format_date_fr(EXPIRE_LE) == "26/06/2023"
    assert format_date_heure_fr(EXPIRE_LE) == "26/06/2023 à 00:30"
    # Winter time: UTC+1.
    assert format_date_heure_fr(datetime(2023, 12, 31, 23, 5, tzinfo=UTC)) == "01/01/2024 à 00:05"
    with pytest.raises(ValueError, match="fuseau"):
        format_date_fr(datetime(2023, 6, 5, 12, 0))


def test_montant_en_euros_a_la_francaise() -> None:
    montant = format_montant_fr(6525497)

    assert montant == "65\u202f254,97\u00a0€"
    assert normaliser_espaces(montant) == "65 254,97 €"
    assert normaliser_espaces(format_montant_fr(666667)) == "6 666,67 €"
    assert normaliser_espaces(format_montant_fr(5)) == "0,05 €"
