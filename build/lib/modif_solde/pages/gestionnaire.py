"""The gestionnaires' back-office: open, extend and withdraw a modification from the request page.

Each action is the API's own use case (services/cycle.py): the same checks, the same workflow
updates, the same refusals; only their rendering differs (pages/erreurs.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from modif_solde.db import unit_of_work
from modif_solde.formats import FUSEAU_PARIS, nombre_fr
from modif_solde.models.corps import CorpsRetrait
from modif_solde.models.enums import TypeCourriel
from modif_solde.models.regles import MOTIF_RETRAIT_MAX
from modif_solde.models.tables import Modification
from modif_solde.models.utilisateur import Utilisateur
from modif_solde.pages import erreurs as erreurs_page
from modif_solde.pages import etat
from modif_solde.pages import session as sess
from modif_solde.pages.demande import refuser, rendre_demande
from modif_solde.pages.rendu import annoncer, page
from modif_solde.pages.signalements import rattacher_signalement
from modif_solde.services import modifications as svc
from modif_solde.services.courriels import ContexteCourriel, rendre_courriel
from modif_solde.services.erreurs import Conflit, DonneesInvalides

router = APIRouter(include_in_schema=False)

# The deadline is the end of the chosen day, in Paris, as the invitation e-mail words it.
HEURE_ECHEANCE = time(23, 59)


def _redirection(chemin: str) -> RedirectResponse:
    return RedirectResponse(chemin, status_code=303)


# --- Demander une modification ---


@dataclass(frozen=True)
class Ouverture:
    """The opening's form, as the gestionnaire sent it on request `numero`."""

    request: Request
    numero: str
    utilisateur: Utilisateur
    commentaire: str
    champs: list[str]
    signalement: int | None = None  # the operator's report it starts from (pages/signalements.py)

    async def refusee(self, exc: DonneesInvalides | Conflit) -> Response:
        """Its form again with each error beside its field, or the request page with the refusal
        beside the action (one answer for the confirmation step and the action)."""
        if isinstance(exc, DonneesInvalides):
            return await rendre_demande(
                self.request,
                self.numero,
                self.utilisateur,
                statut=422,
                erreurs=erreurs_page.de_l_ouverture(exc),
                saisie={"commentaire": self.commentaire, "champs": self.champs},
                signalement_prerempli=self.signalement,
            )
        refuser(self.request, "ouvrir", exc.message)
        return _redirection(f"/demandes/{self.numero}#demander-modification")


async def _ouverture(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    commentaire: Annotated[str, Form()] = "",
    champs: Annotated[list[str] | None, Form()] = None,
    signalement: Annotated[int | None, Form()] = None,
) -> Ouverture:
    return Ouverture(request, numero, utilisateur, commentaire, champs or [], signalement)


OuvertureDep = Annotated[Ouverture, Depends(_ouverture)]


@router.post("/demandes/{numero}/modification/apercu", dependencies=[sess.CsrfDep])
async def apercu_ouverture(ouverture: OuvertureDep) -> Response:
    """The confirmation step: the invitation e-mail as the operator will receive it."""
    request, numero = ouverture.request, ouverture.numero
    settings = etat.reglages(request)
    try:
        prevue = await etat.cycle(request).preparer_ouverture(numero, ouverture.commentaire, ouverture.champs)
    except (DonneesInvalides, Conflit) as exc:
        return await ouverture.refusee(exc)
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
        signalement=ouverture.signalement,
    )


@router.post("/demandes/{numero}/modifications", dependencies=[sess.CsrfDep])
async def ouvrir(ouverture: OuvertureDep) -> Response:
    try:
        modification_numero, _ = await etat.cycle(ouverture.request).ouvrir(
            ouverture.numero, ouverture.commentaire, ouverture.champs, ouverture.utilisateur
        )
    except (DonneesInvalides, Conflit) as exc:
        return await ouverture.refusee(exc)
    if ouverture.signalement is not None:
        await rattacher_signalement(
            ouverture.request,
            ouverture.numero,
            ouverture.signalement,
            modification_numero,
            ouverture.utilisateur.sub,
        )
    annoncer(
        ouverture.request,
        "Demande de modification envoyée",
        f"La modification {modification_numero} est ouverte : l'opérateur est invité par courriel à modifier sa demande.",
    )
    return _redirection(f"/demandes/{ouverture.numero}")


# --- Prolonger, retirer ---


@dataclass(frozen=True)
class Action:
    """A gestionnaire's action on modification `numero` (its route's request and caller)."""

    request: Request
    numero: str
    utilisateur: Utilisateur

    @property
    def demande_numero(self) -> str:
        return svc.numero_demande_de(self.numero)

    async def refuser_champ(self, champ: str, message: str, saisie: dict[str, str]) -> Response:
        """The request page with the error beside the field: one answer for the confirmation
        step and for the action."""
        return await rendre_demande(
            self.request,
            self.demande_numero,
            self.utilisateur,
            statut=422,
            erreurs=[{"champ": champ, "message": message}],
            saisie=saisie,
        )

    async def modification(self) -> Modification:
        async with unit_of_work(etat.lecture_seule(self.request)) as session:
            return await svc.charger_modification(session, self.numero)

    def confirmation(self, modification: Modification, gabarit: str, **contexte: Any) -> Response:
        """The confirmation step of the action."""
        return page(self.request, gabarit, m=modification, demande_numero=self.demande_numero, **contexte)

    async def faire(
        self, ancre: str, action: Callable[[], Awaitable[None]], titre: str, texte: str
    ) -> Response:
        """The action itself: done (and announced), or refused beside its form."""
        demande_numero = self.demande_numero
        try:
            await action()
        except (DonneesInvalides, Conflit) as exc:
            refuser(self.request, ancre, exc.message)
            return _redirection(f"/demandes/{demande_numero}#{ancre}")
        annoncer(self.request, titre, texte)
        return _redirection(f"/demandes/{demande_numero}")


async def _action(request: Request, numero: str, utilisateur: sess.GestionnairePortailDep) -> Action:
    return Action(request, numero, utilisateur)


ActionDep = Annotated[Action, Depends(_action)]


def _echeance(valeur: str) -> datetime | None:
    try:
        jour = date.fromisoformat(valeur.strip())
    except ValueError:
        return None
    return datetime.combine(jour, HEURE_ECHEANCE, FUSEAU_PARIS)


async def _lire_echeance(action: Action, expire_le: str) -> datetime | Response:
    """The new deadline typed, or the request page with the error beside the field."""
    echeance = _echeance(expire_le)
    if echeance is None:
        return await action.refuser_champ(
            "expire_le",
            "Le champ « Nouvelle échéance » doit être une date (jour, mois, année).",
            {"expire_le": expire_le},
        )
    return echeance


async def _lire_retrait(action: Action, motif: str) -> str | Response:
    """The withdrawal's reason (stripped), or the request page with the error beside the field."""
    if not motif.strip():
        return await action.refuser_champ("motif", "Le champ « Motif » est obligatoire.", {"motif": motif})
    try:
        return CorpsRetrait(motif=motif).motif.strip()
    except ValueError:
        return await action.refuser_champ(
            "motif",
            f"Le champ « Motif » ne doit pas dépasser {nombre_fr(MOTIF_RETRAIT_MAX)} caractères.",
            {"motif": motif},
        )


Texte = Annotated[str, Form()]


@router.post("/modifications/{numero}/prolonger/verifier", dependencies=[sess.CsrfDep])
async def verifier_prolongation(action: ActionDep, expire_le: Texte = "") -> Response:
    modification = await action.modification()
    echeance = await _lire_echeance(action, expire_le)
    if isinstance(echeance, Response):
        return echeance
    return action.confirmation(
        modification, "gestion/confirmer_prolongation.html", echeance=echeance, expire_le=expire_le
    )


@router.post("/modifications/{numero}/prolonger", dependencies=[sess.CsrfDep])
async def prolonger(action: ActionDep, expire_le: Texte = "") -> Response:
    echeance = await _lire_echeance(action, expire_le)
    if isinstance(echeance, Response):
        return echeance
    return await action.faire(
        "prolonger",
        lambda: etat.cycle(action.request).prolonger(action.numero, action.utilisateur, echeance),
        "Échéance repoussée",
        f"La modification {action.numero} peut être faite jusqu'au {echeance:%d/%m/%Y}.",
    )


@router.post("/modifications/{numero}/retirer/verifier", dependencies=[sess.CsrfDep])
async def verifier_retrait(action: ActionDep, motif: Texte = "") -> Response:
    modification = await action.modification()
    retrait = await _lire_retrait(action, motif)
    if isinstance(retrait, Response):
        return retrait
    return action.confirmation(modification, "gestion/confirmer_retrait.html", motif=retrait)


@router.post("/modifications/{numero}/retirer", dependencies=[sess.CsrfDep])
async def retirer(action: ActionDep, motif: Texte = "") -> Response:
    retrait = await _lire_retrait(action, motif)
    if isinstance(retrait, Response):
        return retrait
    return await action.faire(
        "retirer",
        lambda: etat.cycle(action.request).retirer(action.numero, action.utilisateur, retrait),
        "Demande de modification retirée",
        f"La modification {action.numero} est retirée : la demande repasse au statut « En cours ».",
    )
