"""Payloads: the import format (its field names are the contract) and the draft's fields.

Both are built from the same rules (`regles`), so a value accepted at import is accepted in a
draft and the other way round.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from modif_solde.models.regles import (
    Bic,
    Courriel,
    Iban,
    Montant,
    NombreBal,
    NomContactOptionnel,
    Siret,
    Telephone,
    UrlWeb,
    classe_espaces,
    classe_interdite,
    sans_caracteres_de_controle,
    texte,
)

NUMERO_DEMANDE = r"^FINMSS\d{6}$"
TYPE_PIECE = r"^[A-Za-z0-9_]{1,64}$"
PIECES_MAX = 50
PDF_MAGIC = b"%PDF-"
# The "other" type names no request: the guide shows `AUTRE_S` alone.
TYPES_PIECE_SANS_NUMERO = frozenset({"AUTRE_S"})


def type_affiche(type_piece: str, demande_numero: str) -> str:
    """A document's type as the portal shows it: `MSS_RESU_TEST_TECH_FINMSS009266`, `AUTRE_S`."""
    if type_piece in TYPES_PIECE_SANS_NUMERO:
        return type_piece
    return f"{type_piece}_{demande_numero}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=100_000_000)


class AdresseImport(Strict):
    ligne: texte(max_length=200)  # type: ignore[valid-type]
    code_postal: Annotated[str, Field(pattern=r"^\d{5}$")]
    commune: texte(max_length=100)  # type: ignore[valid-type]


class OperateurImport(Strict):
    siret: Siret
    numero_ans: texte(max_length=50)  # type: ignore[valid-type]
    denomination: texte(max_length=200)  # type: ignore[valid-type]
    adresse: AdresseImport
    courriel: Courriel


class InformationsEditables(Strict):
    """The four fields an operator may change, under the same rules as at import."""

    contact_support_nom: NomContactOptionnel = None
    contact_support_telephone: Telephone
    contact_support_courriel: Courriel
    site_documentation_url: UrlWeb


def schema_changements_brouillon(schema: dict[str, Any]) -> None:
    """The draft's body as the service reads it: one or more of the editable fields, nothing
    else, each under the import's rules (read as an object, so that the service names every
    broken rule in French)."""
    schema.clear()
    schema.update(
        title="ChangementsBrouillon",
        description="Un ou plusieurs des champs modifiables ; tout autre champ est refusé (422).",
        type="object",
        minProperties=1,
        additionalProperties=False,
        properties=InformationsEditables.model_json_schema()["properties"],
    )


class ChangementsBrouillon(RootModel[dict[str, Any]]):
    """The draft's body, a named schema for the OpenAPI document (see `schema_changements_brouillon`)."""

    model_config = ConfigDict(json_schema_extra=schema_changements_brouillon)


class BalImport(Strict):
    applicatives: NombreBal
    organisationnelles: NombreBal
    nominatives: NombreBal


class MontantsImport(Strict):
    avance: Montant
    engagement_solde: Montant
    solde: Montant

    @field_validator("solde")
    @classmethod
    def _solde_egal_engagement_moins_avance(cls, solde: Decimal, info: ValidationInfo) -> Decimal:
        avance, engagement = info.data.get("avance"), info.data.get("engagement_solde")
        if avance is not None and engagement is not None and solde != engagement - avance:
            raise PydanticCustomError(
                "regle",
                "doit être égal à engagement_solde − avance ({attendu})",
                {"attendu": str(engagement - avance)},
            )
        return solde


class CoordonneesBancairesImport(Strict):
    titulaire: texte(max_length=200)  # type: ignore[valid-type]
    iban: Iban
    bic: Bic


def taille_max_pieces() -> int:
    from modif_solde.config import get_settings

    return get_settings().PIECE_TAILLE_MAX


def verifier_pdf(contenu: bytes) -> bytes:
    """Accepted by content, not by name: a PDF starts with %PDF- (within its first 1 KiB)."""
    if PDF_MAGIC not in contenu[:1024]:
        raise PydanticCustomError("regle", "doit être un document PDF (contenu non reconnu)")
    return contenu


def _decoder_base64(valeur: Any) -> bytes:
    if not isinstance(valeur, str):
        raise PydanticCustomError("regle", "doit être une chaîne base64")
    limite = taille_max_pieces()
    if len(valeur) > (limite * 4) // 3 + 8:
        raise PydanticCustomError(
            "regle", "dépasse la taille maximale d'une pièce ({limite} octets)", {"limite": limite}
        )
    try:
        contenu = base64.b64decode(valeur, validate=True)
    except (binascii.Error, ValueError):
        raise PydanticCustomError("regle", "n'est pas un contenu base64 valide") from None
    if not contenu:
        raise PydanticCustomError("regle", "est vide")
    if len(contenu) > limite:
        raise PydanticCustomError(
            "regle", "dépasse la taille maximale d'une pièce ({limite} octets)", {"limite": limite}
        )
    return verifier_pdf(contenu)


NOM_FICHIER_MAX = 255


def nom_de_fichier(valeur: Any) -> Any:
    """Keep only the last path component of a user's file name; it is shown, never used as a path.
    The name as given is bounded too (the schema's `maxLength`)."""
    if isinstance(valeur, str):
        if len(valeur) > NOM_FICHIER_MAX:
            raise PydanticCustomError(
                "regle", "ne doit pas dépasser {max} caractères", {"max": NOM_FICHIER_MAX}
            )
        valeur = valeur.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return valeur


def schema_nom_de_fichier(schema: dict[str, Any]) -> None:
    """What `nom_de_fichier` keeps must be a text: the last component has a visible character."""
    interdits, separateurs = classe_interdite(), r"/\\"
    dernier = f"[^{interdits}{separateurs}]*"
    schema["pattern"] = (
        f"^(?:[^{interdits}]*[{separateurs}])?{dernier}[^{interdits}{classe_espaces()}{separateurs}]{dernier}$"
    )


NomFichier = Annotated[
    str,
    BeforeValidator(nom_de_fichier),
    Field(min_length=1, max_length=NOM_FICHIER_MAX, json_schema_extra=schema_nom_de_fichier),
    AfterValidator(sans_caracteres_de_controle),
]
# A PDF in base64: it starts with `%PDF-` (`JVBERi0`), in whole groups of four characters.
MOTIF_PDF_BASE64 = r"^JVBERi0[A-Za-z0-9+/](?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class PieceImport(Strict):
    nom_fichier: NomFichier
    type: Annotated[str, Field(pattern=TYPE_PIECE)]
    contenu_base64: Annotated[
        bytes,
        BeforeValidator(_decoder_base64),
        WithJsonSchema(
            {
                "type": "string",
                "contentEncoding": "base64",
                "contentMediaType": "application/pdf",
                "pattern": MOTIF_PDF_BASE64,
            }
        ),
    ]


class DemandeImport(Strict):
    """A balance request in the import format (`examples/demande-FINMSS009266.json`)."""

    numero: Annotated[str, Field(pattern=NUMERO_DEMANDE)]
    date_depot: date
    operateur: OperateurImport
    dsr: texte(max_length=100)  # type: ignore[valid-type]
    informations: InformationsEditables
    bal: BalImport
    montants: MontantsImport
    coordonnees_bancaires: CoordonneesBancairesImport
    pieces: list[PieceImport] = Field(default_factory=list, max_length=PIECES_MAX)
