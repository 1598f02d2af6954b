"""The gestionnaires' back-office: open, extend and withdraw a modification from the request page.

Each action calls the API's own route function (api/demandes.py, api/modifications.py): the
same checks, the same workflow updates, the same refusals; only their rendering differs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.api import demandes as api_demandes
from modif_solde.api import modifications as api_modifications
from modif_solde.api.auth import Utilisateur
from modif_solde.config import Settings
from modif_solde.db import unit_of_work
from modif_solde.models import vues
from modif_solde.models.enums import StatutDemande, TypeCourriel
from modif_solde.models.tables import Operateur
from modif_solde.pages import session as sess
from modif_solde.pages.rendu import LIBELLES, annoncer, page
from modif_solde.services import lecture
from modif_solde.services import modifications as svc
from modif_solde.services.courriels import FUSEAU_PARIS, ContexteCourriel, rendre_courriel
from modif_solde.services.demandes import charger_demande
from modif_solde.services.erreurs import Conflit, DonneesInvalides

router = APIRouter(include_in_schema=False)

CHAMPS_ATTENDUS = [(c, LIBELLES.get(c, c)) for c in svc.CHAMPS_ATTENDUS_POSSIBLES]
# The deadline is the end of the chosen day, in Paris, as the invitation e-mail words it.
HEURE_ECHEANCE = time(23, 59)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _redirection(chemin: str) -> RedirectResponse:
    return RedirectResponse(chemin, status_code=303)


def refuser(request: Request, action: str, message: str) -> None:
    """A refusal shown once, beside the action it answers, on the page the redirect leads to."""
    request.session["refus"] = {"action": action, "message": message}


def contexte_gestion(request: Request, tours: list[vues.ModificationVue]) -> dict[str, Any]:
    """What the request page adds for a gestionnaire: the actions, a pending refusal, every
    round of modification (read with the page) and the link to each one's workflow in the
    Temporal Web UI."""
    settings = _settings(request)
    ui = settings.TEMPORAL_UI_URL.rstrip("/")
    return {
        "champs_attendus": CHAMPS_ATTENDUS,
        "refus": request.session.pop("refus", None),
        "tours": tours,
        "lien_temporal": lambda numero: (
            f"{ui}/namespaces/{request.app.state.temporal_namespace}/workflows/{numero}"
        ),
    }


def _erreurs_ouverture(exc: DonneesInvalides) -> list[dict[str, str]]:
    """The service names `champs.0`…: on the page, the checkboxes are one group."""
    erreurs: dict[str, str] = {}
    for e in exc.erreurs:
        champ = "champs" if e["champ"].startswith("champs") else e["champ"]
        message = e["message"].replace("« commentaire »", "« Commentaire »")
        if champ == "champs":
            message = "Cochez au moins un élément attendu de l'opérateur."
        erreurs.setdefault(champ, message)
    return [{"champ": c, "message": m} for c, m in erreurs.items()]


async def _page_demande(
    request: Request, numero: str, utilisateur: Utilisateur, statut: int, **extra: Any
) -> Response:
    # Imported here: the operator's module includes this one's context in the page it renders.
    from modif_solde.pages.operateur import rendre_demande

    return await rendre_demande(request, numero, utilisateur, statut=statut, **extra)


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
    settings = _settings(request)
    try:
        commentaire_net, champs_nets = svc.verifier_ouverture(commentaire, champs or [])
    except DonneesInvalides as exc:
        return await _page_demande(
            request,
            numero,
            utilisateur,
            422,
            erreurs=_erreurs_ouverture(exc),
            saisie={"commentaire": commentaire, "champs": champs or []},
        )
    async with unit_of_work(request.app.state.sessions_lecture) as session:
        demande = await charger_demande(session, numero)
        try:
            await svc.verifier_ouvrable(session, demande)
        except Conflit as exc:
            refuser(request, "ouvrir", exc.message)
            return _redirection(f"/demandes/{numero}#demander-modification")
        modification_numero = await svc.prochain_numero(session, demande)
        siret = (await session.get_one(Operateur, demande.operateur_id)).siret
        denomination = demande.operateur_denomination
    maintenant = datetime.now(FUSEAU_PARIS)
    # The dates the workflow will set when it opens now (it computes them the same way).
    contexte = ContexteCourriel(
        demande_numero=numero,
        modification_numero=modification_numero,
        denomination=denomination,
        siret=siret,
        commentaire=commentaire_net,
        champs_attendus=champs_nets,
        ouverte_le=maintenant,
        relance_le=maintenant + settings.RELANCE_APRES,
        expire_le=maintenant + settings.EXPIRATION_APRES,
        lien=f"{settings.PORTAIL_URL.rstrip('/')}/demandes/{numero}",
    )
    return page(
        request,
        "gestion/apercu_ouverture.html",
        numero=numero,
        modification_numero=modification_numero,
        courriel=rendre_courriel(TypeCourriel.INVITATION, contexte),
        commentaire=commentaire_net,
        champs=champs_nets,
    )


@router.post("/demandes/{numero}/modifications", dependencies=[sess.CsrfDep])
async def ouvrir(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    commentaire: Annotated[str, Form()] = "",
    champs: Annotated[list[str] | None, Form()] = None,
) -> Response:
    corps = api_demandes.OuvertureModification(commentaire=commentaire, champs=champs or [])
    try:
        ouverte = await api_demandes.ouvrir_modification(
            numero,
            corps,
            utilisateur,
            request.app.state.sessions,
            _settings(request),
            request.app.state.temporal,
            Response(),
        )
    except DonneesInvalides as exc:
        return await _page_demande(
            request,
            numero,
            utilisateur,
            422,
            erreurs=_erreurs_ouverture(exc),
            saisie={"commentaire": commentaire, "champs": champs or []},
        )
    except Conflit as exc:
        refuser(request, "ouvrir", exc.message)
        return _redirection(f"/demandes/{numero}#demander-modification")
    annoncer(
        request,
        "Demande de modification envoyée",
        f"La modification {ouverte.numero} est ouverte : l'opérateur est invité par courriel à modifier sa demande.",
    )
    return _redirection(f"/demandes/{numero}")


# --- Prolonger, retirer ---


async def _modification_ouverte(request: Request, numero: str) -> Any:
    async with unit_of_work(request.app.state.sessions_lecture) as session:
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
) -> api_modifications.CorpsRetrait | Response:
    """The withdrawal's reason, or the request page with the error beside the field: one check
    for the confirmation step and for the action."""
    if not motif.strip():
        return await _erreur_action(
            request, utilisateur, numero, "motif", "Le champ « Motif » est obligatoire.", {"motif": motif}
        )
    try:
        return api_modifications.CorpsRetrait(motif=motif)
    except ValueError:
        return await _erreur_action(
            request,
            utilisateur,
            numero,
            "motif",
            "Le champ « Motif » ne doit pas dépasser 2 000 caractères.",
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
    return await _page_demande(
        request,
        demande_numero,
        utilisateur,
        422,
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
    corps = api_modifications.CorpsProlongation.model_validate({"expire_le": echeance.isoformat()})
    try:
        await api_modifications.prolonger(numero, corps, utilisateur, _appel(request))
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
        motif=retrait.motif.strip(),
    )


@router.post("/modifications/{numero}/retirer", dependencies=[sess.CsrfDep])
async def retirer(
    request: Request,
    numero: str,
    utilisateur: sess.GestionnairePortailDep,
    motif: Annotated[str, Form()] = "",
) -> Response:
    demande_numero = svc.numero_demande_de(numero)
    corps = await _lire_retrait(request, utilisateur, numero, motif)
    if isinstance(corps, Response):
        return corps
    try:
        await api_modifications.retirer(numero, utilisateur, _appel(request), corps)
    except (DonneesInvalides, Conflit) as exc:
        refuser(request, "retirer", exc.message)
        return _redirection(f"/demandes/{demande_numero}#retirer")
    annoncer(
        request,
        "Demande de modification retirée",
        f"La modification {numero} est retirée : la demande repasse au statut « En cours ».",
    )
    return _redirection(f"/demandes/{demande_numero}")


def _appel(request: Request) -> api_modifications._Appel:
    return api_modifications._Appel(
        request.app.state.sessions, request.app.state.temporal, _settings(request)
    )


# --- La file de travail ---

PAR_PAGE = 50
# An open modification this close to its deadline stands out in the queue (and says so).
BIENTOT = timedelta(hours=48)
STATUTS_FILTRE = {
    "": "Tous",
    StatutDemande.EN_COURS.value: "En cours",
    StatutDemande.A_MODIFIER.value: "A modifier",
}
RELANCEE_FILTRE = {"": "Peu importe", "oui": "Oui", "non": "Non"}


def _filtres(parametres: Mapping[str, str]) -> tuple[lecture.FiltresFile, int, list[dict[str, str]]]:
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
    numero_page = parametres.get("page", "1")
    page_voulue = int(numero_page) if numero_page.isdigit() and 0 < int(numero_page) <= 100_000 else 1
    filtres = lecture.FiltresFile(
        statut=StatutDemande(statut) if statut else None,
        echeance_avant=echeance_avant,
        relancee={"oui": True, "non": False}.get(relancee),
        recherche=parametres.get("recherche", "")[:200],
    )
    return filtres, page_voulue, erreurs


async def file_de_travail(request: Request, session: AsyncSession) -> Response:
    """`/demandes` for a gestionnaire (the route is the operator's list's: one URL, two views),
    in the page's read transaction `session`."""
    parametres = dict(request.query_params)
    filtres, numero_page, erreurs = _filtres(parametres)
    liste = await lecture.file_de_travail(session, filtres, PAR_PAGE, (numero_page - 1) * PAR_PAGE)
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
    )
