"""GET /pilotage: the steering figures over a period, for gestionnaires (services/pilotage.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from modif_solde.api.deps import GestionnaireDep, SessionDep
from modif_solde.services import pilotage

router = APIRouter(prefix="/pilotage", tags=["pilotage"])


@router.get(
    "",
    response_model=pilotage.Pilotage,
    operation_id="lire_pilotage",
    summary="Les chiffres du pilotage sur une période",
    description=(
        "Sur la période (jours de Paris, `du` et `au` compris ; le mois en cours par défaut) : les "
        "modifications ouvertes, closes par issue, le délai de réponse de l'opérateur (médiane et "
        "9e décile, en jours), les réponses avant et après la relance, les courriels abandonnés par "
        "type ; et, maintenant, les modifications ouvertes par jours restants. Réservé aux gestionnaires."
    ),
)
async def lire_pilotage(
    _gestionnaire: GestionnaireDep,
    session: SessionDep,
    du: Annotated[
        str | None,
        Query(
            description="Premier jour (AAAA-MM-JJ) ; seul, jusqu'à la fin de son mois",
            examples=["2026-03-01"],
            json_schema_extra={"format": "date"},
        ),
    ] = None,
    au: Annotated[
        str | None,
        Query(
            description="Dernier jour, compris (AAAA-MM-JJ) ; seul, depuis le début de son mois",
            examples=["2026-03-31"],
            json_schema_extra={"format": "date"},
        ),
    ] = None,
) -> pilotage.Pilotage:
    return await pilotage.lire_pilotage(session, pilotage.lire_periode(du, au, vide_absent=False))
