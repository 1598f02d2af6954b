"""Routes of the operators' reports of an error or omission: the operator reports on its own
request while it is « en cours »; anyone who may read the request reads its reports; the
gestionnaires list the reports waiting and answer that no modification is needed (the operator
is told by e-mail). Opening a modification from a report is the portal's (its form pre-filled):
the API's client opens it with POST /demandes/{numero}/modifications."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field
from sqlmodel import col, select

from modif_solde.api.demandes import NumeroDemande
from modif_solde.api.deps import (
    GestionnaireDep,
    OperateurDep,
    SessionDep,
    SessionsDep,
    SettingsDep,
    UtilisateurDep,
)
from modif_solde.db import unit_of_work
from modif_solde.models.regles import SCHEMA_ELEMENTS_ATTENDUS, schema_texte_multiligne
from modif_solde.models.tables import Demande, Modification, Signalement
from modif_solde.models.types import maintenant
from modif_solde.services import signalements as svc
from modif_solde.services.demandes import charger_demande
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.modifications import CHAMPS_ATTENDUS_POSSIBLES

router = APIRouter(tags=["signalements"])

IdSignalement = Annotated[int, Path(ge=1, le=2**31 - 1, description="Identifiant du signalement")]


class NouveauSignalement(BaseModel):
    # Typed Any: the service checks them and names each broken rule in French; the schema
    # states the same rules for clients.
    description: Any = Field(
        description=f"Ce qui est erroné ou manquant (texte, {svc.DESCRIPTION_MAX} caractères au plus)",
        examples=["J'ai oublié de joindre le guide de l'API."],
        json_schema_extra=schema_texte_multiligne(svc.DESCRIPTION_MAX),
    )
    champs: Any = Field(
        description=f"Les éléments concernés, parmi : {', '.join(CHAMPS_ATTENDUS_POSSIBLES)}",
        examples=[["pieces"]],
        json_schema_extra=SCHEMA_ELEMENTS_ATTENDUS,
    )


class ReponseSansSuite(BaseModel):
    reponse: Any = Field(
        description=f"Pourquoi aucune modification n'est nécessaire (texte, {svc.REPONSE_MAX} caractères au plus), "
        "envoyé par courriel à l'opérateur",
        examples=["Le téléphone déclaré est bien celui du support : rien à modifier."],
        json_schema_extra=schema_texte_multiligne(svc.REPONSE_MAX),
    )


class SignalementVue(BaseModel):
    id: int
    demande: str = Field(examples=["FINMSS009266"])
    statut: Literal["nouveau", "modification_ouverte", "sans_suite"]
    description: str
    champs: list[str]
    cree_le: datetime
    traite_le: datetime | None
    reponse: str | None = Field(
        description="La réponse du gestionnaire quand aucune modification n'est nécessaire"
    )
    modification: str | None = Field(description="La modification ouverte à partir du signalement")


class ListeSignalements(BaseModel):
    signalements: list[SignalementVue]


def _vue(s: Signalement, demande: str, modification: str | None) -> SignalementVue:
    return SignalementVue(
        id=s.id or 0,
        demande=demande,
        statut=s.statut,
        description=s.description,
        champs=list(s.champs),
        cree_le=s.cree_le,
        traite_le=s.traite_le,
        reponse=s.reponse,
        modification=modification,
    )


def _requete() -> Any:
    return (
        select(Signalement, Demande.numero, Modification.numero)
        .join(Demande, col(Demande.id) == Signalement.demande_id)
        .outerjoin(Modification, col(Modification.id) == Signalement.modification_id)
        .order_by(col(Signalement.cree_le).desc(), col(Signalement.id).desc())
    )


@router.post(
    "/demandes/{numero}/signalements",
    status_code=status.HTTP_201_CREATED,
    response_model=SignalementVue,
    summary="Signaler une erreur ou un oubli sur sa demande (tant qu'elle est « en cours »)",
    operation_id="signaler_erreur",
)
async def signaler(
    numero: NumeroDemande, corps: NouveauSignalement, operateur: OperateurDep, session: SessionDep
) -> SignalementVue:
    s = await svc.signaler(
        session, numero, operateur.siret, corps.description, corps.champs, operateur.sub, maintenant()
    )
    return _vue(s, numero, None)


@router.get(
    "/demandes/{numero}/signalements",
    response_model=ListeSignalements,
    summary="Les signalements d'une demande et leur issue, du plus récent au plus ancien",
    operation_id="lister_signalements_demande",
)
async def lister_de_la_demande(
    numero: NumeroDemande, utilisateur: UtilisateurDep, session: SessionDep
) -> ListeSignalements:
    await charger_demande(session, numero, utilisateur.perimetre_siret)
    lignes = (await session.exec(_requete().where(Demande.numero == numero))).all()
    return ListeSignalements(signalements=[_vue(s, d, m) for s, d, m in lignes])


@router.get(
    "/signalements",
    response_model=ListeSignalements,
    summary="Les signalements des opérateurs (par défaut, ceux en attente d'un gestionnaire)",
    operation_id="lister_signalements",
)
async def lister(
    _: GestionnaireDep,
    session: SessionDep,
    statut: Annotated[
        Literal["nouveau", "modification_ouverte", "sans_suite"], Query(description="Filtrer par issue")
    ] = "nouveau",
    limite: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ListeSignalements:
    lignes = (await session.exec(_requete().where(Signalement.statut == statut).limit(limite))).all()
    return ListeSignalements(signalements=[_vue(s, d, m) for s, d, m in lignes])


@router.post(
    "/signalements/{signalement_id}/sans-suite",
    response_model=SignalementVue,
    summary="Répondre qu'aucune modification n'est nécessaire (l'opérateur en est informé par courriel)",
    operation_id="repondre_sans_suite",
)
async def repondre_sans_suite(
    signalement_id: IdSignalement,
    corps: ReponseSansSuite,
    gestionnaire: GestionnaireDep,
    sessions: SessionsDep,
    settings: SettingsDep,
) -> SignalementVue:
    le = maintenant()
    async with unit_of_work(sessions) as session:
        courriel = await svc.repondre_sans_suite(
            session, signalement_id, corps.reponse, gestionnaire.sub, le, settings.PORTAIL_URL
        )
        s = await session.get_one(Signalement, signalement_id)
        demande = await session.get_one(Demande, s.demande_id)
        vue = _vue(s, demande.numero, None)
    assert courriel.id is not None
    await svc.envoyer(sessions, ExpediteurSmtp(settings.SMTP_URL), settings.MAIL_FROM, courriel.id, le)
    return vue
