"""Routes of /modifications: the draft, its documents, and the workflow's updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Header, Path, Response, UploadFile, status
from pydantic import BaseModel, Field

from modif_solde.api.deps import (
    CycleDep,
    GestionnaireDep,
    OperateurDep,
    SessionDep,
    SessionsDep,
    UtilisateurDep,
)
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models import vues
from modif_solde.models.corps import CorpsProlongation, CorpsRetrait
from modif_solde.models.enums import TypePieceAjoutable
from modif_solde.models.schemas import ChangementsBrouillon
from modif_solde.models.tables import Demande, Modification
from modif_solde.models.utilisateur import Utilisateur
from modif_solde.services import idempotence, lecture
from modif_solde.services import modifications as svc

router = APIRouter(prefix="/modifications", tags=["modifications"])

NumeroModification = Annotated[
    str, Path(description="Numéro de la modification", examples=["FINMSS009266M1"])
]

_MORCEAU = 64 * 1024

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="L'ETag du brouillon lu (ou `*`) : l'action est refusée (412) si le brouillon a "
        "changé depuis. Sans cet en-tête, la dernière écriture l'emporte.",
        examples=['"3"'],
    ),
]
_ETAG = {
    "ETag": {
        "description": "La version du brouillon, à renvoyer dans If-Match",
        "schema": {"type": "string", "examples": ['"3"']},
    }
}
_PERIME: dict[int | str, dict[str, Any]] = {
    412: {"description": "Le brouillon a changé depuis sa lecture (If-Match)"}
}


async def _cycle_actif(numero: str, utilisateur: UtilisateurDep, cycle: CycleDep) -> None:
    """Before the draft or its documents are written (and before their body is read): the
    modification's workflow must be running if it is open (services/cycle.py)."""
    await cycle.exiger_cycle_actif_si_ouverte(numero, utilisateur.perimetre_siret)


CycleActifDep = Annotated[None, Depends(_cycle_actif)]


def etag(modification: Modification) -> str:
    return f'"{modification.brouillon_version}"'


def version_attendue(if_match: str | None) -> int | None:
    """If-Match: `*` or absent sets no condition; a tag that is not one of ours (a weak one
    included: If-Match compares strongly) matches no version."""
    if if_match is None or if_match.strip() == "*":
        return None
    valeur = if_match.strip()
    if len(valeur) > 2 and valeur[0] == valeur[-1] == '"' and valeur[1:-1].isdigit():
        return int(valeur[1:-1])
    return -1


EXEMPLES_BROUILLON = {
    "telephone": {
        "summary": "Corriger le téléphone du contact support",
        "value": {"contact_support_telephone": "06 12 34 56 78"},
    },
    "contact_et_lien": {
        "summary": "Contact et lien de documentation",
        "value": {
            "contact_support_nom": "DUPONT Marie",
            "contact_support_courriel": "support@sci-voiture.fr",
            "site_documentation_url": "https://docs.sci-voiture.fr",
        },
    },
}


@router.get(
    "/{numero}",
    response_model=vues.ModificationVue,
    summary="La modification et son brouillon",
    operation_id="consulter_modification",
    responses={200: {"description": "La modification", "headers": _ETAG}},
)
async def consulter(
    numero: NumeroModification, utilisateur: UtilisateurDep, session: SessionDep, response: Response
) -> vues.ModificationVue:
    modification = await svc.charger_modification(session, numero, utilisateur.perimetre_siret)
    response.headers["ETag"] = etag(modification)
    return await lecture.modification_vue(session, modification, interne=utilisateur.voit_interne)


@router.patch(
    "/{numero}/brouillon",
    response_model=vues.ModificationVue,
    summary="Modifier le brouillon",
    operation_id="modifier_brouillon",
    responses={200: {"description": "Le brouillon enregistré", "headers": _ETAG}, **_PERIME},
)
async def modifier_brouillon(
    numero: NumeroModification,
    changements: Annotated[
        ChangementsBrouillon,
        Body(
            description="Un ou plusieurs des champs modifiables ; tout autre champ est refusé (422).",
            openapi_examples=EXEMPLES_BROUILLON,
        ),
    ],
    operateur: OperateurDep,
    _cycle: CycleActifDep,
    session: SessionDep,
    cycle: CycleDep,
    response: Response,
    if_match: IfMatch = None,
) -> vues.ModificationVue:
    modification = await cycle.modifier_brouillon(
        numero, operateur.siret, changements.root, version_attendue(if_match), session
    )
    response.headers["ETag"] = etag(modification)
    return await lecture.modification_vue(session, modification, interne=operateur.voit_interne)


class AjoutPiece(BaseModel):
    """Une pièce ajoutée à la modification : son type et le document PDF (multipart)."""

    type: TypePieceAjoutable = Field(description="Le type de la pièce")
    # `binary`: generated clients send it as a file part.
    fichier: UploadFile = Field(description="Le document PDF", json_schema_extra={"format": "binary"})


@router.post(
    "/{numero}/pieces",
    status_code=status.HTTP_201_CREATED,
    response_model=vues.PieceVue,
    summary="Ajouter une pièce (PDF)",
    operation_id="ajouter_piece",
)
async def ajouter_piece(
    numero: NumeroModification,
    corps: Annotated[AjoutPiece, Form(media_type="multipart/form-data")],
    operateur: OperateurDep,
    _cycle: CycleActifDep,
    session: SessionDep,
    cycle: CycleDep,
    response: Response,
) -> vues.PieceVue:
    type, fichier = corps.type, corps.fichier

    async def morceaux() -> AsyncIterator[bytes]:
        while morceau := await fichier.read(_MORCEAU):
            yield morceau

    piece = await cycle.ajouter_piece(
        numero, operateur.siret, type, fichier.filename or "piece.pdf", morceaux(), session
    )
    demande = await session.get_one(Demande, piece.demande_id)
    response.headers["Location"] = f"/api/v1/demandes/{demande.numero}/pieces/{piece.id}"
    modification = await svc.charger_modification(session, numero)
    assert modification.id is not None
    return lecture.piece_vue(piece, demande.numero, {modification.id: numero}, modification.id)


@router.delete(
    "/{numero}/pieces/{piece_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Supprimer une pièce ajoutée pendant la modification",
    operation_id="supprimer_piece",
)
async def supprimer_piece(
    numero: NumeroModification,
    piece_id: str,
    operateur: OperateurDep,
    _cycle: CycleActifDep,
    session: SessionDep,
    cycle: CycleDep,
) -> Response:
    await cycle.supprimer_piece(numero, operateur.siret, piece_id, session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


CleIdempotence = Annotated[
    str | None,
    Header(
        alias=idempotence.ENTETE,
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Une clé choisie par le client pour cette action (un UUID, par exemple) : "
        "la même action renvoyée avec la même clé reçoit la même réponse, sans être refaite, même "
        "après un 503. Une clé déjà donnée à une autre action (ou à une autre modification, ou avec "
        "un autre contenu) est refusée (409).",
        examples=["3f2b8c1e-5d4a-4f7e-9a0b-1c2d3e4f5a6b"],
    ),
]


async def _vue(sessions: SessionFactory, numero: str, utilisateur: Utilisateur) -> vues.ModificationVue:
    """The modification as the update left it (read after the workflow's answer)."""
    async with unit_of_work(sessions) as session:
        modification = await svc.charger_modification(session, numero)
        return await lecture.modification_vue(session, modification, interne=utilisateur.voit_interne)


@router.post(
    "/{numero}/confirmer",
    response_model=vues.ModificationVue,
    summary="Confirmer : appliquer le brouillon",
    operation_id="confirmer_modification",
    responses=_PERIME,
)
async def confirmer(
    numero: NumeroModification,
    operateur: OperateurDep,
    cycle: CycleDep,
    sessions: SessionsDep,
    if_match: IfMatch = None,
    cle: CleIdempotence = None,
) -> vues.ModificationVue:
    await cycle.confirmer(numero, operateur, version_attendue(if_match), cle)
    return await _vue(sessions, numero, operateur)


@router.post(
    "/{numero}/renoncer",
    response_model=vues.ModificationVue,
    summary="Renoncer à modifier",
    operation_id="renoncer_modification",
)
async def renoncer(
    numero: NumeroModification,
    operateur: OperateurDep,
    cycle: CycleDep,
    sessions: SessionsDep,
    cle: CleIdempotence = None,
) -> vues.ModificationVue:
    await cycle.renoncer(numero, operateur, cle)
    return await _vue(sessions, numero, operateur)


@router.post(
    "/{numero}/retirer",
    response_model=vues.ModificationVue,
    summary="Retirer la demande de modification",
    operation_id="retirer_modification",
)
async def retirer(
    numero: NumeroModification,
    gestionnaire: GestionnaireDep,
    cycle: CycleDep,
    sessions: SessionsDep,
    corps: Annotated[CorpsRetrait, Body(default_factory=CorpsRetrait)],
    cle: CleIdempotence = None,
) -> vues.ModificationVue:
    await cycle.retirer(numero, gestionnaire, corps.motif, cle)
    return await _vue(sessions, numero, gestionnaire)


@router.post(
    "/{numero}/prolonger",
    response_model=vues.ModificationVue,
    summary="Repousser l'échéance",
    operation_id="prolonger_modification",
)
async def prolonger(
    numero: NumeroModification,
    corps: CorpsProlongation,
    gestionnaire: GestionnaireDep,
    cycle: CycleDep,
    sessions: SessionsDep,
    cle: CleIdempotence = None,
) -> vues.ModificationVue:
    await cycle.prolonger(numero, gestionnaire, corps.expire_le, cle)
    return await _vue(sessions, numero, gestionnaire)
