"""No success before the commit: a write whose commit fails answers an error, and the data and
the stored files stay as they were. The commit is made to fail for real, by a constraint the
database checks only at commit: a deferred constraint trigger on PostgreSQL; on SQLite, a
trigger writing a row that breaks a deferred foreign key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modif_solde.models.tables import Demande
from modif_solde.services.stockage import Stockage
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_parcours import ouvrir, probleme
from tests.workflows.conftest import ServeurSmtp

M1 = "/api/v1/modifications/FINMSS009266M1"


class RefusAuCommit:
    """Arms a trigger that makes the next commit touching `table` fail."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"

    async def armer(self, table: str, operation: str) -> None:
        async with self.engine.begin() as conn:
            if self.sqlite:
                await conn.execute(text("CREATE TABLE refus_cible (id INTEGER PRIMARY KEY)"))
                await conn.execute(
                    text(
                        "CREATE TABLE refus_ligne (id INTEGER PRIMARY KEY, cible INTEGER "
                        "REFERENCES refus_cible (id) DEFERRABLE INITIALLY DEFERRED)"
                    )
                )
                corps = "BEGIN INSERT INTO refus_ligne (cible) VALUES (-1); END"
                await conn.execute(
                    text(f'CREATE TRIGGER refus_au_commit AFTER {operation} ON "{table}" {corps}')
                )
            else:
                await conn.execute(
                    text(
                        "CREATE OR REPLACE FUNCTION refus_au_commit() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'commit refusé pour le test'; END $$"
                    )
                )
                await conn.execute(
                    text(
                        f'CREATE CONSTRAINT TRIGGER refus_au_commit AFTER {operation} ON "{table}" '
                        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refus_au_commit()"
                    )
                )
        self.table = table

    async def desarmer(self) -> None:
        async with self.engine.begin() as conn:
            if self.sqlite:
                await conn.execute(text("DROP TRIGGER IF EXISTS refus_au_commit"))
                await conn.execute(text("DROP TABLE IF EXISTS refus_ligne"))
                await conn.execute(text("DROP TABLE IF EXISTS refus_cible"))
            else:
                await conn.execute(text(f'DROP TRIGGER IF EXISTS refus_au_commit ON "{self.table}"'))


@pytest.fixture
async def refus(engine: AsyncEngine) -> AsyncIterator[RefusAuCommit]:
    refus = RefusAuCommit(engine)
    try:
        yield refus
    finally:
        if hasattr(refus, "table"):
            await refus.desarmer()


def fichiers(stockage: Stockage) -> set[Path]:
    return {p for p in stockage.racine.rglob("*") if p.is_file()}


def echec_du_commit(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code in (500, 503), r.text
    corps = probleme(r, r.status_code)
    assert "enregistr" in corps["detail"]
    return corps


async def test_brouillon_non_enregistre_pas_de_succes(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp, refus: RefusAuCommit
) -> None:
    await ouvrir(http)
    await refus.armer("modification", "UPDATE")
    r = await http.patch(f"{M1}/brouillon", json={"contact_support_nom": "Perdu"}, headers=OPERATEUR)
    echec_du_commit(r)
    await refus.desarmer()
    assert (await http.get(M1, headers=OPERATEUR)).json()["changements"] == []


async def test_piece_non_enregistree_ni_fichier_ni_succes(
    http: httpx.AsyncClient,
    demande: Demande,
    smtp: ServeurSmtp,
    refus: RefusAuCommit,
    stockage: Stockage,
    pdf: bytes,
) -> None:
    await ouvrir(http)
    avant = fichiers(stockage)
    await refus.armer("piece", "INSERT")
    r = await http.post(
        f"{M1}/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": ("a.pdf", pdf, "application/pdf")},
        headers=OPERATEUR,
    )
    echec_du_commit(r)
    await refus.desarmer()
    assert (await http.get(M1, headers=OPERATEUR)).json()["pieces_ajoutees"] == []
    assert fichiers(stockage) == avant


async def test_suppression_non_enregistree_garde_la_piece(
    http: httpx.AsyncClient,
    demande: Demande,
    smtp: ServeurSmtp,
    refus: RefusAuCommit,
    stockage: Stockage,
    pdf: bytes,
) -> None:
    await ouvrir(http)
    ajout = await http.post(
        f"{M1}/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": ("a.pdf", pdf, "application/pdf")},
        headers=OPERATEUR,
    )
    assert ajout.status_code == 201, ajout.text
    avant = fichiers(stockage)
    await refus.armer("piece", "DELETE")
    r = await http.delete(f"{M1}/pieces/{ajout.json()['id']}", headers=OPERATEUR)
    echec_du_commit(r)
    await refus.desarmer()
    assert [p["id"] for p in (await http.get(M1, headers=OPERATEUR)).json()["pieces_ajoutees"]] == [
        ajout.json()["id"]
    ]
    assert fichiers(stockage) == avant
    assert (await http.get(ajout.json()["url"], headers=OPERATEUR)).content == pdf


async def test_import_non_enregistre_ni_fichiers_ni_succes(
    http: httpx.AsyncClient,
    demande: Demande,
    refus: RefusAuCommit,
    stockage: Stockage,
    donnees: dict[str, Any],
) -> None:
    donnees["numero"] = "FINMSS009999"
    avant = fichiers(stockage)
    await refus.armer("demande", "INSERT")
    r = await http.post("/api/v1/demandes", json=donnees, headers=GESTIONNAIRE)
    echec_du_commit(r)
    await refus.desarmer()
    probleme(await http.get("/api/v1/demandes/FINMSS009999", headers=GESTIONNAIRE), 404)
    assert fichiers(stockage) == avant
