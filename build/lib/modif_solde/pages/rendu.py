"""Rendering of the portal's pages: one Jinja2 environment (autoescape), French formats, labels."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from modif_solde.formats import nombre_fr
from modif_solde.models.regles import (
    COMMENTAIRE_MAX,
    MOTIF_RETRAIT_MAX,
    STATUTS_DEMANDE,
    STATUTS_MODIFICATION,
)
from modif_solde.pages import session as sess
from modif_solde.pages.statiques import url_statique
from modif_solde.services.courriels import (
    LIBELLES_CHAMPS,
    format_date_fr,
    format_date_heure_fr,
)

GABARITS = Path(__file__).parent / "templates"
SERVICE = "Portail Ségur Numérique"

LIBELLES = {**LIBELLES_CHAMPS, "pieces": "Pièces justificatives"}
TYPES_PIECE = {
    "MSS_RESU_TEST_TECH": "Résultat des tests techniques (MSS_RESU_TEST_TECH)",
    "MSS_GUIDE_PDF_API": "Guide PDF de l'API (MSS_GUIDE_PDF_API)",
    "AUTRE_S": "Autre pièce (AUTRE_S)",
}


def _date(valeur: date | datetime | None) -> str:
    if valeur is None:
        return ""
    if isinstance(valeur, datetime):
        return format_date_fr(valeur)
    return valeur.strftime("%d/%m/%Y")


def _date_heure(valeur: datetime | None) -> str:
    return format_date_heure_fr(valeur) if valeur else ""


def _taille(octets: int) -> str:
    if octets < 1024:
        return f"{octets} octets"
    if octets < 1024 * 1024:
        return f"{octets / 1024:.0f} Ko".replace(".", ",")
    return f"{octets / 1024 / 1024:.1f} Mo".replace(".", ",")


def _date_saisie(valeur: Any) -> str:
    """What a date input may show: a real date (yyyy-mm-dd), or nothing — HTML forbids any other
    value there (the error beside the field says what was wrong)."""
    try:
        return date.fromisoformat(str(valeur)).isoformat() if valeur else ""
    except ValueError:
        return ""


environnement = Environment(
    loader=FileSystemLoader(GABARITS),
    autoescape=select_autoescape(["html"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
environnement.filters.update(
    date_fr=_date,
    date_heure_fr=_date_heure,
    statut_demande=lambda s: STATUTS_DEMANDE.get(s, s),
    statut_modification=lambda s: STATUTS_MODIFICATION.get(s, s),
    libelle=lambda c: LIBELLES.get(c, c),
    type_piece=lambda t: TYPES_PIECE.get(t, t),
    taille=_taille,
    nombre_fr=nombre_fr,
    date_saisie=_date_saisie,
)
# The forms' limits are the rules' own (models/regles.py).
environnement.globals.update(
    SERVICE=SERVICE,
    TYPES_PIECE=TYPES_PIECE,
    COMMENTAIRE_MAX=COMMENTAIRE_MAX,
    MOTIF_RETRAIT_MAX=MOTIF_RETRAIT_MAX,
    url_statique=url_statique,
)


def page(request: Request, gabarit: str, statut: int = 200, **contexte: Any) -> HTMLResponse:
    """Render a page; the layout gets the session's user and CSRF token (as a dependency read
    them for this request) and a pending message."""
    ouverte = sess.session_de_la_page(request)
    message = request.session.pop("message", None)
    html = environnement.get_template(gabarit).render(
        request=request,
        connecte=ouverte is not None,
        menu_gestion=ouverte is not None and ouverte.gestionnaire,
        nom_utilisateur=_nom(ouverte),
        csrf=sess.masquer_csrf(ouverte.csrf) if ouverte is not None else "",
        message=message,
        **contexte,
    )
    return HTMLResponse(html, status_code=statut)


def fragment(request: Request, gabarit: str, statut: int = 200, **contexte: Any) -> HTMLResponse:
    """Render a part of a page for htmx: no layout, and a pending message stays for the next page."""
    html = environnement.get_template(gabarit).render(request=request, **contexte)
    return HTMLResponse(html, status_code=statut)


def _nom(ouverte: sess.SessionOuverte | None) -> str:
    if ouverte is None:
        return ""
    nom = " ".join(p for p in (ouverte.prenom, ouverte.nom_usage) if p)
    return nom or ouverte.courriel or ouverte.sub


def annoncer(request: Request, titre: str, texte: str = "", type_: str = "success") -> None:
    """A message shown once, on the page the next redirect leads to (post/redirect/get)."""
    request.session["message"] = {"titre": titre, "texte": texte, "type": type_}
