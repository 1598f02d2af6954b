"""The operator's pages: its requests, the request page, the modification page, the import.

Thin routes over the same services and workflow updates as the API (services/, api/workflow.py):
every guarantee of the API holds here the same way."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.api import demandes as api_demandes
from modif_solde.api.auth import Role, Utilisateur
from modif_solde.api.limites import taille_lisible
from modif_solde.api.problemes import Probleme
from modif_solde.api.workflow import appeler, exiger_cycle_actif_si_ouverte, mise_a_jour
from modif_solde.config import Settings
from modif_solde.db import unit_of_work
from modif_solde.models import vues
from modif_solde.models.enums import CHAMPS_EDITABLES, StatutModification
from modif_solde.pages import gestionnaire as gestion_pages
from modif_solde.pages import session as sess
from modif_solde.pages.rendu import LIBELLES, annoncer, fragment, page
from modif_solde.services import lecture
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.erreurs import (
    BrouillonPerime,
    Conflit,
    DonneesInvalides,
    ErreurDomaine,
    Introuvable,
    PieceTropGrande,
    TypeDeContenuRefuse,
)
from modif_solde.workflows.contrat import ActionOperateur
from modif_solde.workflows.modification import ModificationWorkflow

router = APIRouter(include_in_schema=False)

_MORCEAU = 64 * 1024


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _redirection(chemin: str) -> RedirectResponse:
    return RedirectResponse(chemin, status_code=303)


@router.get("/")
async def accueil(request: Request) -> Response:
    if await sess.session_active(request) is not None:
        return _redirection("/demandes")
    return page(request, "accueil.html")


@router.get("/demandes")
async def mes_demandes(request: Request, lu: sess.LecturePortailDep) -> Response:
    if lu.utilisateur.role == Role.GESTIONNAIRE:
        return await gestion_pages.file_de_travail(request, lu.session)
    liste = await lecture.liste(lu.session, None, lu.utilisateur.perimetre_siret, 500, 0)
    # Those waiting for the operator first, the nearest deadline first; then the others.
    a_modifier = sorted(
        (d for d in liste.demandes if d.modification_ouverte),
        key=lambda d: d.modification_ouverte.expire_le if d.modification_ouverte else d.statut_modifie_le,
    )
    autres = [d for d in liste.demandes if not d.modification_ouverte]
    return page(request, "demandes.html", demandes=[*a_modifier, *autres], gestionnaire=False)


@router.get("/demandes/importer")
async def importer_formulaire(request: Request, utilisateur: sess.OperateurPortailDep) -> Response:
    return page(request, "importer.html", erreurs=[])


@router.post("/demandes/importer", dependencies=[sess.CsrfDep])
async def importer(
    request: Request,
    utilisateur: sess.OperateurPortailDep,
    fichier: Annotated[UploadFile | None, File()] = None,
) -> Response:
    erreurs: list[dict[str, str]] = []
    if fichier is None or not fichier.filename:
        erreurs = [{"champ": "fichier", "message": "Choisissez le fichier JSON de la demande."}]
    else:
        # The import file is the API's import document: the same cap (the body's envelope aside).
        taille_max = _settings(request).IMPORT_TAILLE_MAX
        brut = await fichier.read(taille_max + 1)
        if len(brut) > taille_max:
            erreurs = [
                {
                    "champ": "fichier",
                    "message": f"Le fichier dépasse la taille maximale ({taille_lisible(taille_max)}).",
                }
            ]
    if not erreurs:
        try:
            donnees = lire_import(brut)
            try:
                api_demandes.verifier_siret_importe(utilisateur, donnees)
                async with unit_of_work(request.app.state.sessions) as session:
                    demande = await importer_demande(session, request.app.state.stockage, donnees)
                    numero = demande.numero
            except (Probleme, ErreurDomaine) as exc:
                api_demandes.noter_import_refuse(utilisateur, donnees.numero, exc)
                raise
        except DonneesInvalides as exc:
            erreurs = exc.erreurs or [{"champ": "fichier", "message": exc.message}]
        except Probleme as exc:
            erreurs = [{"champ": "fichier", "message": exc.detail}]
        except ErreurDomaine as exc:
            erreurs = [{"champ": "fichier", "message": exc.message}]
    if erreurs:
        return page(request, "importer.html", statut=422, erreurs=erreurs)
    annoncer(request, "Demande importée", f"La demande {numero} a été importée.")
    return _redirection(f"/demandes/{numero}")


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
        async with unit_of_work(request.app.state.sessions_lecture) as session:
            return await rendre_demande(request, numero, utilisateur, statut, session, **extra)
    lu = await lecture.lire_demande(
        session,
        numero,
        utilisateur.perimetre_siret,
        interne=utilisateur.voit_interne,
        avec_tours=gestionnaire,
    )
    vue = lu.vue
    gestion = gestion_pages.contexte_gestion(request, lu.tours) if gestionnaire else {}
    return page(
        request,
        "demande.html",
        statut=statut,
        d=vue,
        m=vue.modification_ouverte,
        versions=_versions(vue),
        gestionnaire=gestionnaire,
        relance_apres=_settings(request).RELANCE_APRES.days,
        expiration_apres=_settings(request).EXPIRATION_APRES.days,
        **{"erreurs": [], "saisie": {}, **gestion, **extra},
    )


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
    async with unit_of_work(request.app.state.sessions_lecture) as session:
        # The API's own route, called as a function: one path for a document's download.
        return await api_demandes.telecharger(
            numero, piece_id, utilisateur, session, request.app.state.stockage
        )


async def _contexte_modification(
    request: Request, utilisateur: Utilisateur, numero: str, session: AsyncSession | None = None
) -> dict[str, Any]:
    """The modification page's content; `session`: the page's read transaction, if open."""
    if session is None:
        async with unit_of_work(request.app.state.sessions_lecture) as session:
            return await _contexte_modification(request, utilisateur, numero, session)
    try:
        lu = await lecture.lire_demande(
            session,
            svc.numero_demande_de(numero),
            utilisateur.perimetre_siret,
            interne=utilisateur.voit_interne,
            modification=numero,
        )
    except Introuvable:
        raise Introuvable(f"La modification {numero} est introuvable.") from None
    d, m = lu.vue, lu.modification
    assert m is not None
    brouillon = {c.champ: c for c in m.changements}
    return {
        "m": m,
        "d": d,
        "brouillon": brouillon,
        "actuelles": d.informations.model_dump(),
        "valeurs": {
            c: (brouillon[c].nouvelle_valeur if c in brouillon else getattr(d.informations, c))
            for c in CHAMPS_EDITABLES
        },
        "modifiable": m.statut == StatutModification.OUVERTE and utilisateur.role == Role.OPERATEUR,
        "gestionnaire": utilisateur.role == Role.GESTIONNAIRE,
        "champs": CHAMPS_EDITABLES,
        "libelles": LIBELLES,
    }


@router.get("/modifications/{numero}")
async def modification_page(request: Request, numero: str, lu: sess.LecturePortailDep) -> Response:
    contexte = await _contexte_modification(request, lu.utilisateur, numero, lu.session)
    return page(request, "modification.html", erreurs=[], erreurs_piece=[], **contexte)


@router.post("/modifications/{numero}/brouillon", dependencies=[sess.CsrfDep])
async def enregistrer(
    request: Request,
    numero: str,
    utilisateur: sess.OperateurPortailDep,
    contact_support_nom: Annotated[str, Form()] = "",
    contact_support_telephone: Annotated[str, Form()] = "",
    contact_support_courriel: Annotated[str, Form()] = "",
    site_documentation_url: Annotated[str, Form()] = "",
    brouillon_version: Annotated[int | None, Form()] = None,
) -> Response:
    saisie = {
        "contact_support_nom": contact_support_nom.strip() or None,
        "contact_support_telephone": contact_support_telephone,
        "contact_support_courriel": contact_support_courriel,
        "site_documentation_url": site_documentation_url,
    }
    champ = _champ_change(request)
    if champ is not None:
        return await _enregistrer_champ(request, numero, utilisateur, saisie, champ, brouillon_version)
    await exiger_cycle_actif_si_ouverte(request, numero, utilisateur.siret)
    try:
        async with unit_of_work(request.app.state.sessions) as session:
            await svc.mettre_a_jour_brouillon(session, numero, saisie, utilisateur.siret, brouillon_version)
    except BrouillonPerime:
        # Another tab (or person) saved the draft since this form was shown: nothing is
        # overwritten; the page shows the draft as it is now.
        _annoncer_perime(request)
        return _redirection(f"/modifications/{numero}")
    except DonneesInvalides as exc:
        contexte = await _contexte_modification(request, utilisateur, numero)
        # The person's own input stays in the fields, beside what is wrong with it.
        contexte["valeurs"] = {c: saisie[c] or "" for c in CHAMPS_EDITABLES}
        return page(
            request,
            "modification.html",
            statut=422,
            erreurs=[_erreur_du_champ(e) for e in exc.erreurs],
            erreurs_piece=[],
            **contexte,
        )
    annoncer(request, "Modifications enregistrées", "Elles seront appliquées quand vous confirmerez.")
    return _redirection(f"/modifications/{numero}")


def _annoncer_perime(request: Request) -> None:
    annoncer(
        request,
        "Brouillon modifié entre-temps",
        "Le brouillon a été enregistré ailleurs depuis l'affichage de cette page (un autre onglet ?) : "
        "rien n'a été changé. Voici le brouillon tel qu'il est ; refaites vos modifications si besoin.",
        "error",
    )


def _champ_change(request: Request) -> str | None:
    """The field htmx saves as it changes (its request names it), or None for Enregistrer."""
    nom = request.headers.get("HX-Trigger-Name")
    if request.headers.get("HX-Request") == "true" and nom in CHAMPS_EDITABLES:
        return nom
    return None


async def _enregistrer_champ(
    request: Request,
    numero: str,
    utilisateur: Utilisateur,
    saisie: dict[str, str | None],
    champ: str,
    version: int | None,
) -> Response:
    """A field saved as it changes (JavaScript on): the answer is that field's group in its new
    state, with the draft's new version and the way to confirm swapped out of band.

    The whole form is saved when it is valid; otherwise the changed field alone is, if it is
    valid itself (a mistake in another field does not hold it back), and the confirmation
    stays closed while any field is wrong, as after Enregistrer."""
    erreurs: dict[str, str] = {}
    try:
        await exiger_cycle_actif_si_ouverte(request, numero, utilisateur.siret)
        try:
            async with unit_of_work(request.app.state.sessions) as session:
                await svc.mettre_a_jour_brouillon(session, numero, saisie, utilisateur.siret, version)
        except DonneesInvalides as exc:
            for e in map(_erreur_du_champ, exc.erreurs):
                erreurs.setdefault(e["champ"], e["message"])
            if champ not in erreurs:
                async with unit_of_work(request.app.state.sessions) as session:
                    await svc.mettre_a_jour_brouillon(
                        session, numero, {champ: saisie[champ]}, utilisateur.siret, version
                    )
    except BrouillonPerime:
        _annoncer_perime(request)
        return _recharger(f"/modifications/{numero}")
    except (Probleme, ErreurDomaine) as exc:
        # The modification closed, expired or its cycle stopped meanwhile: the whole page says so.
        titre, detail = (exc.titre, exc.detail) if isinstance(exc, Probleme) else (exc.titre, exc.message)
        annoncer(request, titre, detail, "error")
        return _recharger(f"/modifications/{numero}")
    contexte = await _contexte_modification(request, utilisateur, numero)
    valeur = saisie[champ] if champ in erreurs else contexte["valeurs"][champ]
    return fragment(
        request,
        "brouillon_champ.html",
        statut=422 if champ in erreurs else 200,
        champ_saisi=champ,
        valeur=valeur or "",
        erreur=erreurs.get(champ),
        bloquee=bool(erreurs),
        **contexte,
    )


def _recharger(chemin: str) -> Response:
    """htmx loads the whole page (with its message) instead of swapping a fragment."""
    return Response(status_code=200, headers={"HX-Redirect": chemin})


def _erreur_du_champ(erreur: dict[str, str]) -> dict[str, str]:
    """The service names a field by its path (`informations.contact_support_courriel`): on the
    page the error sits beside that field, and its message says the field's label."""
    chemin = erreur["champ"]
    champ = chemin.rsplit(".", 1)[-1]
    message = erreur["message"].replace(f"« {chemin} »", f"« {LIBELLES.get(champ, champ)} »")
    return {"champ": champ, "message": message}


@router.post("/modifications/{numero}/pieces", dependencies=[sess.CsrfDep])
async def importer_piece(
    request: Request,
    numero: str,
    utilisateur: sess.OperateurPortailDep,
    type: Annotated[str, Form()] = "",
    fichier: Annotated[UploadFile | None, File()] = None,
) -> Response:
    settings = _settings(request)
    await exiger_cycle_actif_si_ouverte(request, numero, utilisateur.siret)
    erreurs: list[dict[str, str]] = []
    if not type:
        erreurs.append({"champ": "type", "message": "Sélectionnez le type de pièce complémentaire."})
    if fichier is None or not fichier.filename:
        erreurs.append({"champ": "fichier", "message": "Choisissez le fichier à ajouter (PDF)."})
    if not erreurs and fichier is not None:
        televerse = fichier

        async def morceaux() -> AsyncIterator[bytes]:
            while morceau := await televerse.read(_MORCEAU):
                yield morceau

        try:
            async with unit_of_work(request.app.state.sessions) as session:
                piece = await svc.ajouter_piece(
                    session,
                    request.app.state.stockage,
                    numero,
                    type,
                    televerse.filename,
                    morceaux(),
                    settings.PIECE_TAILLE_MAX,
                    utilisateur.siret,
                    settings.PIECES_MAX_PAR_MODIFICATION,
                )
                nom = piece.nom_fichier
        except DonneesInvalides as exc:
            erreurs = [
                {"champ": e["champ"] if e["champ"] == "type" else "fichier", "message": e["message"]}
                for e in exc.erreurs
            ] or [{"champ": "fichier", "message": exc.message}]
        except (PieceTropGrande, TypeDeContenuRefuse, Conflit) as exc:
            erreurs = [{"champ": "fichier", "message": exc.message}]
    if erreurs:
        contexte = await _contexte_modification(request, utilisateur, numero)
        return page(request, "modification.html", statut=422, erreurs=[], erreurs_piece=erreurs, **contexte)
    annoncer(request, "Pièce ajoutée", f"La pièce {nom} a été ajoutée à votre modification.")
    return _redirection(f"/modifications/{numero}#pieces")


@router.post("/modifications/{numero}/pieces/{piece_id}/supprimer", dependencies=[sess.CsrfDep])
async def supprimer_piece(
    request: Request, numero: str, piece_id: str, utilisateur: sess.OperateurPortailDep
) -> Response:
    await exiger_cycle_actif_si_ouverte(request, numero, utilisateur.siret)
    try:
        async with unit_of_work(request.app.state.sessions) as session:
            await svc.supprimer_piece(
                session, request.app.state.stockage, numero, piece_id, utilisateur.siret
            )
    except Conflit as exc:
        annoncer(request, "Suppression impossible", exc.message, "error")
        return _redirection(f"/modifications/{numero}#pieces")
    annoncer(request, "Pièce supprimée")
    return _redirection(f"/modifications/{numero}#pieces")


_ACTIONS = {
    "confirmer": (
        ModificationWorkflow.confirmer,
        "Modification confirmée",
        "Votre demande repasse au statut « En cours » et sera instruite par un gestionnaire dans les prochains jours.",
    ),
    "renoncer": (
        ModificationWorkflow.renoncer,
        "Demande laissée sans modification",
        "Votre demande repasse au statut « En cours » et sera instruite en l'état dans les prochains jours.",
    ),
}


@router.get("/modifications/{numero}/{action}")
async def etape_confirmation(
    request: Request, numero: str, action: str, utilisateur: sess.OperateurPortailDep
) -> Response:
    if action not in _ACTIONS:
        raise Probleme(404, "Page introuvable.")
    contexte = await _contexte_modification(request, utilisateur, numero)
    if not contexte["modifiable"]:
        return _redirection(f"/modifications/{numero}")
    return page(request, f"{action}.html", **contexte)


@router.post("/modifications/{numero}/{action}", dependencies=[sess.CsrfDep])
async def agir(
    request: Request,
    numero: str,
    action: str,
    utilisateur: sess.OperateurPortailDep,
    brouillon_version: Annotated[int | None, Form()] = None,
) -> Response:
    if action not in _ACTIONS:
        raise Probleme(404, "Page introuvable.")
    methode, titre, texte = _ACTIONS[action]
    settings = _settings(request)
    async with unit_of_work(request.app.state.sessions) as session:
        modification = await svc.charger_modification(session, numero, utilisateur.siret)
        demande_numero = svc.numero_demande_de(modification.numero)
    # Confirm only the draft the person reviewed on the confirmation step (as If-Match does).
    argument: BaseModel = ActionOperateur(
        par=utilisateur.sub, version_brouillon=brouillon_version if action == "confirmer" else None
    )
    try:
        await appeler(
            mise_a_jour(request.app.state.temporal, numero, methode, argument),
            settings.DELAI_REPONSE_WORKFLOW,
            numero,
            ouverte_en_base=modification.statut == StatutModification.OUVERTE,
        )
    except BrouillonPerime:
        annoncer(
            request,
            "Confirmation impossible",
            "Le brouillon a changé depuis que vous l'avez vérifié (un autre onglet ?) : rien n'a été confirmé. "
            "Vérifiez-le à nouveau avant de confirmer.",
            "error",
        )
        return _redirection(f"/modifications/{numero}")
    except (DonneesInvalides, Conflit) as exc:
        titre_refus = "Confirmation impossible" if action == "confirmer" else "Action impossible"
        annoncer(request, titre_refus, exc.message, "error")
        return _redirection(f"/modifications/{numero}")
    annoncer(request, titre, texte)
    return _redirection(f"/demandes/{demande_numero}")
