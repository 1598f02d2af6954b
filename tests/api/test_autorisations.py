"""Every endpoint × no token, bad token, the request's operator, another SIRET's operator,
a gestionnaire: 401 / 403 / 404 exactly as the contract says, and the allowed calls succeed."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from modif_solde.api.auth import Role
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande, Piece
from modif_solde.services import modifications as svc
from modif_solde.services.stockage import Stockage
from tests.api.conftest import AUTRE_OPERATEUR, GESTIONNAIRE, OPERATEUR, jeton
from tests.conftest import EXEMPLE
from tests.workflows.conftest import ServeurSmtp

SANS = {}
MAUVAIS = {"Authorization": "Bearer pas.un.jeton"}
SIGNE_AILLEURS = jeton(Role.GESTIONNAIRE, secret="une-autre-cle-de-signature-0123456789-xyz")
IDENTITES = {
    "sans": SANS,
    "mauvais": MAUVAIS,
    "signe_ailleurs": SIGNE_AILLEURS,
    "operateur": OPERATEUR,
    "autre_operateur": AUTRE_OPERATEUR,
    "gestionnaire": GESTIONNAIRE,
}


@dataclass(frozen=True)
class Appel:
    nom: str
    methode: str
    chemin: str
    # Expected status for: the request's operator, another SIRET's operator, a gestionnaire.
    operateur: int
    autre: int
    gestionnaire: int
    ouverte: bool = True  # needs an open modification first
    corps: Any = None
    multipart: bool = False


def _import() -> dict[str, Any]:
    donnees = json.loads(EXEMPLE.read_text())
    donnees = copy.deepcopy(donnees)
    donnees["numero"] = "FINMSS000555"
    return donnees


APPELS = [
    Appel("importer", "POST", "/api/v1/demandes", 201, 403, 201, ouverte=False, corps=_import()),
    Appel("lister", "GET", "/api/v1/demandes", 200, 200, 200),
    Appel("consulter", "GET", "/api/v1/demandes/FINMSS009266", 200, 404, 200),
    Appel("courriels", "GET", "/api/v1/demandes/FINMSS009266/courriels", 200, 404, 200),
    Appel("historique", "GET", "/api/v1/demandes/FINMSS009266/historique", 200, 404, 200),
    Appel("piece", "GET", "/api/v1/demandes/FINMSS009266/pieces/{piece}", 200, 404, 200),
    Appel(
        "ouvrir",
        "POST",
        "/api/v1/demandes/FINMSS009266/modifications",
        403,
        403,
        201,
        ouverte=False,
        corps={"commentaire": "À corriger", "champs": ["pieces"]},
    ),
    Appel("pilotage", "GET", "/api/v1/pilotage", 403, 403, 200, ouverte=False),
    Appel("modification", "GET", "/api/v1/modifications/FINMSS009266M1", 200, 404, 200),
    Appel(
        "brouillon",
        "PATCH",
        "/api/v1/modifications/FINMSS009266M1/brouillon",
        200,
        404,
        403,
        corps={"contact_support_nom": "DUPONT Marie"},
    ),
    Appel(
        "ajout_piece", "POST", "/api/v1/modifications/FINMSS009266M1/pieces", 201, 404, 403, multipart=True
    ),
    Appel(
        "suppression_piece",
        "DELETE",
        "/api/v1/modifications/FINMSS009266M1/pieces/{piece_ajoutee}",
        204,
        404,
        403,
    ),
    Appel("confirmer", "POST", "/api/v1/modifications/FINMSS009266M1/confirmer", 200, 404, 403),
    Appel("renoncer", "POST", "/api/v1/modifications/FINMSS009266M1/renoncer", 200, 404, 403),
    Appel(
        "retirer",
        "POST",
        "/api/v1/modifications/FINMSS009266M1/retirer",
        403,
        403,
        200,
        corps={"motif": "test"},
    ),
    Appel(
        "prolonger",
        "POST",
        "/api/v1/modifications/FINMSS009266M1/prolonger",
        403,
        403,
        200,
        corps={"expire_le": (datetime.now(UTC) + timedelta(days=60)).isoformat()},
    ),
]


def attendu(appel: Appel, identite: str) -> int:
    return {
        "sans": 401,
        "mauvais": 401,
        "signe_ailleurs": 401,
        "operateur": appel.operateur,
        "autre_operateur": appel.autre,
        "gestionnaire": appel.gestionnaire,
    }[identite]


async def _preparer(
    http: httpx.AsyncClient, factory: SessionFactory, stockage: Stockage, pdf: bytes, appel: Appel
) -> dict[str, str]:
    valeurs: dict[str, str] = {}
    async with factory() as session:
        from sqlmodel import select

        piece = (await session.exec(select(Piece))).first()
        assert piece is not None
        valeurs["piece"] = piece.id
    if appel.ouverte:
        r = await http.post(
            "/api/v1/demandes/FINMSS009266/modifications",
            json={"commentaire": "À corriger", "champs": ["pieces"]},
            headers=GESTIONNAIRE,
        )
        assert r.status_code == 201, r.text

        async def flux() -> Any:
            yield pdf

        async with unit_of_work(factory) as session:
            ajoutee = await svc.ajouter_piece(
                session, stockage, "FINMSS009266M1", "AUTRE_S", "ajout.pdf", flux(), 1 << 20
            )
        valeurs["piece_ajoutee"] = ajoutee.id
    return valeurs


# The matrix runs on SQLite: it is about who may call what, not about storage.
@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("identite", list(IDENTITES))
@pytest.mark.parametrize("appel", APPELS, ids=[a.nom for a in APPELS])
async def test_matrice(
    http: httpx.AsyncClient,
    factory: SessionFactory,
    stockage: Stockage,
    demande: Demande,
    pdf: bytes,
    smtp: ServeurSmtp,
    appel: Appel,
    identite: str,
) -> None:
    valeurs = await _preparer(http, factory, stockage, pdf, appel)
    chemin = appel.chemin.format(**valeurs)
    options: dict[str, Any] = {"headers": IDENTITES[identite]}
    if appel.multipart:
        options |= {"data": {"type": "AUTRE_S"}, "files": {"fichier": ("x.pdf", pdf, "application/pdf")}}
    elif appel.corps is not None:
        options["json"] = appel.corps
    r = await http.request(appel.methode, chemin, **options)
    assert r.status_code == attendu(appel, identite), r.text
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["detail"]
    if r.status_code == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    if identite == "autre_operateur" and appel.nom == "lister":
        assert r.json()["total"] == 0
