"""The steering dashboard (`/pilotage`) and the work queue's export (`/demandes.csv`,
`/demandes.ods`), for gestionnaires.

Each figure is drawn as an SVG made here (no script) beside the table of its numbers, each
number a link to the work queue filtered on what it counts (services/pilotage.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from modif_solde.models.enums import TypeCourriel
from modif_solde.models.utilisateur import Role
from modif_solde.pages import session as sess
from modif_solde.pages.rendu import page
from modif_solde.services import pilotage as svc
from modif_solde.services.erreurs import DonneesInvalides
from modif_solde.web.problemes import Probleme

router = APIRouter(include_in_schema=False)

TYPES_COURRIEL = {
    TypeCourriel.INVITATION: "Invitation",
    TypeCourriel.RELANCE: "Relance",
    TypeCourriel.EXPIRATION: "Expiration",
    TypeCourriel.CONFIRMATION: "Confirmation",
    TypeCourriel.CONFIRMATION_GESTIONNAIRES: "Confirmation aux gestionnaires",
    TypeCourriel.RENONCIATION: "Renonciation",
    TypeCourriel.RETRAIT: "Retrait",
    TypeCourriel.PROLONGATION: "Prolongation",
}
# What a queue filtered from the dashboard says it shows.
TOURS = {
    "ouverte": "modifications ouvertes",
    "confirmee": "modifications confirmées",
    "renoncee": "modifications renoncées",
    "retiree": "modifications retirées",
    "expiree": "modifications expirées",
    "reponse": "réponses de l'opérateur",
    "avant_relance": "réponses avant la relance",
    "apres_relance": "réponses après la relance",
}

# The bars' drawing, in SVG user units.
LARGEUR, HAUTEUR_BARRE, ECART, MARGE_LIBELLE = 480, 22, 10, 190


@dataclass(frozen=True)
class Ligne:
    libelle: str
    valeur: float
    texte: str
    lien: str | None
    lu: str  # what a screen reader hears after the number, inside its link


@dataclass(frozen=True)
class Figure:
    id: str
    titre: str
    entete: str
    lignes: list[Ligne]
    unite: str = ""

    @property
    def hauteur(self) -> int:
        return len(self.lignes) * (HAUTEUR_BARRE + ECART) + ECART

    def barres(self) -> list[dict[str, Any]]:
        """Each bar's geometry: its length in proportion to the largest value."""
        plus_grande = max((ligne.valeur for ligne in self.lignes), default=0) or 1
        place = LARGEUR - MARGE_LIBELLE - 60
        return [
            {
                "ligne": ligne,
                "y": ECART + i * (HAUTEUR_BARRE + ECART),
                "largeur": round(place * ligne.valeur / plus_grande, 1),
            }
            for i, ligne in enumerate(self.lignes)
        ]


def lien_file(**filtres: str) -> str:
    return "/demandes?" + urlencode(filtres)


def _nombre(n: float | None, decimales: bool = False) -> str:
    if n is None:
        return "—"
    return f"{n:.1f}".replace(".", ",") if decimales else str(int(n))


def figures(chiffres: svc.Pilotage) -> list[Figure]:
    periode = {"du": chiffres.du.isoformat(), "au": chiffres.au.isoformat()}

    def tour(t: str) -> str:
        return lien_file(tour=t, **periode)

    c = chiffres.cloturees
    cycle = [
        ("Ouvertes", chiffres.ouvertes, "ouverte"),
        ("Confirmées", c.confirmees, "confirmee"),
        ("Renoncées", c.renoncees, "renoncee"),
        ("Retirées", c.retirees, "retiree"),
        ("Expirées", c.expirees, "expiree"),
    ]
    d = chiffres.delai_reponse
    r = chiffres.relance
    aujourd_hui = chiffres.calcule_le.astimezone(svc.FUSEAU_PARIS).date()
    return [
        Figure(
            "cycle",
            "Modifications ouvertes et closes par issue",
            "Modifications",
            [
                Ligne(libelle, n, _nombre(n), tour(t), f" {TOURS[t]} : voir la file")
                for libelle, n, t in cycle
            ],
        ),
        Figure(
            "delai",
            f"Délai de réponse de l'opérateur, en jours ({d.reponses} réponse{'s' if d.reponses > 1 else ''})",
            "Jours",
            [
                Ligne(
                    "Médiane",
                    d.mediane_jours or 0,
                    _nombre(d.mediane_jours, True),
                    tour("reponse"),
                    " jours, délai médian : voir les réponses dans la file",
                ),
                Ligne(
                    "9e décile",
                    d.decile_9_jours or 0,
                    _nombre(d.decile_9_jours, True),
                    tour("reponse"),
                    " jours, 9e décile : voir les réponses dans la file",
                ),
            ],
            unite=" j",
        ),
        Figure(
            "relance",
            "Réponses avant et après la relance"
            + (
                f" ({_nombre(r.part_apres_relance, True)} % après)"
                if r.part_apres_relance is not None
                else ""
            ),
            "Réponses",
            [
                Ligne(
                    "Avant la relance",
                    r.avant_relance,
                    _nombre(r.avant_relance),
                    tour("avant_relance"),
                    " réponses avant la relance : voir la file",
                ),
                Ligne(
                    "Après la relance",
                    r.apres_relance,
                    _nombre(r.apres_relance),
                    tour("apres_relance"),
                    " réponses après la relance : voir la file",
                ),
            ],
        ),
        Figure(
            "courriels",
            "Courriels en échec, par type",
            "Courriels",
            [
                Ligne(
                    TYPES_COURRIEL[e.type],
                    e.nombre,
                    _nombre(e.nombre),
                    lien_file(courriel_echec=e.type.value, **periode),
                    f" courriels « {TYPES_COURRIEL[e.type]} » en échec : voir la file",
                )
                for e in chiffres.courriels_en_echec
            ],
        ),
        Figure(
            "echeances",
            "Modifications ouvertes maintenant, par jours restants",
            "Modifications",
            [
                Ligne(
                    t.libelle,
                    n.nombre,
                    _nombre(n.nombre),
                    lien_file(**t.filtres_file(aujourd_hui)),
                    f" modifications ouvertes, {t.libelle.lower()} : voir la file",
                )
                for t, n in zip(svc.TRANCHES, chiffres.ouvertes_maintenant, strict=True)
            ],
        ),
    ]


def raccourcis(jour: date) -> list[tuple[str, svc.Periode]]:
    mois = svc.mois_de(jour)
    semaine = svc.semaine_de(jour)
    return [
        ("Ce mois-ci", mois),
        ("Le mois précédent", svc.mois_de(mois.du - timedelta(days=1))),
        ("Cette semaine", semaine),
        ("La semaine précédente", svc.semaine_de(semaine.du - timedelta(days=1))),
    ]


def exiger_gestionnaire(role: Role) -> None:
    if role != Role.GESTIONNAIRE:
        raise Probleme(403, "Cette page est réservée aux gestionnaires.", titre="Accès refusé")


@router.get("/pilotage")
async def tableau_de_bord(request: Request, lu: sess.LecturePortailDep) -> Response:
    exiger_gestionnaire(lu.utilisateur.role)
    parametres = request.query_params
    erreurs: list[dict[str, str]] = []
    try:
        periode = svc.lire_periode(parametres.get("du"), parametres.get("au"))
    except DonneesInvalides as exc:
        erreurs = exc.erreurs
        periode = svc.lire_periode(None, None)
    chiffres = await svc.lire_pilotage(lu.session, periode)
    return page(
        request,
        "gestion/pilotage.html",
        statut=422 if erreurs else 200,
        chiffres=chiffres,
        figures=figures(chiffres),
        raccourcis=[
            (libelle, p, f"/pilotage?du={p.du}&au={p.au}") for libelle, p in raccourcis(svc.aujourd_hui())
        ],
        valeurs={
            "du": parametres.get("du", periode.du.isoformat()),
            "au": parametres.get("au", periode.au.isoformat()),
        },
        erreurs=erreurs,
        LARGEUR=LARGEUR,
        HAUTEUR_BARRE=HAUTEUR_BARRE,
        MARGE_LIBELLE=MARGE_LIBELLE,
    )


# --- The work queue's filters that come from the dashboard ---

FILTRES_PILOTAGE = ("tour", "courriel_echec", "du", "au", "echeance_apres")


def filtres_file(parametres: Any) -> tuple[dict[str, Any], list[dict[str, str]], list[str]]:
    """The queue's filters a dashboard link sets: the FiltresFile fields, the errors (named, and
    the filter ignored) and what the queue says it shows."""
    champs: dict[str, Any] = {}
    erreurs: list[dict[str, str]] = []
    dit: list[str] = []
    if texte := parametres.get("echeance_apres", "").strip():
        try:
            jour = date.fromisoformat(texte)
            champs["echeance_apres"] = svc.debut_du_jour(jour)
            dit.append(f"échéance à partir du {jour:%d/%m/%Y}")
        except ValueError:
            erreurs.append(
                {
                    "champ": "echeance_apres",
                    "message": "Le filtre « Échéance à partir du » doit être une date.",
                }
            )
    tour = parametres.get("tour", "")
    courriel = parametres.get("courriel_echec", "")
    if not tour and not courriel:
        return champs, erreurs, dit
    try:
        periode = svc.lire_periode(parametres.get("du"), parametres.get("au"))
    except DonneesInvalides as exc:
        return champs, erreurs + exc.erreurs, dit
    sur = f"du {periode.du:%d/%m/%Y} au {periode.au:%d/%m/%Y}"
    if tour:
        if tour in TOURS:
            champs.update(tour=tour, periode=periode)
            dit.append(f"{TOURS[tour]} {sur}")
        else:
            erreurs.append(
                {"champ": "tour", "message": "Le filtre « tour » ne correspond à aucun chiffre du pilotage."}
            )
    if courriel:
        if courriel in TYPES_COURRIEL:
            champs.update(courriel_echec=courriel, periode=periode)
            dit.append(f"courriels « {TYPES_COURRIEL[TypeCourriel(courriel)]} » en échec {sur}")
        else:
            erreurs.append(
                {
                    "champ": "courriel_echec",
                    "message": "Le filtre « courriel_echec » doit être un type de courriel.",
                }
            )
    return champs, erreurs, dit
