"""Routes of /demandes: import, list, request page, e-mails, documents, opening a modification."""

from __future__ import annotations

import json
from pathlib import Path as Path_
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from modif_solde.api.deps import (
    CycleDep,
    GestionnaireDep,
    SessionDep,
    StockageDep,
    UtilisateurDep,
)
from modif_solde.models import vues
from modif_solde.models.corps import OuvertureModification
from modif_solde.models.enums import StatutDemande
from modif_solde.models.schemas import DemandeImport
from modif_solde.services import lecture
from modif_solde.services.demandes import charger_demande
from modif_solde.web.telechargement import telecharger_piece

router = APIRouter(prefix="/demandes", tags=["demandes"])


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
    cycle: CycleDep,
    response: Response,
) -> vues.DemandePage:
    demande = await cycle.importer(utilisateur, donnees, session)
    response.headers["Location"] = f"/api/v1/demandes/{demande.numero}"
    return await lecture.page_demande(session, demande, interne=utilisateur.voit_interne)


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
    # One path for a document's download, the portal's included (web/telechargement.py).
    return await telecharger_piece(session, stockage, numero, piece_id, utilisateur.perimetre_siret)


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
    cycle: CycleDep,
    response: Response,
) -> ModificationOuverte:
    modification_numero, etat = await cycle.ouvrir(numero, corps.commentaire, corps.champs, gestionnaire)
    response.headers["Location"] = f"/api/v1/modifications/{modification_numero}"
    return ModificationOuverte(
        numero=modification_numero,
        statut=etat.statut or "ouverte",
        relance_le=etat.relance_le,
        expire_le=etat.expire_le,
    )
