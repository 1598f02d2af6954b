"""The pages a French public site must have, linked from every page's footer and readable
without login: the accessibility statement (RGAA), the legal notice and the personal data page.

What depends on the deployer (publisher, host, contacts, the accessibility audit) comes from the
settings; development shows the demonstration values below, production refuses to start
without the real ones (config.verifier_reglages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modif_solde.config import Settings
from modif_solde.pages import session as sess
from modif_solde.pages.rendu import environnement, page

router = APIRouter(include_in_schema=False)

# Shown in development only (production requires every one of these settings).
DEMONSTRATION: dict[str, Any] = {
    "EDITEUR": "Éditeur de démonstration, 1 place de l'Exemple, 75000 Paris",
    "DIRECTEUR_PUBLICATION": "Directrice de la publication de démonstration",
    "HEBERGEUR": "Hébergeur de démonstration, 2 rue de l'Exemple, 75000 Paris",
    "CONTACT_COURRIEL": "contact@modif-solde.invalid",
    "DPO_CONTACT": "dpo@modif-solde.invalid",
    "ACCESSIBILITE_STATUT": "partiellement conforme",
    "ACCESSIBILITE_AUDIT_DATE": date(2026, 12, 1),
    "ACCESSIBILITE_AUDIT_PAR": "l'équipe du projet (auto-évaluation de démonstration)",
}


@dataclass(frozen=True)
class Informations:
    editeur: str
    directeur_publication: str
    hebergeur: str
    contact_courriel: str
    dpo_contact: str
    accessibilite_statut: str
    audit_date: date | None
    audit_par: str | None
    portail_url: str
    duree_conservation: str | None
    session_inactivite: str
    session_duree_max: str


def _valeur(settings: Settings, nom: str) -> Any:
    valeur = getattr(settings, nom)
    if valeur is None and settings.ENVIRONNEMENT == "developpement":
        return DEMONSTRATION[nom]
    return valeur


def duree_fr(duree: timedelta) -> str:
    """A duration as a person reads it: « 5 ans », « 30 jours », « 12 heures », « 30 minutes »."""
    jours, secondes = duree.days, duree.seconds
    if jours and not secondes:
        if jours % 365 == 0:
            n, unite = jours // 365, "an"
        elif jours % 30 == 0 and jours >= 60:
            return f"{jours // 30} mois"
        else:
            n, unite = jours, "jour"
    elif not jours and secondes % 3600 == 0 and secondes:
        n, unite = secondes // 3600, "heure"
    elif not jours and secondes % 60 == 0 and secondes:
        n, unite = secondes // 60, "minute"
    else:
        n, unite = int(duree.total_seconds()), "seconde"
    return f"{n} {unite}{'s' if n > 1 else ''}"


def informations(settings: Settings) -> Informations:
    return Informations(
        editeur=_valeur(settings, "EDITEUR"),
        directeur_publication=_valeur(settings, "DIRECTEUR_PUBLICATION"),
        hebergeur=_valeur(settings, "HEBERGEUR"),
        contact_courriel=_valeur(settings, "CONTACT_COURRIEL"),
        dpo_contact=_valeur(settings, "DPO_CONTACT"),
        accessibilite_statut=_valeur(settings, "ACCESSIBILITE_STATUT") or "non conforme",
        audit_date=_valeur(settings, "ACCESSIBILITE_AUDIT_DATE"),
        audit_par=_valeur(settings, "ACCESSIBILITE_AUDIT_PAR"),
        portail_url=settings.PORTAIL_URL,
        duree_conservation=duree_fr(settings.DUREE_CONSERVATION) if settings.DUREE_CONSERVATION else None,
        session_inactivite=duree_fr(settings.SESSION_INACTIVITE),
        session_duree_max=duree_fr(settings.SESSION_DUREE_MAX),
    )


def statut_accessibilite(request: Request | None) -> str:
    """The footer's « Accessibilité : … » on every page (the DSFR's mandatory link)."""
    if request is None:
        return "non conforme"
    return informations(request.app.state.settings).accessibilite_statut


environnement.globals["statut_accessibilite"] = statut_accessibilite


async def _page(request: Request, gabarit: str) -> Response:
    # Anyone may read them; a logged-in visitor keeps their name and logout in the header.
    await sess.session_active(request)
    return page(request, gabarit, infos=informations(request.app.state.settings))


@router.get("/accessibilite")
async def accessibilite(request: Request) -> Response:
    return await _page(request, "informations/accessibilite.html")


@router.get("/mentions-legales")
async def mentions_legales(request: Request) -> Response:
    return await _page(request, "informations/mentions_legales.html")


@router.get("/donnees-personnelles")
async def donnees_personnelles(request: Request) -> Response:
    return await _page(request, "informations/donnees_personnelles.html")
