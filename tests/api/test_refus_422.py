"""Every 422 the API can answer names at least one field and its rule."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from modif_solde.api.problemes import reponse
from modif_solde.models.tables import Demande
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_parcours import ouvrir, probleme
from tests.workflows.conftest import ServeurSmtp

M1 = "/api/v1/modifications/FINMSS009266M1"


def nomme_un_champ(r: httpx.Response) -> list[dict[str, str]]:
    erreurs = probleme(r, 422).get("errors")
    assert erreurs, f"{r.request.method} {r.request.url}: 422 sans « errors » ({r.text})"
    for erreur in erreurs:
        assert erreur["champ"] and erreur["message"], r.text
    return list(erreurs)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_chaque_422_nomme_un_champ(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp, pdf: bytes, donnees: dict[str, Any]
) -> None:
    refus: list[httpx.Response] = []
    # Import: a body outside the schema, a rule of the import's own.
    refus.append(await http.post("/api/v1/demandes", json={"numero": 1}, headers=GESTIONNAIRE))
    donnees["numero"] = "FINMSS000001"
    donnees["operateur"]["siret"] = "123"
    refus.append(await http.post("/api/v1/demandes", json=donnees, headers=GESTIONNAIRE))
    refus.append(await http.post("/api/v1/demandes", content=b"{pas du json", headers=GESTIONNAIRE))
    # The list's query.
    refus.append(await http.get("/api/v1/demandes", params={"limite": 0}, headers=GESTIONNAIRE))
    # Opening: an empty comment, an unknown expected field.
    refus.append(
        await http.post(
            "/api/v1/demandes/FINMSS009266/modifications",
            json={"commentaire": " ", "champs": ["iban"]},
            headers=GESTIONNAIRE,
        )
    )
    await ouvrir(http)
    # Draft: an empty object, a field that cannot be edited, a broken rule, not an object.
    refus.append(await http.patch(f"{M1}/brouillon", json={}, headers=OPERATEUR))
    refus.append(await http.patch(f"{M1}/brouillon", json={"iban": "FR76"}, headers=OPERATEUR))
    refus.append(
        await http.patch(f"{M1}/brouillon", json={"contact_support_courriel": "non"}, headers=OPERATEUR)
    )
    refus.append(await http.patch(f"{M1}/brouillon", json=[1], headers=OPERATEUR))
    # Documents: an unknown type, no file.
    refus.append(
        await http.post(
            f"{M1}/pieces",
            data={"type": "INCONNU"},
            files={"fichier": ("a.pdf", pdf, "application/pdf")},
            headers=OPERATEUR,
        )
    )
    refus.append(await http.post(f"{M1}/pieces", data={"type": "AUTRE_S"}, headers=OPERATEUR))
    # Extension: no time zone (a deadline the modification refuses is a 409: test_echeance_api).
    refus.append(
        await http.post(f"{M1}/prolonger", json={"expire_le": "2030-01-01T00:00:00"}, headers=GESTIONNAIRE)
    )
    # Withdrawal: a reason too long.
    refus.append(await http.post(f"{M1}/retirer", json={"motif": "x" * 3000}, headers=GESTIONNAIRE))
    # Pages: a cursor the API did not give, a page too long.
    for chemin in ("courriels", "historique"):
        for params in ({"curseur": "autre"}, {"limite": 1000}):
            refus.append(
                await http.get(f"/api/v1/demandes/FINMSS009266/{chemin}", params=params, headers=OPERATEUR)
            )
    # An idempotency key outside its form.
    refus.append(
        await http.post(f"{M1}/renoncer", headers={**OPERATEUR, "Idempotency-Key": "cle avec espaces"})
    )
    # A date that is a number.
    refus.append(await http.post(f"{M1}/prolonger", json={"expire_le": 1}, headers=GESTIONNAIRE))

    for r in refus:
        nomme_un_champ(r)
    assert {e["champ"] for e in nomme_un_champ(refus[11])} == {"expire_le"}


def test_reponse_422_jamais_sans_erreurs() -> None:
    for erreurs in (None, []):
        corps = reponse(422, "Données invalides", "La date est invalide.", erreurs).body
        assert b'"errors":[{"champ"' in corps.replace(b" ", b"")
