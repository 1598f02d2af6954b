"""Rendering of the automatic e-mails (subject, text, HTML) of the modification cycle, in French."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from babel.numbers import format_currency
from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup, escape

from modif_solde.formats import format_date_fr, format_date_heure_fr
from modif_solde.models.enums import TypeCourriel

LOCALE = "fr_FR"
# The `courriel.sujet` column holds 300 characters; a long company name must not break the log.
SUJET_LONGUEUR_MAX = 300

LIBELLES_CHAMPS: dict[str, str] = {
    "contact_support_nom": "Nom du contact support de l'opérateur",
    "contact_support_telephone": "Numéro de téléphone du contact support de l'opérateur",
    "contact_support_courriel": "Adresse mail du contact support de l'opérateur",
    "site_documentation_url": (
        "Lien vers le site web mettant à disposition la documentation pour les clients et éditeurs"
    ),
    "pieces": "Pièces justificatives (ajout)",
}


@dataclass(frozen=True)
class ContexteCourriel:
    demande_numero: str
    modification_numero: str
    denomination: str
    siret: str
    commentaire: str
    champs_attendus: list[str]
    ouverte_le: datetime
    relance_le: datetime
    expire_le: datetime
    lien: str
    changements: list[dict[str, Any]] = field(default_factory=list)
    pieces_ajoutees: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CourrielRendu:
    sujet: str
    texte: str
    html: str


def format_montant_fr(centimes: int) -> str:
    # Decimal keeps the cents exact, where a float division could round 0.005 the wrong way.
    return format_currency(Decimal(centimes).scaleb(-2), "EUR", locale=LOCALE)


def libelle_champ(champ: str) -> str:
    return LIBELLES_CHAMPS.get(champ, champ)


def valeur_ou_vide(valeur: str | None) -> str:
    return "(non renseigné)" if valeur is None or valeur == "" else valeur


def sauts_de_ligne(texte: str) -> Markup:
    """Escape a free text and keep its line breaks as <br> in HTML."""
    return Markup("<br>\n").join(escape(ligne) for ligne in texte.splitlines())


environnement = Environment(
    loader=PackageLoader("modif_solde", "email_templates"),
    undefined=StrictUndefined,
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
environnement.filters.update(
    date_fr=format_date_fr,
    date_heure_fr=format_date_heure_fr,
    montant_fr=format_montant_fr,
    libelle_champ=libelle_champ,
    valeur_ou_vide=valeur_ou_vide,
    sauts_de_ligne=sauts_de_ligne,
)

# Subjects are short Jinja strings (no autoescape: a header is plain text), kept here so that
# every type visibly has one; `_sujet` then folds any line break a company name could carry.
_SUJETS: dict[TypeCourriel, str] = {
    TypeCourriel.INVITATION: (
        "Demande de solde {{ demande_numero }} : modification à apporter ({{ modification_numero }})"
    ),
    TypeCourriel.RELANCE: (
        "Relance : modification {{ modification_numero }} de votre demande de solde {{ demande_numero }}"
        " à apporter avant le {{ expire_le | date_fr }}"
    ),
    TypeCourriel.EXPIRATION: (
        "Modification {{ modification_numero }} expirée : votre demande de solde {{ demande_numero }}"
        " repasse « en cours »"
    ),
    TypeCourriel.CONFIRMATION: (
        "Modification {{ modification_numero }} reçue : votre demande de solde {{ demande_numero }}"
        " repasse « en cours »"
    ),
    TypeCourriel.CONFIRMATION_GESTIONNAIRES: (
        "Modification {{ modification_numero }} confirmée par {{ denomination }} ({{ siret }})"
    ),
    TypeCourriel.RENONCIATION: (
        "Modification {{ modification_numero }} : renonciation enregistrée, votre demande de solde"
        " {{ demande_numero }} repasse « en cours »"
    ),
    TypeCourriel.RETRAIT: (
        "Modification {{ modification_numero }} retirée : votre demande de solde {{ demande_numero }}"
        " repasse « en cours »"
    ),
    TypeCourriel.PROLONGATION: (
        "Modification {{ modification_numero }} : délai prolongé jusqu'au {{ expire_le | date_fr }}"
    ),
}
_modeles_sujets: dict[TypeCourriel, Template] = {
    type_courriel: environnement.from_string(source) for type_courriel, source in _SUJETS.items()
}


def _sujet(type_courriel: TypeCourriel, variables: dict[str, Any]) -> str:
    # Collapsing all whitespace removes CR/LF, which would otherwise inject mail headers.
    sujet = " ".join(_modeles_sujets[type_courriel].render(variables).split())
    if len(sujet) > SUJET_LONGUEUR_MAX:
        sujet = sujet[: SUJET_LONGUEUR_MAX - 1].rstrip() + "…"
    return sujet


def rendre_courriel(type_courriel: TypeCourriel, contexte: ContexteCourriel) -> CourrielRendu:
    type_courriel = TypeCourriel(type_courriel)
    variables: dict[str, Any] = {f.name: getattr(contexte, f.name) for f in fields(contexte)}
    sujet = _sujet(type_courriel, variables)
    variables["sujet"] = sujet
    texte = environnement.get_template(f"{type_courriel.value}.txt.j2").render(variables)
    html = environnement.get_template(f"{type_courriel.value}.html.j2").render(variables)
    return CourrielRendu(sujet=sujet, texte=texte, html=html)
