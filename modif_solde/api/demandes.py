"""Routes of /demandes: import, list, request page, e-mails, documents, opening a modification."""

from __future__ import annotations

import json
import logging
from pathlib import Path as Path_
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Body, Path, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import select

from modif_solde.api.auth import Role, Utilisateur
from modif_solde.api.deps import (
    GestionnaireDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    StockageDep,
    TemporalDep,
    UtilisateurDep,
)
from modif_solde.api.problemes import STATUTS, Probleme
from modif_solde.api.workflow import appeler
from modif_solde.db import unit_of_work
from modif_solde.models import vues
from modif_solde.models.enums import StatutDemande
from modif_solde.models.schemas import DemandeImport
from modif_solde.models.tables import Operateur, Piece
from modif_solde.services import lecture
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import charger_demande, importer_demande
from modif_solde.services.erreurs import ErreurDomaine, Introuvable
from modif_solde.temporal import demarrer_modification
from modif_solde.workflows.contrat import ModificationEntree

router = APIRouter(prefix="/demandes", tags=["demandes"])
journal = logging.getLogger(__name__)


def _exemple_import() -> dict[str, Any]:
    exemple: dict[str, Any] = json.loads(
        (Path_(__file__).parents[1] / "demo" / "demande-FINMSS009266.json").read_text()
    )
    exemple["pieces"] = exemple["pieces"][:1]
    return exemple


EXEMPLES_IMPORT = {"exemple": {"summary": "La demande de l'exemple du portail", "value": _exemple_import()}}

NumeroDemande = Annotated[str, Path(description="Numéro de la demande de solde", examples=["FINMSS009266"])]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=vues.DemandePage,
    summary="Importer une demande de solde",
    operation_id="importer_demande",
)
async def importer(
    donnees: Annotated[
        DemandeImport,
        Body(
            description="La demande au format d'import (pièces en base64)", openapi_examples=EXEMPLES_IMPORT
        ),
    ],
    utilisateur: UtilisateurDep,
    session: SessionDep,
    stockage: StockageDep,
    response: Response,
) -> vues.DemandePage:
    try:
        verifier_siret_importe(utilisateur, donnees)
        demande = await importer_demande(session, stockage, donnees)
    except (Probleme, ErreurDomaine) as exc:
        noter_import_refuse(utilisateur, donnees.numero, exc)
        raise
    response.headers["Location"] = f"/api/v1/demandes/{demande.numero}"
    return await lecture.page_demande(session, demande, interne=utilisateur.voit_interne)


def verifier_siret_importe(utilisateur: Utilisateur, donnees: DemandeImport) -> None:
    if utilisateur.role == Role.OPERATEUR and donnees.operateur.siret != utilisateur.siret:
        raise Probleme(403, "Un opérateur ne peut importer que les demandes de son propre SIRET.")


def noter_import_refuse(utilisateur: Utilisateur, numero: str, refus: Probleme | ErreurDomaine) -> None:
    """Every refused import in the log, with its caller. The answer to a number already recorded
    cannot hide that it exists (the import's 409 is the contract), and says the same words
    whoever holds it: the log is where someone trying number after number shows."""
    if isinstance(refus, Probleme):
        statut, motif = refus.statut, refus.detail
    else:
        statut = next((s for cls, s in STATUTS.items() if isinstance(refus, cls)), 409)
        motif = refus.message
    journal.warning(
        "import refusé : %s",
        motif,
        extra={
            "numero": numero,
            "appelant": utilisateur.sub,
            "role": utilisateur.role.value,
            "siret": utilisateur.siret,
            "statut": statut,
        },
    )


def en_json(vue: BaseModel) -> Response:
    """The read model serialized once, by pydantic, straight to JSON (the route's
    `response_model` still states it in the schema): the same bytes FastAPI would answer,
    without its second pass (the model to dicts, checked again, then dumped)."""
    return Response(vue.model_dump_json(), media_type="application/json")


@router.get(
    "",
    response_model=vues.ListeDemandes,
    summary="Lister les demandes (file de travail)",
    operation_id="lister_demandes",
)
async def lister(
    utilisateur: UtilisateurDep,
    session: SessionDep,
    statut: Annotated[StatutDemande | None, Query(description="Filtrer par statut")] = None,
    limite: Annotated[int, Query(ge=1, le=500)] = 100,
    decalage: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    return en_json(await lecture.liste(session, statut, utilisateur.perimetre_siret, limite, decalage))


@router.get(
    "/{numero}",
    response_model=vues.DemandePage,
    summary="La page de la demande",
    operation_id="consulter_demande",
)
async def consulter(numero: NumeroDemande, utilisateur: UtilisateurDep, session: SessionDep) -> Response:
    lu = await lecture.lire_demande(
        session, numero, utilisateur.perimetre_siret, interne=utilisateur.voit_interne
    )
    return en_json(lu.vue)


Limite = Annotated[
    int, Query(ge=1, le=lecture.LIMITE_PAGE_MAX, description="Le nombre d'éléments de la page au plus")
]
_CURSEUR = "Le `suivant` de la page précédente ; absent pour la première page"
CurseurCourriels = Annotated[
    str | None, Query(pattern=lecture.CURSEUR_COURRIELS, description=_CURSEUR, examples=["42"])
]
CurseurHistorique = Annotated[
    str | None, Query(pattern=lecture.CURSEUR_HISTORIQUE, description=_CURSEUR, examples=["2-17"])
]


@router.get(
    "/{numero}/courriels",
    response_model=vues.PageCourriels,
    summary="Courriels automatiques envoyés (page par page, du plus ancien au plus récent)",
    operation_id="lister_courriels",
)
async def lister_courriels(
    numero: NumeroDemande,
    utilisateur: UtilisateurDep,
    session: SessionDep,
    limite: Limite = lecture.LIMITE_PAGE,
    curseur: CurseurCourriels = None,
) -> Response:
    demande = await charger_demande(session, numero, utilisateur.perimetre_siret)
    return en_json(
        await lecture.courriels(
            session, demande, interne=utilisateur.voit_interne, limite=limite, curseur=curseur
        )
    )


@router.get(
    "/{numero}/historique",
    response_model=vues.PageHistorique,
    summary="Historique des versions (page par page, de la version 1 à la dernière)",
    operation_id="lister_historique",
)
async def lister_historique(
    numero: NumeroDemande,
    utilisateur: UtilisateurDep,
    session: SessionDep,
    limite: Limite = lecture.LIMITE_PAGE,
    curseur: CurseurHistorique = None,
) -> Response:
    demande = await charger_demande(session, numero, utilisateur.perimetre_siret)
    return en_json(await lecture.historique(session, demande, limite=limite, curseur=curseur))


@router.get(
    "/{numero}/pieces/{piece_id}",
    operation_id="telecharger_piece",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/pdf": {}}, "description": "Le contenu de la pièce"}},
    summary="Télécharger une pièce",
)
async def telecharger(
    numero: NumeroDemande,
    piece_id: str,
    utilisateur: UtilisateurDep,
    session: SessionDep,
    stockage: StockageDep,
) -> StreamingResponse:
    demande = await charger_demande(session, numero, utilisateur.perimetre_siret)
    piece = (
        await session.exec(select(Piece).where(Piece.id == piece_id, Piece.demande_id == demande.id))
    ).first()
    if piece is None:
        raise Introuvable(f"La pièce {piece_id} est introuvable.")
    taille = await stockage.taille(piece.cle_stockage)
    if taille is None:
        raise Introuvable(f"Le fichier de la pièce {piece_id} est introuvable.")
    # Streamed from the store (folder or S3) to the client, never whole in memory.
    return StreamingResponse(
        stockage.lire_flux(piece.cle_stockage),
        media_type=piece.type_contenu,
        headers={
            "Content-Length": str(taille),
            # The user's name is only ever a display name: ASCII fallback plus RFC 5987 UTF-8 form.
            "Content-Disposition": _disposition(piece.nom_fichier),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


def _disposition(nom: str) -> str:
    ascii_seul = (
        "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in nom) or "piece.pdf"
    )
    return f"attachment; filename=\"{ascii_seul}\"; filename*=UTF-8''{quote(nom, safe='')}"


# Multi-line text: at least one visible character, no control character but tab and line feed.
_LIGNE = r"(?:[^\x00-\x08\x0b-\x1f\x7f\u2028\u2029]|\r\n)*"
COMMENTAIRE_MOTIF = f"^{_LIGNE}[^\\s\\x00-\\x1f\\x7f]{_LIGNE}$"


class OuvertureModification(BaseModel):
    # Typed Any: the service checks them and names each broken rule in French; the schema
    # states the same rules for clients.
    commentaire: Any = Field(
        description="Le commentaire du gestionnaire : ce qui doit être corrigé (texte, 4 000 caractères au plus)",
        examples=["Le numéro de téléphone du contact support ne correspond pas à la pièce justificative."],
        json_schema_extra={
            "type": "string",
            "minLength": 1,
            "maxLength": svc.COMMENTAIRE_MAX,
            "pattern": COMMENTAIRE_MOTIF,
        },
    )
    champs: Any = Field(
        description=f"Les éléments attendus, parmi : {', '.join(svc.CHAMPS_ATTENDUS_POSSIBLES)}",
        examples=[["contact_support_telephone"]],
        json_schema_extra={
            "type": "array",
            "minItems": 1,
            "items": {"type": "string", "enum": list(svc.CHAMPS_ATTENDUS_POSSIBLES)},
        },
    )


class ModificationOuverte(BaseModel):
    numero: str = Field(examples=["FINMSS009266M1"])
    statut: str = Field(examples=["ouverte"])
    relance_le: Any
    expire_le: Any


@router.post(
    "/{numero}/modifications",
    status_code=status.HTTP_201_CREATED,
    response_model=ModificationOuverte,
    summary="Ouvrir une modification (la demande passe « à modifier »)",
    operation_id="ouvrir_modification",
)
async def ouvrir_modification(
    numero: NumeroDemande,
    corps: OuvertureModification,
    gestionnaire: GestionnaireDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    client: TemporalDep,
    response: Response,
) -> ModificationOuverte:
    commentaire, champs = svc.verifier_ouverture(corps.commentaire, corps.champs)
    async with unit_of_work(sessions) as session:
        demande = await charger_demande(session, numero)
        # Early 409 before starting a workflow; the opening activity checks again under lock.
        await svc.verifier_ouvrable(session, demande)
        modification_numero = await svc.prochain_numero(session, demande)
        siret = (await session.get_one(Operateur, demande.operateur_id)).siret
    # The opening itself is the workflow's activity, outside this (closed) transaction.
    entree = ModificationEntree(
        demande_numero=numero,
        modification_numero=modification_numero,
        commentaire=commentaire,
        champs=champs,
        ouverte_par=gestionnaire.sub,
        relance_apres=settings.RELANCE_APRES,
        expiration_apres=settings.EXPIRATION_APRES,
    )
    etat = await appeler(
        demarrer_modification(client, settings.TASK_QUEUE, entree, siret),
        settings.DELAI_REPONSE_WORKFLOW,
        modification_numero,
    )
    response.headers["Location"] = f"/api/v1/modifications/{modification_numero}"
    return ModificationOuverte(
        numero=modification_numero,
        statut=etat.statut or "ouverte",
        relance_le=etat.relance_le,
        expire_le=etat.expire_le,
    )
