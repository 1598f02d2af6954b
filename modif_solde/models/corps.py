"""The bodies of the gestionnaire's actions (open, withdraw, extend), for the API's schema and
the pages' forms alike, built from the rules of models/regles.py."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

from modif_solde.formats import nombre_fr
from modif_solde.models.regles import (
    CHAMPS_ATTENDUS_POSSIBLES,
    COMMENTAIRE_MAX,
    MOTIF_RETRAIT_MAX,
    SCHEMA_ELEMENTS_ATTENDUS,
    schema_texte_multiligne,
)


class OuvertureModification(BaseModel):
    # Typed Any: the service checks them and names each broken rule in French; the schema
    # states the same rules for clients.
    commentaire: Any = Field(
        description="Le commentaire du gestionnaire : ce qui doit être corrigé "
        f"(texte, {nombre_fr(COMMENTAIRE_MAX)} caractères au plus)",
        examples=["Le numéro de téléphone du contact support ne correspond pas à la pièce justificative."],
        json_schema_extra=schema_texte_multiligne(COMMENTAIRE_MAX),
    )
    champs: Any = Field(
        description=f"Les éléments attendus, parmi : {', '.join(CHAMPS_ATTENDUS_POSSIBLES)}",
        examples=[["contact_support_telephone"]],
        json_schema_extra=SCHEMA_ELEMENTS_ATTENDUS,
    )


class CorpsRetrait(BaseModel):
    motif: str = Field(
        default="",
        max_length=MOTIF_RETRAIT_MAX,
        description="Pourquoi la demande de modification est retirée",
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
