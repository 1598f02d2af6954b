"""The gestionnaires' back-office: open, extend and withdraw a modification from the request page.

Each action is the API's own use case (services/cycle.py): the same checks, the same workflow
updates, the same refusals; only their rendering differs (pages/erreurs.py)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from modif_solde.db import unit_of_work
from modif_solde.formats import FUSEAU_PARIS, nombre_fr
from modif_solde.models.corps import CorpsRetrait
from modif_solde.models.enums import TypeCourriel
from modif_solde.models.regles import MOTIF_RETRAIT_MAX
from modif_solde.models.utilisateur import Utilisateur
from modif_solde.pages import erreurs as erreurs_page
from modif_solde.pages import etat
from modif_solde.pages import session as sess
from modif_solde.pages.demande import refuser, rendre_demande
from modif_solde.pages.rendu import annoncer, page
from modif_solde.services import modifications as svc
from modif_solde.services.courriels import ContexteCourriel, rendre_courriel
from modif_solde.services.erreurs import Conflit, DonneesInvalides

router = APIRouter(include_in_schema=False)

# The deadline is the end of the chosen day, in Paris, as the invitation e-mail words it.
HEURE_ECHEANCE = time(23, 59)


def _redirection(chemin: str) -> RedirectResponse:
    return RedirectResponse(chemin, status_code=303)


async def _refus_ouverture(
    request: Request,
    numero: str,
    utilisateur: Utilisateur,
    exc: DonneesInvalides | Conflit,
    commentaire: str,
    champs: list[str],
) -> Response:
    """An opening refused: its form again with each error beside its field, or the request
    page with the refusal beside the action (one answer for the confirmation step and the
    action)."""
    if isinstance(exc, DonneesInvalides):
        return await rendre_demande(
            request,
            numero,
            utilisateur,
            statut=422,
            erreurs=erreurs_page.de_l_ouverture(exc),
            saisie={"commentaire": commentaire, "champs": champs},
        )
    refuser(request, "ouvrir", exc.message)
    return _redirection(f"/demandes/{numero}#demander-modification")


# --- Demander une modification ---


@router.post("/demandes/{numero}/modification/apercu", dependencies=[sess.CsrfDep])
async def apercu_ouverture(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    commentaire: Annotated[str, Form()] = "",
    champs: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The confirmation step: the invitation e-mail as the operator will receive it."""
    settings = etat.reglages(request)
    try:
        prevue = await etat.cycle(request).preparer_ouverture(numero, commentaire, champs or [])
    except (DonneesInvalides, Conflit) as exc:
        return await _refus_ouverture(request, numero, utilisateur, exc, commentaire, champs or [])
    maintenant = datetime.now(FUSEAU_PARIS)
    # The dates the workflow will set when it opens now (it computes them the same way).
    contexte = ContexteCourriel(
        demande_numero=numero,
        modification_numero=prevue.modification_numero,
        denomination=prevue.denomination,
        siret=prevue.siret,
        commentaire=prevue.commentaire,
        champs_attendus=prevue.champs,
        ouverte_le=maintenant,
        relance_le=maintenant + settings.RELANCE_APRES,
        expire_le=maintenant + settings.EXPIRATION_APRES,
        lien=f"{settings.PORTAIL_URL.rstrip('/')}/demandes/{numero}",
    )
    return page(
        request,
        "gestion/apercu_ouverture.html",
        numero=numero,
        modification_numero=prevue.modification_numero,
        courriel=rendre_courriel(TypeCourriel.INVITATION, contexte),
        commentaire=prevue.commentaire,
        champs=prevue.champs,
    )


@router.post("/demandes/{numero}/modifications", dependencies=[sess.CsrfDep])
async def ouvrir(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    commentaire: Annotated[str, Form()] = "",
    champs: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        modification_numero, _ = await etat.cycle(request).ouvrir(
            numero, commentaire, champs or [], utilisateur
        )
    except (DonneesInvalides, Conflit) as exc:
        return await _refus_ouverture(request, numero, utilisateur, exc, commentaire, champs or [])
    annoncer(
        request,
        "Demande de modification envoyée",
        f"La modification {modification_numero} est ouverte : l'opérateur est invité par courriel à modifier sa demande.",
    )
    return _redirection(f"/demandes/{numero}")


# --- Prolonger, retirer ---


async def _modification_ouverte(request: Request, numero: str) -> Any:
    async with unit_of_work(etat.lecture_seule(request)) as session:
        return await svc.charger_modification(session, numero)


def _echeance(valeur: str) -> datetime | None:
    try:
        jour = date.fromisoformat(valeur.strip())
    except ValueError:
        return None
    return datetime.combine(jour, HEURE_ECHEANCE, FUSEAU_PARIS)


async def _lire_echeance(
    request: Request, utilisateur: Utilisateur, numero: str, expire_le: str
) -> datetime | Response:
    """The new deadline typed, or the request page with the error beside the field: one check
    for the confirmation step and for the action."""
    echeance = _echeance(expire_le)
    if echeance is None:
        return await _erreur_action(
            request,
            utilisateur,
            numero,
            "expire_le",
            "Le champ « Nouvelle échéance » doit être une date (jour, mois, année).",
            {"expire_le": expire_le},
        )
    return echeance


async def _lire_retrait(
    request: Request, utilisateur: Utilisateur, numero: str, motif: str
) -> str | Response:
    """The withdrawal's reason, or the request page with the error beside the field: one check
    for the confirmation step and for the action."""
    if not motif.strip():
        return await _erreur_action(
            request, utilisateur, numero, "motif", "Le champ « Motif » est obligatoire.", {"motif": motif}
        )
    try:
        return CorpsRetrait(motif=motif).motif
    except ValueError:
        return await _erreur_action(
            request,
            utilisateur,
            numero,
            "motif",
            f"Le champ « Motif » ne doit pas dépasser {nombre_fr(MOTIF_RETRAIT_MAX)} caractères.",
            {"motif": motif},
        )


async def _erreur_action(
    request: Request,
    utilisateur: Utilisateur,
    numero_modification: str,
    champ: str,
    message: str,
    saisie: dict[str, str],
) -> Response:
    demande_numero = svc.numero_demande_de(numero_modification)
    return await rendre_demande(
        request,
        demande_numero,
        utilisateur,
        statut=422,
        erreurs=[{"champ": champ, "message": message}],
        saisie=saisie,
    )


@router.post("/modifications/{numero}/prolonger/verifier", dependencies=[sess.CsrfDep])
async def verifier_prolongation(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    expire_le: Annotated[str, Form()] = "",
) -> Response:
    modification = await _modification_ouverte(request, numero)
    echeance = await _lire_echeance(request, utilisateur, numero, expire_le)
    if isinstance(echeance, Response):
        return echeance
    return page(
        request,
        "gestion/confirmer_prolongation.html",
        m=modification,
        demande_numero=svc.numero_demande_de(numero),
        echeance=echeance,
        expire_le=expire_le,
    )


@router.post("/modifications/{numero}/prolonger", dependencies=[sess.CsrfDep])
async def prolonger(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    expire_le: Annotated[str, Form()] = "",
) -> Response:
    demande_numero = svc.numero_demande_de(numero)
    echeance = await _lire_echeance(request, utilisateur, numero, expire_le)
    if isinstance(echeance, Response):
        return echeance
    try:
        await etat.cycle(request).prolonger(numero, utilisateur, echeance)
    except (DonneesInvalides, Conflit) as exc:
        refuser(request, "prolonger", exc.message)
        return _redirection(f"/demandes/{demande_numero}#prolonger")
    annoncer(
        request,
        "Échéance repoussée",
        f"La modification {numero} peut être faite jusqu'au {echeance:%d/%m/%Y}.",
    )
    return _redirection(f"/demandes/{demande_numero}")


@router.post("/modifications/{numero}/retirer/verifier", dependencies=[sess.CsrfDep])
async def verifier_retrait(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    motif: Annotated[str, Form()] = "",
) -> Response:
    modification = await _modification_ouverte(request, numero)
    retrait = await _lire_retrait(request, utilisateur, numero, motif)
    if isinstance(retrait, Response):
        return retrait
    return page(
        request,
        "gestion/confirmer_retrait.html",
        m=modification,
        demande_numero=svc.numero_demande_de(numero),
        motif=retrait.strip(),
    )


@router.post("/modifications/{numero}/retirer", dependencies=[sess.CsrfDep])
async def retirer(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    motif: Annotated[str, Form()] = "",
) -> Response:
    demande_numero = svc.numero_demande_de(numero)
    retrait = await _lire_retrait(request, utilisateur, numero, motif)
    if isinstance(retrait, Response):
        return retrait
    try:
        await etat.cycle(request).retirer(numero, utilisateur, retrait)
    except (DonneesInvalides, Conflit) as exc:
        refuser(request, "retirer", exc.message)
        return _redirection(f"/demandes/{demande_numero}#retirer")
    annoncer(
        request,
        "Demande de modification retirée",
        f"La modification {numero} est retirée : la demande repasse au statut « En cours ».",
    )
    return _redirection(f"/demandes/{demande_numero}")
