"""« Signaler une erreur ou un oubli »: the operator's report on its request page while it is
« en cours », and the gestionnaire's two answers (a modification opened from it, through the
request page's own form pre-filled; or no modification needed, e-mailed to the operator)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from modif_solde.db import unit_of_work
from modif_solde.models.utilisateur import Utilisateur
from modif_solde.pages import erreurs as erreurs_page
from modif_solde.pages import etat
from modif_solde.pages import session as sess
from modif_solde.pages.demande import rendre_demande
from modif_solde.pages.rendu import annoncer
from modif_solde.services import signalements as svc
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.erreurs import Conflit, DonneesInvalides, Introuvable

router = APIRouter(include_in_schema=False)


async def _page_demande(request: Request, numero: str, utilisateur: Utilisateur, **extra: Any) -> Response:
    return await rendre_demande(request, numero, utilisateur, statut=422, **extra)


@router.post("/demandes/{numero}/signalements", dependencies=[sess.CsrfDep])
async def signaler(
    request: Request,
    numero: str,
    utilisateur: sess.OperateurPortailDep,
    description: Annotated[str, Form(max_length=20_000)] = "",
    champs: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        async with unit_of_work(etat.ecriture(request)) as session:
            await svc.signaler(
                session,
                numero,
                utilisateur.siret,
                description,
                champs or [],
                utilisateur.sub,
                datetime.now(UTC),
            )
    except DonneesInvalides as exc:
        return await _page_demande(
            request,
            numero,
            utilisateur,
            erreurs_signalement=erreurs_page.du_signalement(exc),
            saisie_signalement={"description": description, "champs": champs or []},
        )
    except Conflit as exc:
        annoncer(request, "Signalement impossible", exc.message, "error")
        return RedirectResponse(f"/demandes/{numero}#signalements", status_code=303)
    annoncer(
        request,
        "Signalement envoyé",
        "Un gestionnaire va l'examiner : il ouvrira une modification de votre demande si elle est nécessaire, "
        "ou vous répondra par courriel.",
    )
    return RedirectResponse(f"/demandes/{numero}#signalements", status_code=303)


@router.post("/demandes/{numero}/signalements/{signalement_id}/sans-suite", dependencies=[sess.CsrfDep])
async def sans_suite(
    request: Request,
    numero: str,
    signalement_id: int,
    utilisateur: sess.GestionnairePortailDep,
    reponse: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    settings = etat.reglages(request)
    maintenant = datetime.now(UTC)
    try:
        async with unit_of_work(etat.ecriture(request)) as session:
            await svc.charger(session, signalement_id, numero)
            courriel = await svc.repondre_sans_suite(
                session, signalement_id, reponse, utilisateur.sub, maintenant, settings.PORTAIL_URL
            )
    except DonneesInvalides as exc:
        return await _page_demande(
            request,
            numero,
            utilisateur,
            erreurs_reponse={signalement_id: erreurs_page.du_signalement(exc)[0]["message"]},
            saisie_reponse={signalement_id: reponse},
        )
    except Conflit as exc:
        annoncer(request, "Réponse impossible", exc.message, "error")
        return RedirectResponse(f"/demandes/{numero}#signalements", status_code=303)
    assert courriel.id is not None
    statut = await svc.envoyer(
        etat.ecriture(request),
        ExpediteurSmtp(settings.SMTP_URL),
        settings.MAIL_FROM,
        courriel.id,
        maintenant,
    )
    texte = (
        "L'opérateur en est informé par courriel."
        if statut == "envoye"
        else (
            "Le courriel à l'opérateur n'a pas pu être envoyé pour l'instant : il figure, avec l'erreur, "
            "dans les courriels de la demande."
        )
    )
    annoncer(request, "Réponse enregistrée : aucune modification nécessaire", texte)
    return RedirectResponse(f"/demandes/{numero}#signalements", status_code=303)


async def rattacher_signalement(
    request: Request, numero: str, signalement_id: int, modification_numero: str, par: str
) -> None:
    """The modification just opened from this report (the modification stands even if the
    report was answered meanwhile: then the report keeps that answer)."""
    try:
        async with unit_of_work(etat.ecriture(request)) as session:
            await svc.charger(session, signalement_id, numero)
            await svc.rattacher(session, signalement_id, modification_numero, par, datetime.now(UTC))
    except (Conflit, Introuvable):
        pass
