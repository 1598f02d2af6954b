"""The operator's pages: the modification page (its draft, its documents, confirm or renounce)
and the import.

Thin routes over the same use cases as the API (services/cycle.py): every guarantee of the API
holds here the same way; the refusals are shown beside their fields (pages/erreurs.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.db import unit_of_work
from modif_solde.formats import taille_lisible
from modif_solde.models.enums import CHAMPS_EDITABLES, StatutModification
from modif_solde.models.utilisateur import Role, Utilisateur
from modif_solde.pages import erreurs as erreurs_page
from modif_solde.pages import etat
from modif_solde.pages import session as sess
from modif_solde.pages.rendu import LIBELLES, annoncer, fragment, page
from modif_solde.services import attendus, lecture
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import lire_import
from modif_solde.services.erreurs import (
    BrouillonPerime,
    Conflit,
    DonneesInvalides,
    ErreurDomaine,
    Introuvable,
    PieceTropGrande,
    TypeDeContenuRefuse,
)
from modif_solde.web.problemes import Probleme

router = APIRouter(include_in_schema=False)

_MORCEAU = 64 * 1024


def _redirection(chemin: str) -> RedirectResponse:
    return RedirectResponse(chemin, status_code=303)


@router.get("/")
async def accueil(request: Request) -> Response:
    if await sess.session_active(request) is not None:
        return _redirection("/demandes")
    return page(request, "accueil.html")


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
        taille_max = etat.reglages(request).IMPORT_TAILLE_MAX
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
            numero = (await etat.cycle(request).importer(utilisateur, lire_import(brut))).numero
        except ErreurDomaine as exc:
            erreurs = erreurs_page.de_l_import(exc)
    if erreurs:
        return page(request, "importer.html", statut=422, erreurs=erreurs)
    annoncer(request, "Demande importée", f"La demande {numero} a été importée.")
    return _redirection(f"/demandes/{numero}")


async def _contexte_modification(
    request: Request, utilisateur: Utilisateur, numero: str, session: AsyncSession | None = None
) -> dict[str, Any]:
    """The modification page's content; `session`: the page's read transaction, if open."""
    if session is None:
        async with unit_of_work(etat.lecture_seule(request)) as session:
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
        # Each changed field's value from before the round: for an open round, the request's;
        # once confirmed, the request holds the new value and the round's changes keep the old.
        "actuelles": d.informations.model_dump() | {c: v.valeur_actuelle for c, v in brouillon.items()},
        "attendus": attendus.etat(m.champs_attendus, brouillon, len(m.pieces_ajoutees)),
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
    try:
        await etat.cycle(request).modifier_brouillon(numero, utilisateur.siret, saisie, brouillon_version)
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
            erreurs=erreurs_page.du_brouillon(exc),
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
    cycle = etat.cycle(request)
    try:
        try:
            await cycle.modifier_brouillon(numero, utilisateur.siret, saisie, version)
        except DonneesInvalides as exc:
            for e in erreurs_page.du_brouillon(exc):
                erreurs.setdefault(e["champ"], e["message"])
            if champ not in erreurs:
                # The cycle was checked for the whole form: the field alone, in a transaction of its own.
                async with unit_of_work(etat.ecriture(request)) as session:
                    await cycle.modifier_brouillon(
                        numero, utilisateur.siret, {champ: saisie[champ]}, version, session
                    )
    except BrouillonPerime:
        _annoncer_perime(request)
        return _recharger(f"/modifications/{numero}")
    except ErreurDomaine as exc:
        # The modification closed, expired or its cycle stopped meanwhile: the whole page says so.
        annoncer(request, exc.titre, exc.message, "error")
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


@router.post("/modifications/{numero}/pieces", dependencies=[sess.CsrfDep])
async def importer_piece(
    request: Request,
    numero: str,
    utilisateur: sess.OperateurPortailDep,
    type: Annotated[str, Form()] = "",
    fichier: Annotated[UploadFile | None, File()] = None,
) -> Response:
    cycle = etat.cycle(request)
    # The cycle first, before the form is looked at (as the API's dependency does).
    await cycle.exiger_cycle_actif_si_ouverte(numero, utilisateur.siret)
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
            async with unit_of_work(etat.ecriture(request)) as session:
                piece = await cycle.ajouter_piece(
                    numero, utilisateur.siret, type, televerse.filename, morceaux(), session
                )
                nom = piece.nom_fichier
        except (DonneesInvalides, PieceTropGrande, TypeDeContenuRefuse, Conflit) as exc:
            erreurs = erreurs_page.de_la_piece(exc)
    if erreurs:
        contexte = await _contexte_modification(request, utilisateur, numero)
        return page(request, "modification.html", statut=422, erreurs=[], erreurs_piece=erreurs, **contexte)
    annoncer(request, "Pièce ajoutée", f"La pièce {nom} a été ajoutée à votre modification.")
    return _redirection(f"/modifications/{numero}#pieces")


@router.post("/modifications/{numero}/pieces/{piece_id}/supprimer", dependencies=[sess.CsrfDep])
async def supprimer_piece(
    request: Request, numero: str, piece_id: str, utilisateur: sess.OperateurPortailDep
) -> Response:
    cycle = etat.cycle(request)
    # The cycle is checked outside: a stopped one is the error page, not this message.
    await cycle.exiger_cycle_actif_si_ouverte(numero, utilisateur.siret)
    try:
        async with unit_of_work(etat.ecriture(request)) as session:
            await cycle.supprimer_piece(numero, utilisateur.siret, piece_id, session)
    except Conflit as exc:
        annoncer(request, "Suppression impossible", exc.message, "error")
        return _redirection(f"/modifications/{numero}#pieces")
    annoncer(request, "Pièce supprimée")
    return _redirection(f"/modifications/{numero}#pieces")


_ACTIONS = {
    "confirmer": (
        "Modification confirmée",
        "Votre demande repasse au statut « En cours » et sera instruite par un gestionnaire dans les prochains jours.",
    ),
    "renoncer": (
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
    titre, texte = _ACTIONS[action]
    cycle = etat.cycle(request)
    try:
        if action == "confirmer":
            # Confirm only the draft the person reviewed on the confirmation step (as If-Match does).
            await cycle.confirmer(numero, utilisateur, brouillon_version)
        else:
            await cycle.renoncer(numero, utilisateur)
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
    return _redirection(f"/demandes/{svc.numero_demande_de(numero)}")
