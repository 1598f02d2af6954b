"""Routes of /modifications: the draft, its documents, and the workflow's updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Form, Header, Path, Response, UploadFile, status
from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from modif_solde.api.deps import (
    GestionnaireDep,
    OperateurDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    StockageDep,
    TemporalDep,
    UtilisateurDep,
)
from modif_solde.api.workflow import CycleActifDep, appeler, mise_a_jour
from modif_solde.db import unit_of_work
from modif_solde.models import vues
from modif_solde.models.enums import StatutModification, TypePieceAjoutable
from modif_solde.models.schemas import ChangementsBrouillon
from modif_solde.models.tables import Demande, Modification
from modif_solde.services import idempotence, lecture
from modif_solde.services import modifications as svc
from modif_solde.workflows.contrat import ActionOperateur, Prolongation, Retrait
from modif_solde.workflows.modification import ModificationWorkflow

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
    response: Response,
    if_match: IfMatch = None,
) -> vues.ModificationVue:
    modification = await svc.mettre_a_jour_brouillon(
        session, numero, changements.root, operateur.siret, version_attendue(if_match)
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
    stockage: StockageDep,
    settings: SettingsDep,
    response: Response,
) -> vues.PieceVue:
    type, fichier = corps.type, corps.fichier

    async def morceaux() -> AsyncIterator[bytes]:
        while morceau := await fichier.read(_MORCEAU):
            yield morceau

    piece = await svc.ajouter_piece(
        session,
        stockage,
        numero,
        type,
        fichier.filename or "piece.pdf",
        morceaux(),
        settings.PIECE_TAILLE_MAX,
        operateur.siret,
        settings.PIECES_MAX_PAR_MODIFICATION,
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
    stockage: StockageDep,
) -> Response:
    await svc.supprimer_piece(session, stockage, numero, piece_id, operateur.siret)
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


class _Appel:
    """What every update route does: 404 for a modification the caller may not see (before
    asking the workflow anything), the idempotency key recorded, the update within the bounded
    wait, then the persisted view."""

    def __init__(self, sessions: SessionsDep, client: TemporalDep, settings: SettingsDep) -> None:
        self.sessions, self.client, self.settings = sessions, client, settings

    async def __call__(
        self,
        numero: str,
        siret: str | None,
        methode: Any,
        argument: BaseModel,
        champ: str = "corps",
        cle: str | None = None,
        par: str = "",
    ) -> vues.ModificationVue:
        action: str = methode.__name__
        async with unit_of_work(self.sessions) as session:
            modification = await svc.charger_modification(session, numero, siret)
            if cle is not None:
                await idempotence.reserver(session, cle, numero, action, par, argument)
        await appeler(
            mise_a_jour(self.client, numero, methode, argument, idempotence.id_mise_a_jour(action, cle)),
            self.settings.DELAI_REPONSE_WORKFLOW,
            numero,
            champ,
            ouverte_en_base=modification.statut == StatutModification.OUVERTE,
        )
        async with unit_of_work(self.sessions) as session:
            modification = await svc.charger_modification(session, numero)
            # An operator's routes scope by SIRET; a gestionnaire's (no SIRET) read everything.
            return await lecture.modification_vue(session, modification, interne=siret is None)


AppelDep = Annotated[_Appel, Depends(_Appel)]


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
    appel: AppelDep,
    if_match: IfMatch = None,
    cle: CleIdempotence = None,
) -> vues.ModificationVue:
    action = ActionOperateur(par=operateur.sub, version_brouillon=version_attendue(if_match))
    return await appel(
        numero, operateur.siret, ModificationWorkflow.confirmer, action, cle=cle, par=operateur.sub
    )


@router.post(
    "/{numero}/renoncer",
    response_model=vues.ModificationVue,
    summary="Renoncer à modifier",
    operation_id="renoncer_modification",
)
async def renoncer(
    numero: NumeroModification, operateur: OperateurDep, appel: AppelDep, cle: CleIdempotence = None
) -> vues.ModificationVue:
    return await appel(
        numero,
        operateur.siret,
        ModificationWorkflow.renoncer,
        ActionOperateur(par=operateur.sub),
        cle=cle,
        par=operateur.sub,
    )


class CorpsRetrait(BaseModel):
    motif: str = Field(
        default="", max_length=2000, description="Pourquoi la demande de modification est retirée"
    )


@router.post(
    "/{numero}/retirer",
    response_model=vues.ModificationVue,
    summary="Retirer la demande de modification",
    operation_id="retirer_modification",
)
async def retirer(
    numero: NumeroModification,
    gestionnaire: GestionnaireDep,
    appel: AppelDep,
    corps: Annotated[CorpsRetrait, Body(default_factory=CorpsRetrait)],
    cle: CleIdempotence = None,
) -> vues.ModificationVue:
    retrait = Retrait(par=gestionnaire.sub, motif=corps.motif.strip())
    return await appel(
        numero, None, ModificationWorkflow.retirer, retrait, champ="motif", cle=cle, par=gestionnaire.sub
    )


def _date_en_texte(valeur: Any) -> Any:
    # Pydantic would read a number as a Unix timestamp: the contract says an ISO 8601 string.
    if not isinstance(valeur, str):
        raise ValueError("doit être une date ISO 8601 avec fuseau (exemple : 2027-01-15T23:59:00+01:00)")
    return valeur


class CorpsProlongation(BaseModel):
    expire_le: Annotated[AwareDatetime, BeforeValidator(_date_en_texte)] = Field(
        description="La nouvelle échéance, ISO 8601 avec fuseau", examples=["2027-01-15T23:59:00+01:00"]
    )


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
    appel: AppelDep,
    cle: CleIdempotence = None,
) -> vues.ModificationVue:
    prolongation = Prolongation(expire_le=corps.expire_le, par=gestionnaire.sub)
    return await appel(
        numero,
        None,
        ModificationWorkflow.prolonger,
        prolongation,
        champ="expire_le",
        cle=cle,
        par=gestionnaire.sub,
    )
