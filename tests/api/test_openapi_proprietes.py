"""A property-based run of the OpenAPI document (schemathesis, bounded): generated requests
for every operation, as the request's operator and as a gestionnaire, never answer a 5xx nor a
response outside the schema."""

from __future__ import annotations

import warnings
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

import tests.api.formats_schemathesis  # noqa: F401  (the formats the schema names)
from modif_solde.models.tables import Demande
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.workflows.conftest import ServeurSmtp

EXEMPLES_PAR_OPERATION = 12
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


def generer(schema: Any) -> list[Any]:
    """Draw a bounded set of cases for every operation (no I/O here)."""
    cas: list[Any] = []
    for resultat in schema.get_all_operations():
        operation = resultat.ok()

        @given(operation.as_strategy())
        @settings(
            max_examples=EXEMPLES_PAR_OPERATION,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def tirer(case: Any) -> None:
            cas.append(case)

        tirer()
    return cas


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("identite", ["operateur", "gestionnaire"])
async def test_aucune_reponse_5xx_ni_hors_schema(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp, identite: str
) -> None:
    document = (await http.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    entetes = OPERATEUR if identite == "operateur" else GESTIONNAIRE
    # An open modification, so that generated calls on it reach the workflow too.
    await http.post(
        "/api/v1/demandes/FINMSS009266/modifications",
        json={"commentaire": "À corriger", "champs": ["pieces"]},
        headers=GESTIONNAIRE,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cas = generer(schema)
    assert len(cas) >= 10 * len(document["paths"])
    echecs = []
    for case in cas:
        kwargs = case.as_transport_kwargs(base_url="http://test", headers=entetes)
        kwargs.pop("base_url", None)
        options = {
            k: v for k, v in kwargs.items() if k in ("headers", "params", "json", "content", "data", "files")
        }
        if isinstance(options.get("data"), str | bytes):
            options["content"] = options.pop("data")  # a raw body, not form fields
        if options.get("files"):
            # httpx encodes only text or bytes in a multipart part.
            options["files"] = [
                (nom, (fichier, contenu if isinstance(contenu, str | bytes) else str(contenu), *reste))
                for nom, (fichier, contenu, *reste) in options["files"]
            ]
        reponse = await http.request(kwargs["method"], kwargs["url"], **options)
        reponse.request.read()  # multipart bodies are streamed: the checks read them back
        try:
            case.validate_response(reponse, checks=CHECKS)
        except Exception as err:
            echecs.append(f"{case.method} {case.formatted_path} -> {reponse.status_code}: {str(err)[:300]}")
    assert not echecs, "\n".join(echecs[:10])
