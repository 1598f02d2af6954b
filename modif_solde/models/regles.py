"""The rules shared by import and by the modification draft: one definition per kind of value.

Each rule is a pydantic-annotated type; a model built from them reports every broken rule at
once, and `erreurs_en_francais` turns pydantic's report into one French message per field,
named by its contract path (`informations.contact_support_telephone`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import siret as stdnum_siret

from modif_solde.models.enums import CHAMPS_EDITABLES, StatutDemande, StatutModification

# French numbers: metropolitan France and the overseas departments and collectivities.
REGIONS_TELEPHONE_FR = frozenset({"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF"})
# Those whose numbers are typed nationally with a leading 0 (0262 40 12 34, 041 12 34).
REGIONS_NATIONALES_0 = ("FR", "RE", "YT", "GP", "MQ", "GF", "BL", "MF", "PM")
# The Pacific collectivities: own plans without trunk prefix, typed in international form.
REGIONS_SANS_PREFIXE = frozenset({"NC", "PF", "WF"})
MONTANT_MAX = Decimal("100000000.00")
# What `sans_caracteres_de_controle` refuses: control and format characters, line and paragraph
# separators.
CATEGORIES_INTERDITES = frozenset({"Cc", "Cf", "Zl", "Zp"})
SIRET_CHIFFRES = 14
# ISO 13616: two letters, two check digits, then up to 30 characters (15 in all at least).
IBAN_LONGUEUR_MIN, IBAN_LONGUEUR_MAX = 15, 34
BIC_LONGUEUR_MIN, BIC_LONGUEUR_MAX = 8, 11
BAL_MAX = 10_000_000
_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)

# The statuses' labels: in a sentence of a message (« la modification … est confirmée »), and as
# the portal shows them (a badge, a column).
LIBELLES_STATUT = {
    StatutModification.CONFIRMEE: "confirmée",
    StatutModification.RENONCEE: "renoncée",
    StatutModification.EXPIREE: "expirée",
    StatutModification.RETIREE: "retirée",
    StatutModification.OUVERTE: "ouverte",
}
STATUTS_DEMANDE = {StatutDemande.EN_COURS: "En cours", StatutDemande.A_MODIFIER: "A modifier"}
STATUTS_MODIFICATION = {
    StatutModification.OUVERTE: "Ouverte",
    StatutModification.CONFIRMEE: "Confirmée",
    StatutModification.RENONCEE: "Close sans modification",
    StatutModification.EXPIREE: "Expirée",
    StatutModification.RETIREE: "Retirée par le gestionnaire",
}
# What a gestionnaire may ask the operator to change: an editable field, or documents.
CHAMP_PIECES = "pieces"
CHAMPS_ATTENDUS_POSSIBLES = (*CHAMPS_EDITABLES, CHAMP_PIECES)
# The gestionnaire's texts: the opening's comment and the withdrawal's reason.
COMMENTAIRE_MAX = 4000
MOTIF_RETRAIT_MAX = 2000
# Multi-line text: line feeds and tabs allowed, other control characters not.
CONTROLE_MULTILIGNE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
# The same rule as a JSON Schema pattern, for clients: at least one visible character.
_LIGNE = r"(?:[^\x00-\x08\x0b-\x1f\x7f\u2028\u2029]|\r\n)*"
TEXTE_MULTILIGNE_MOTIF = f"^{_LIGNE}[^\\s\\x00-\\x1f\\x7f]{_LIGNE}$"


def schema_texte_multiligne(maximum: int) -> dict[str, Any]:
    """A required multi-line text as a JSON Schema states it (a body typed Any, checked by its
    service, which names each broken rule in French)."""
    return {"type": "string", "minLength": 1, "maxLength": maximum, "pattern": TEXTE_MULTILIGNE_MOTIF}


# Expected items (a gestionnaire's opening, an operator's report): one at least, each known.
SCHEMA_ELEMENTS_ATTENDUS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "string", "enum": list(CHAMPS_ATTENDUS_POSSIBLES)},
}


def _erreur(message: str) -> PydanticCustomError:
    return PydanticCustomError("regle", message)


def sans_caracteres_de_controle(valeur: str) -> str:
    """No control or format characters: a CR/LF in a name would inject e-mail headers."""
    for caractere in valeur:
        if unicodedata.category(caractere) in CATEGORIES_INTERDITES:
            raise _erreur("ne doit pas contenir de caractère de contrôle (retour à la ligne, tabulation…)")
    return valeur


def _texte(valeur: Any) -> Any:
    return valeur.strip() if isinstance(valeur, str) else valeur


def _classe(predicat: Callable[[str], bool]) -> str:
    """The code points `predicat` holds for, as the inside of a regular expression's character
    class, in ranges: `\\uXXXX` escapes within the BMP, the character itself beyond (read alike
    by Python's `re` and by ECMA-262 with the `u` flag)."""

    def ecrire(point: int) -> str:
        return f"\\u{point:04X}" if point <= 0xFFFF else chr(point)

    morceaux: list[str] = []
    debut: int | None = None
    for point in range(0x110001):
        dedans = point <= 0x10FFFF and not 0xD800 <= point <= 0xDFFF and predicat(chr(point))
        if dedans and debut is None:
            debut = point
        elif not dedans and debut is not None:
            fin = point - 1
            morceaux.append(ecrire(debut) if fin == debut else f"{ecrire(debut)}-{ecrire(fin)}")
            debut = None
    return "".join(morceaux)


@functools.cache
def classe_interdite() -> str:
    """The characters `sans_caracteres_de_controle` refuses, for a schema's pattern."""
    return _classe(lambda c: unicodedata.category(c) in CATEGORIES_INTERDITES)


@functools.cache
def classe_espaces() -> str:
    """The allowed characters a value is trimmed of (`str.strip`), for a schema's pattern."""
    return _classe(lambda c: c.isspace() and unicodedata.category(c) not in CATEGORIES_INTERDITES)


def motif_texte() -> str:
    """A trimmed single-line text: one visible character at least, none of the refused ones."""
    interdits = classe_interdite()
    return f"^[^{interdits}]*[^{interdits}{classe_espaces()}][^{interdits}]*$"


def schema_texte(schema: dict[str, Any]) -> None:
    schema["pattern"] = motif_texte()


def schema_texte_optionnel(schema: dict[str, Any]) -> None:
    schema["pattern"] = f"^[^{classe_interdite()}]*$"


def etat_dans_le_schema(**enonce: Any) -> Any:
    """What a value's rule lets a JSON Schema state (format, pattern, lengths), said where the
    rule is defined; the rule itself (checksums, numbering plans…) stays the validator's."""
    return Field(json_schema_extra=enonce)


def texte(max_length: int, min_length: int = 1) -> Any:
    """A bounded, trimmed, single-line text."""
    return Annotated[
        str,
        BeforeValidator(_texte),
        Field(min_length=min_length, max_length=max_length, json_schema_extra=schema_texte),
        AfterValidator(sans_caracteres_de_controle),
    ]


def _numero_francais(valeur: str) -> phonenumbers.PhoneNumber | None:
    """The number as typed: international (+262…, 00262…) is read as such; national (0262…)
    is tried against each territory whose plan has the 0 trunk prefix, since phonenumbers
    reads a national number as the default region's only (0262… would be a metropolitan one)."""
    compact = "".join(valeur.split())
    international = compact.startswith(("+", "00"))
    for region in ("FR",) if international else REGIONS_NATIONALES_0:
        try:
            numero = phonenumbers.parse(valeur, region)
        except phonenumbers.NumberParseException:
            continue
        attendue = phonenumbers.region_code_for_number(numero) if international else region
        if attendue is not None and phonenumbers.is_valid_number_for_region(numero, attendue):
            return numero
    return None


def normaliser_telephone(valeur: str) -> str:
    """One stored form: `0X XX XX XX XX` for the ten-digit plan (metropolitan France and the
    overseas territories that share it: 02 62 40 12 34); Saint-Pierre-et-Miquelon's national
    form (041 12 34); the international form for the Pacific collectivities (no trunk prefix)."""
    numero = _numero_francais(valeur)
    if numero is None:
        try:
            etranger = phonenumbers.parse(valeur, "FR")
        except phonenumbers.NumberParseException:
            etranger = None
        if etranger is not None and phonenumbers.is_valid_number(etranger):
            raise _erreur("doit être un numéro de téléphone français")
        raise _erreur("n'est pas un numéro de téléphone valide (exemple : 06 00 00 00 00)")
    region = phonenumbers.region_code_for_number(numero)
    if region not in REGIONS_TELEPHONE_FR:
        raise _erreur("doit être un numéro de téléphone français")
    if region in REGIONS_SANS_PREFIXE:
        return phonenumbers.format_number(numero, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = "0" + phonenumbers.national_significant_number(numero)
    if len(national) == 10:
        return " ".join(national[i : i + 2] for i in range(0, 10, 2))
    return phonenumbers.format_number(numero, phonenumbers.PhoneNumberFormat.NATIONAL)


def normaliser_courriel(valeur: str) -> str:
    try:
        return validate_email(valeur, check_deliverability=False).normalized
    except EmailNotValidError:
        raise _erreur("n'est pas une adresse électronique valide (exemple : nom@domaine.fr)") from None


def verifier_url(valeur: str) -> str:
    """An http(s) URL with a host; the value is kept as typed (no trailing slash added)."""
    if " " in valeur:
        raise _erreur("n'est pas une adresse web valide (http:// ou https://)")
    try:
        url = _HTTP_URL.validate_python(valeur)
    except ValidationError:
        raise _erreur("n'est pas une adresse web valide (http:// ou https://)") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise _erreur("n'est pas une adresse web valide (http:// ou https://)")
    return valeur


def verifier_siret(valeur: str) -> str:
    try:
        return str(stdnum_siret.validate(valeur))
    except StdnumError:
        raise _erreur(f"n'est pas un SIRET valide ({SIRET_CHIFFRES} chiffres, clé de contrôle)") from None


def normaliser_iban(valeur: str) -> str:
    try:
        return str(IBAN(valeur).compact)
    except SchwiftyException:
        raise _erreur("n'est pas un IBAN valide") from None


def normaliser_bic(valeur: str) -> str:
    try:
        return str(BIC(valeur).compact)
    except SchwiftyException:
        raise _erreur("n'est pas un BIC valide") from None


_MONTANT = re.compile(r"^\d{1,9}(\.\d{1,2})?$")


def verifier_montant(valeur: Any) -> Decimal:
    """A non-negative decimal string with at most two decimals ("6666.67")."""
    if not isinstance(valeur, str) or not _MONTANT.fullmatch(valeur):
        raise _erreur(
            'doit être un montant en chaîne décimale positive, deux décimales au plus (exemple : "6666.67")'
        )
    try:
        montant = Decimal(valeur)
    except InvalidOperation:
        raise _erreur("n'est pas un montant valide") from None
    if montant > MONTANT_MAX:
        raise _erreur(f"dépasse le montant maximal ({MONTANT_MAX})")
    return montant.quantize(Decimal("0.01"))


# Each value names its format (drawn valid by tests/api/formats_schemathesis.py) and its lengths;
# its shape is said in words: a pattern would promise values the checksum or numbering plan
# refuses. Values are trimmed before their rule, so the lengths count surrounding white space.
Telephone = Annotated[
    str,
    BeforeValidator(_texte),
    Field(max_length=40),
    etat_dans_le_schema(
        format="telephone-fr", description="Un numéro de téléphone français (exemple : 06 00 00 00 00)"
    ),
    AfterValidator(sans_caracteres_de_controle),
    AfterValidator(normaliser_telephone),
]
Courriel = Annotated[
    str,
    BeforeValidator(_texte),
    Field(max_length=254),
    etat_dans_le_schema(format="courriel", description="Une adresse électronique (exemple : nom@domaine.fr)"),
    AfterValidator(sans_caracteres_de_controle),
    AfterValidator(normaliser_courriel),
]
UrlWeb = Annotated[
    str,
    BeforeValidator(_texte),
    Field(max_length=2048),
    etat_dans_le_schema(format="url-web", description="Une adresse web en http:// ou https://"),
    AfterValidator(sans_caracteres_de_controle),
    AfterValidator(verifier_url),
]
Siret = Annotated[
    str,
    BeforeValidator(_texte),
    Field(max_length=20),
    # The minimum is the checker's (its message names the SIRET): the schema states it.
    etat_dans_le_schema(
        format="siret",
        minLength=SIRET_CHIFFRES,
        description=f"{SIRET_CHIFFRES} chiffres, clé de contrôle (Luhn)",
    ),
    AfterValidator(sans_caracteres_de_controle),
    AfterValidator(verifier_siret),
]
Iban = Annotated[
    str,
    BeforeValidator(_texte),
    Field(max_length=50),
    etat_dans_le_schema(
        format="iban",
        minLength=IBAN_LONGUEUR_MIN,
        description=f"Un IBAN ({IBAN_LONGUEUR_MIN} à {IBAN_LONGUEUR_MAX} caractères, clé de contrôle), "
        "espaces admis",
    ),
    AfterValidator(sans_caracteres_de_controle),
    AfterValidator(normaliser_iban),
]
Bic = Annotated[
    str,
    BeforeValidator(_texte),
    Field(max_length=BIC_LONGUEUR_MAX),
    etat_dans_le_schema(
        minLength=BIC_LONGUEUR_MIN,
        format="bic",
        description=f"Un BIC ({BIC_LONGUEUR_MIN} ou {BIC_LONGUEUR_MAX} caractères)",
    ),
    AfterValidator(sans_caracteres_de_controle),
    AfterValidator(normaliser_bic),
]
Montant = Annotated[
    Decimal,
    BeforeValidator(verifier_montant),
    # What verifier_montant accepts, for the OpenAPI document: a string, up to MONTANT_MAX.
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(?:\d{1,8}(?:\.\d{1,2})?|100000000(?:\.0{1,2})?)$",
            "examples": ["6666.67"],
        }
    ),
]


def _entier_json(valeur: Any) -> Any:
    """JSON Schema counts 200.0 as an integer: an integral number is one, a string is not."""
    if isinstance(valeur, float) and valeur.is_integer():
        return int(valeur)
    return valeur


NombreBal = Annotated[int, Field(strict=True, ge=0, le=BAL_MAX), BeforeValidator(_entier_json)]
NomContactOptionnel = Annotated[
    Annotated[
        str,
        Field(max_length=200, json_schema_extra=schema_texte_optionnel),
        AfterValidator(sans_caracteres_de_controle),
    ]
    | None,
    BeforeValidator(lambda v: (v.strip() or None) if isinstance(v, str) else v),
]


# French messages for pydantic's own error kinds (types, presence, bounds).
_MESSAGES: dict[str, str] = {
    "missing": "est obligatoire",
    "extra_forbidden": "n'est pas un champ attendu",
    "string_type": "doit être une chaîne de caractères",
    "int_type": "doit être un nombre entier",
    "int_parsing": "doit être un nombre entier",
    "int_from_float": "doit être un nombre entier",
    "bool_type": "doit être un booléen",
    "list_type": "doit être une liste",
    "dict_type": "doit être un objet",
    "model_type": "doit être un objet",
    "model_attributes_type": "doit être un objet",
    "date_type": "doit être une date (AAAA-MM-JJ)",
    "date_parsing": "doit être une date (AAAA-MM-JJ)",
    "date_from_datetime_parsing": "doit être une date (AAAA-MM-JJ)",
    "datetime_type": "doit être une date et heure ISO 8601",
    "datetime_parsing": "doit être une date et heure ISO 8601",
    "datetime_from_date_parsing": "doit être une date et heure ISO 8601",
    "timezone_aware": "doit préciser le fuseau horaire (exemple : 2026-12-31T23:59:00+01:00)",
    "enum": "doit valoir l'une des valeurs : {expected}",
    "literal_error": "doit valoir l'une des valeurs : {expected}",
    "string_pattern_mismatch": "n'a pas le format attendu",
    "base64_decode": "n'est pas un contenu base64 valide",
    "json_invalid": "n'est pas un JSON valide",
    "string_unicode": "doit être du texte Unicode valide",
}


def _message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "regle":
        return str(err["msg"])
    if kind == "string_too_short":
        return (
            "est obligatoire"
            if ctx.get("min_length") == 1
            else f"doit contenir au moins {ctx.get('min_length')} caractères"
        )
    if kind == "string_too_long":
        return f"ne doit pas dépasser {ctx.get('max_length')} caractères"
    if kind in ("too_long", "too_short") and isinstance(err.get("input"), str):
        # A constrained text after its validators (a trimmed value): a length in characters.
        return _message({**err, "type": "string_" + kind})
    if kind == "too_long":
        return f"ne doit pas dépasser {ctx.get('max_length')} éléments"
    if kind == "too_short":
        return f"doit contenir au moins {ctx.get('min_length')} élément(s)"
    if kind in ("greater_than_equal", "greater_than"):
        return f"doit être supérieur ou égal à {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"doit être inférieur ou égal à {ctx.get('le', ctx.get('lt'))}"
    if kind == "value_error":
        return str(ctx.get("error") or err["msg"])
    template = _MESSAGES.get(kind)
    if template:
        return template.format(**{k: str(v) for k, v in ctx.items()})
    return "n'est pas une valeur acceptée"


def chemin(loc: tuple[Any, ...], prefixe: str = "") -> str:
    parties = [str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    texte_chemin = ".".join(parties)
    if prefixe:
        return f"{prefixe}.{texte_chemin}" if texte_chemin else prefixe
    return texte_chemin or "corps"


def erreurs_en_francais(exc: ValidationError, prefixe: str = "") -> list[dict[str, str]]:
    """One entry per broken rule: {"champ": contract path, "message": French sentence}."""
    return traduire_erreurs(exc.errors(include_url=False), prefixe)


def traduire_erreurs(liste: Any, prefixe: str = "") -> list[dict[str, str]]:
    """The same, from pydantic's (or FastAPI's) list of error dicts."""
    erreurs: list[dict[str, str]] = []
    for err in liste:
        champ = chemin(tuple(err["loc"]), prefixe)
        erreurs.append({"champ": champ, "message": f"Le champ « {champ} » {_message(err)}."})
    return erreurs
