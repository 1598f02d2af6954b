"""The gestionnaires' work queue: `/demandes` for a gestionnaire, filtered and paged."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.formats import FUSEAU_PARIS
from modif_solde.models.enums import StatutDemande
from modif_solde.models.regles import STATUTS_DEMANDE
from modif_solde.pages import pilotage
from modif_solde.pages.rendu import page
from modif_solde.services import lecture, signalements

PAR_PAGE = 50
# An open modification this close to its deadline stands out in the queue (and says so).
BIENTOT = timedelta(hours=48)
STATUTS_FILTRE = {"": "Tous", **{statut.value: libelle for statut, libelle in STATUTS_DEMANDE.items()}}
RELANCEE_FILTRE = {"": "Peu importe", "oui": "Oui", "non": "Non"}
SIGNALEMENT_FILTRE = {"": "Peu importe", "a_traiter": "À traiter"}


def filtres(parametres: Mapping[str, str]) -> tuple[lecture.FiltresFile, int, list[dict[str, str]]]:
    """The queue's filters read from the query string; what is wrong is named, and ignored."""
    erreurs: list[dict[str, str]] = []
    statut = parametres.get("statut", "")
    if statut not in STATUTS_FILTRE:
        erreurs.append(
            {"champ": "statut", "message": "Le champ « Statut » doit valoir En cours ou A modifier."}
        )
        statut = ""
    echeance_avant = None
    if texte := parametres.get("echeance_avant", "").strip():
        try:
            jour: date | None = date.fromisoformat(texte)
        except ValueError:
            jour = None
        if jour is None:
            erreurs.append(
                {
                    "champ": "echeance_avant",
                    "message": "Le champ « Échéance avant le » doit être une date (jour, mois, année).",
                }
            )
        else:
            # "Before" that day includes it: up to its end, in Paris.
            echeance_avant = datetime.combine(jour + timedelta(days=1), time(0), FUSEAU_PARIS)
    relancee = parametres.get("relancee", "")
    if relancee not in RELANCEE_FILTRE:
        erreurs.append({"champ": "relancee", "message": "Le champ « Relancée » doit valoir Oui ou Non."})
        relancee = ""
    signalement = parametres.get("signalement", "")
    if signalement not in SIGNALEMENT_FILTRE:
        erreurs.append({"champ": "signalement", "message": "Le champ « Signalement » doit valoir À traiter."})
        signalement = ""
    depuis_pilotage, erreurs_pilotage, _ = pilotage.filtres_file(parametres)
    erreurs += erreurs_pilotage
    numero_page = parametres.get("page", "1")
    page_voulue = int(numero_page) if numero_page.isdigit() and 0 < int(numero_page) <= 100_000 else 1
    filtres = lecture.FiltresFile(
        statut=StatutDemande(statut) if statut else None,
        echeance_avant=echeance_avant,
        relancee={"oui": True, "non": False}.get(relancee),
        recherche=parametres.get("recherche", "")[:200],
        signalement=True if signalement else None,
        **depuis_pilotage,
    )
    return filtres, page_voulue, erreurs


async def file_de_travail(request: Request, session: AsyncSession) -> Response:
    """`/demandes` for a gestionnaire (the route is the operator's list's: one URL, two views),
    in the page's read transaction `session`."""
    parametres = dict(request.query_params)
    choisis, numero_page, erreurs = filtres(parametres)
    liste = await lecture.file_de_travail(session, choisis, PAR_PAGE, (numero_page - 1) * PAR_PAGE)
    maintenant = datetime.now(FUSEAU_PARIS)
    lignes = []
    for d in liste.demandes:
        m = d.modification_ouverte
        reste = (m.expire_le - maintenant) if m else None
        lignes.append(
            {
                "d": d,
                "m": m,
                "jours": (m.expire_le.astimezone(FUSEAU_PARIS).date() - maintenant.date()).days
                if m
                else None,
                "bientot": reste is not None and reste <= BIENTOT,
                "depassee": reste is not None and reste.total_seconds() < 0,
            }
        )
    pages = max(1, -(-liste.total // PAR_PAGE))
    sans_page = {k: v for k, v in parametres.items() if k != "page" and v}
    return page(
        request,
        "gestion/file.html",
        statut=422 if erreurs else 200,
        lignes=lignes,
        total=liste.total,
        numero_page=numero_page,
        pages=pages,
        lien_page=lambda n: "/demandes?" + urlencode({**sans_page, "page": n}),
        valeurs=parametres,
        erreurs=erreurs,
        statuts=STATUTS_FILTRE,
        relancees=RELANCEE_FILTRE,
        signalements_filtre=SIGNALEMENT_FILTRE,
        signales=await signalements.demandes_en_attente(session, [d.numero for d in liste.demandes]),
        pilotage=pilotage.filtres_file(parametres)[2],
        filtres_pilotage={k: parametres[k] for k in pilotage.FILTRES_PILOTAGE if parametres.get(k)},
        export=urlencode({k: v for k, v in parametres.items() if k != "page" and v}),
    )
