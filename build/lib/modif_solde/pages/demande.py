"""The pages both roles share, one route each: `/demandes` (the operator's requests, the
gestionnaires' work queue: pages/file.py) and the request page: an operator sees its request, a
gestionnaire also the back-office's actions (open, extend, withdraw: pages/gestionnaire.py)
and every round of modification."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.db import unit_of_work
from modif_solde.models import vues
from modif_solde.models.utilisateur import Role, Utilisateur
from modif_solde.pages import etat, file
from modif_solde.pages import session as sess
from modif_solde.pages.rendu import LIBELLES, page
from modif_solde.services import lecture
from modif_solde.services import modifications as svc
from modif_solde.services import signalements as signalements_svc
from modif_solde.web.telechargement import telecharger_piece

router = APIRouter(include_in_schema=False)

CHAMPS_ATTENDUS = [(c, LIBELLES.get(c, c)) for c in svc.CHAMPS_ATTENDUS_POSSIBLES]
# What an operator may report as wrong or missing: the same items a gestionnaire may expect.
ELEMENTS_SIGNALABLES = CHAMPS_ATTENDUS


@router.get("/demandes")
async def mes_demandes(request: Request, lu: sess.LecturePortailDep) -> Response:
    if lu.utilisateur.role == Role.GESTIONNAIRE:
        return await file.file_de_travail(request, lu.session)
    liste = await lecture.liste(lu.session, None, lu.utilisateur.perimetre_siret, 500, 0)
    # Those waiting for the operator first, the nearest deadline first; then the others.
    a_modifier = sorted(
        (d for d in liste.demandes if d.modification_ouverte),
        key=lambda d: d.modification_ouverte.expire_le if d.modification_ouverte else d.statut_modifie_le,
    )
    autres = [d for d in liste.demandes if not d.modification_ouverte]
    return page(request, "demandes.html", demandes=[*a_modifier, *autres], gestionnaire=False)


@router.get("/demandes/{numero}")
async def demande_page(request: Request, numero: str, lu: sess.LecturePortailDep) -> Response:
    return await rendre_demande(request, numero, lu.utilisateur, session=lu.session)


async def rendre_demande(
    request: Request,
    numero: str,
    utilisateur: Utilisateur,
    statut: int = 200,
    session: AsyncSession | None = None,
    **extra: Any,
) -> Response:
    """The request page; a gestionnaire's view adds the back-office's actions (`extra`: the
    errors and input of a refused form). `session`: the page's read transaction, if open."""
    gestionnaire = utilisateur.role == Role.GESTIONNAIRE
    if session is None:
        async with unit_of_work(etat.lecture_seule(request)) as session:
            return await rendre_demande(request, numero, utilisateur, statut, session, **extra)
    lu = await lecture.lire_demande(
        session,
        numero,
        utilisateur.perimetre_siret,
        interne=utilisateur.voit_interne,
        avec_tours=gestionnaire,
    )
    vue = lu.vue
    reglages = etat.reglages(request)
    gestion = contexte_gestion(request, lu.tours) if gestionnaire else {}
    signales = await _contexte_signalements(request, session, vue, utilisateur)
    return page(
        request,
        "demande.html",
        statut=statut,
        d=vue,
        m=vue.modification_ouverte,
        versions=_versions(vue),
        gestionnaire=gestionnaire,
        relance_apres=reglages.RELANCE_APRES.days,
        expiration_apres=reglages.EXPIRATION_APRES.days,
        **{"erreurs": [], "saisie": {}, **gestion, **signales, **extra},
    )


async def _contexte_signalements(
    request: Request, session: AsyncSession, vue: vues.DemandePage, utilisateur: Utilisateur
) -> dict[str, Any]:
    """What the request page shows of its reports; for a gestionnaire who came from a report
    (`?signalement=`), the modification form pre-filled with it."""
    lignes = await signalements_svc.de_la_demande_avec_modifications(session, vue.numero)
    signalements = [s for s, _ in lignes]
    contexte: dict[str, Any] = {
        "signalements": signalements,
        "signalements_modifications": {s.modification_id: n for s, n in lignes if n is not None},
        "elements_signalables": ELEMENTS_SIGNALABLES,
        "peut_signaler": utilisateur.role == Role.OPERATEUR
        and vue.statut == "en_cours"
        and not vue.purgee_le,
    }
    choisi = request.query_params.get("signalement", "")
    if utilisateur.role == Role.GESTIONNAIRE and choisi.isdigit():
        s = next(
            (
                s
                for s in signalements
                if s.id == int(choisi) and s.statut == signalements_svc.StatutSignalement.NOUVEAU
            ),
            None,
        )
        if s is not None:
            contexte["saisie"] = {"commentaire": s.description, "champs": list(s.champs)}
            contexte["signalement_prerempli"] = s.id
    return contexte


def _versions(vue: vues.DemandePage) -> list[dict[str, Any]]:
    """The history grouped by version, newest first: date, who (which modification), changes, documents."""
    par_version: dict[int, dict[str, Any]] = {}
    for ligne in vue.historique.elements:
        v = par_version.setdefault(
            ligne.version,
            {
                "version": ligne.version,
                "le": ligne.applique_le,
                "modification": ligne.modification,
                "lignes": [],
                "pieces": [],
            },
        )
        v["lignes"].append(ligne)
    for piece in vue.pieces:
        if piece.definitive and piece.origine != "import":
            for v in par_version.values():
                if v["modification"] == piece.origine:
                    v["pieces"].append(piece)
    return sorted(par_version.values(), key=lambda v: v["version"], reverse=True)


@router.get("/demandes/{numero}/pieces/{piece_id}")
async def consulter_piece(
    request: Request, numero: str, piece_id: str, utilisateur: sess.PortailDep
) -> StreamingResponse:
    async with unit_of_work(etat.lecture_seule(request)) as session:
        # One path for a document's download, the API's included.
        return await telecharger_piece(
            session, etat.cycle(request).stockage, numero, piece_id, utilisateur.perimetre_siret
        )


def refuser(request: Request, action: str, message: str) -> None:
    """A refusal shown once, beside the action it answers, on the page the redirect leads to."""
    request.session["refus"] = {"action": action, "message": message}


def contexte_gestion(request: Request, tours: list[vues.ModificationVue]) -> dict[str, Any]:
    """What the request page adds for a gestionnaire: the actions, a pending refusal, every
    round of modification (read with the page) and the link to each one's workflow in the
    Temporal Web UI."""
    ui = etat.reglages(request).TEMPORAL_UI_URL.rstrip("/")
    return {
        "champs_attendus": CHAMPS_ATTENDUS,
        "refus": request.session.pop("refus", None),
        "tours": tours,
        "lien_temporal": lambda numero: (
            f"{ui}/namespaces/{request.app.state.temporal_namespace}/workflows/{numero}"
        ),
    }
