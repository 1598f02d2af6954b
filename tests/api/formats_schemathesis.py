"""What schemathesis must know to draw valid values of the formats the OpenAPI document names
(`siret`, `iban`, `bic`, `telephone-fr`, `courriel`, `url-web`) and of the one rule of the import no
JSON Schema can state (`montants.solde` = `engagement_solde` − `avance`).

The schema states each format's pattern and lengths; a checksum (SIRET, IBAN), a numbering plan
(telephone) or an arithmetic rule is beyond it. Each strategy below draws values and keeps
those the application's own rule (`modif_solde.models.regles`) accepts, so a schema-valid body
is a valid body. Loaded by the schemathesis CLI (`hooks` in schemathesis.toml) and by the
Python-API test (tests/api/test_openapi_proprietes.py); nothing here widens what a check accepts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import schemathesis
from hypothesis import strategies as st
from pydantic import TypeAdapter
from schwifty import IBAN
from stdnum import luhn

from modif_solde.models import regles


def accepte(regle: Any, valeur: str) -> bool:
    try:
        regle(valeur)
    except Exception:
        return False
    return True


def _siret(chiffres: str) -> str:
    return chiffres + luhn.calc_check_digit(chiffres)


SIRET = (
    st.from_regex(rf"\A[0-9]{{{regles.SIRET_CHIFFRES - 1}}}\Z")
    .map(_siret)
    .filter(lambda v: accepte(regles.verifier_siret, v))
)
IBAN_FR = st.builds(
    lambda banque, compte: str(IBAN.generate("FR", bank_code=banque, account_code=compte)),
    st.from_regex(r"\A[0-9]{10}\Z"),
    st.from_regex(r"\A[0-9]{11}\Z"),
).filter(lambda v: accepte(regles.normaliser_iban, v))
BIC = st.from_regex(r"\A[A-Z]{4}FR[A-Z0-9]{2}(?:[A-Z0-9]{3})?\Z").filter(
    lambda v: accepte(regles.normaliser_bic, v)
)
TELEPHONE = (
    st.tuples(st.sampled_from("1234567"), st.from_regex(r"\A[0-9]{8}\Z"), st.sampled_from(["", " ", "."]))
    .map(lambda t: t[2].join(["0" + t[0] + t[1][:1], *(t[1][i : i + 2] for i in range(1, 8, 2))]))
    .filter(lambda v: accepte(regles.normaliser_telephone, v))
)
COURRIEL = st.from_regex(r"\A[a-z0-9]{1,20}(?:\.[a-z0-9]{1,10})?@[a-z0-9]{1,20}\.(?:fr|com|org|re)\Z").filter(
    lambda v: accepte(regles.normaliser_courriel, v)
)
URL = st.from_regex(
    r"\Ahttps?://[a-z0-9]{1,20}(?:\.[a-z0-9]{1,20})*\.(?:fr|com|org)(?:/[A-Za-z0-9._~-]{0,30})?\Z"
).filter(lambda v: accepte(regles.verifier_url, v))


def jusqu_a(valeurs: st.SearchStrategy[str], longueur_max: int) -> st.SearchStrategy[str]:
    """Valid values, padded with trailing spaces (the rules trim them) up to any length within
    the schema's `maxLength`: schemathesis asks a format for values at its length bounds."""

    def remplir(valeur: str) -> st.SearchStrategy[str]:
        reste = max(longueur_max - len(valeur), 0)
        # The bounds themselves often: they are what schemathesis' coverage phase asks for.
        bornes = st.sampled_from(sorted({0, 1, max(reste - 1, 0), reste}))
        return st.one_of(bornes, st.integers(min_value=0, max_value=reste)).map(lambda n: valeur + " " * n)

    return valeurs.flatmap(remplir)


def longueur_max(annotation: Any) -> int:
    """The `maxLength` the rule states (`regles.Siret`…), as the schema does."""
    return int(TypeAdapter(annotation).json_schema()["maxLength"])


schemathesis.openapi.format("siret", jusqu_a(SIRET, longueur_max(regles.Siret)))
schemathesis.openapi.format("iban", jusqu_a(IBAN_FR, longueur_max(regles.Iban)))
schemathesis.openapi.format("bic", jusqu_a(BIC, longueur_max(regles.Bic)))
schemathesis.openapi.format("telephone-fr", jusqu_a(TELEPHONE, longueur_max(regles.Telephone)))
schemathesis.openapi.format("courriel", jusqu_a(COURRIEL, longueur_max(regles.Courriel)))
schemathesis.openapi.format("url-web", jusqu_a(URL, longueur_max(regles.UrlWeb)))


def _montant(valeur: Any) -> bool:
    return isinstance(valeur, str) and accepte(regles.verifier_montant, valeur)


def accorder_montants(body: Any) -> Any:
    """An import whose three amounts are valid amounts gets `solde` = `engagement_solde` −
    `avance` (the two ordered so that the difference is not negative). A body drawn to break
    the schema keeps its broken amount: only valid amounts are touched."""
    montants = body.get("montants") if isinstance(body, dict) else None
    if not isinstance(montants, dict) or not all(
        _montant(montants.get(cle)) for cle in ("avance", "engagement_solde", "solde")
    ):
        return body
    avance, engagement = sorted((Decimal(montants["avance"]), Decimal(montants["engagement_solde"])))
    return {
        **body,
        "montants": {
            **montants,
            "avance": str(avance),
            "engagement_solde": str(engagement),
            "solde": str(engagement - avance),
        },
    }


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Before each call of every phase (schemathesis then checks the case again against the
    schema, so a positive case stays positive)."""
    if (case.method.upper(), case.operation.path) == ("POST", "/api/v1/demandes"):
        case.body = accorder_montants(case.body)
