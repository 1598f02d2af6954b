"""Bodies against a real `modif-solde api` (uvicorn): a request without a valid bearer token is
refused before its body is read, and each route's body is capped at what it can need, by
Content-Length or as it streams. The process's memory (its peak, VmHWM) stays where it was."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psutil
import pytest

from modif_solde.api.auth import Role, emettre_jeton
from modif_solde.config import DEV_JWT_SECRET
from modif_solde.migrations import migrer
from tests.processus import api_lancee, port_libre

BROUILLON = "/api/v1/modifications/FINMSS009266M1/brouillon"
# 2 MB of empty objects: what a JSON parser turns into half a million dicts.
ATTAQUE = b"[" + b"{}," * 699_999 + b"{}]"
JSON = {"Content-Type": "application/json"}
OPERATEUR = {
    "Authorization": f"Bearer {emettre_jeton(DEV_JWT_SECRET, 'op', Role.OPERATEUR, '50961588600025')}"
}
GESTIONNAIRE = {"Authorization": f"Bearer {emettre_jeton(DEV_JWT_SECRET, 'ge', Role.GESTIONNAIRE)}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[str, psutil.Process]]:
    base = f"sqlite+aiosqlite:///{tmp_path}/api.db"
    await asyncio.to_thread(migrer, base)
    env = {
        "MODIF_SOLDE_ENVIRONNEMENT": "developpement",
        "MODIF_SOLDE_DATABASE_URL": base,
        "MODIF_SOLDE_STORAGE_DIR": str(tmp_path / "pieces"),
        "MODIF_SOLDE_TEMPORAL_ADDRESS": f"127.0.0.1:{port_libre()}",
        # A small import cap, to see the setting hold without sending 64 MiB.
        "MODIF_SOLDE_IMPORT_TAILLE_MAX": str(1024 * 1024),
    }
    async with api_lancee(tmp_path, env) as (url, processus):
        assert processus.popen is not None
        yield url, psutil.Process(processus.popen.pid)


def pic_memoire(processus: psutil.Process) -> int:
    """The process's peak resident memory so far, in bytes (Linux's VmHWM)."""
    for ligne in Path(f"/proc/{processus.pid}/status").read_text().splitlines():
        if ligne.startswith("VmHWM:"):
            return int(ligne.split()[1]) * 1024
    raise AssertionError("VmHWM absent")


async def en_morceaux(corps: bytes, taille: int = 64 * 1024) -> AsyncIterator[bytes]:
    for debut in range(0, len(corps), taille):
        yield corps[debut : debut + taille]


def probleme(reponse: httpx.Response, statut: int) -> dict[str, str]:
    assert reponse.status_code == statut, reponse.text
    assert reponse.headers["content-type"] == "application/problem+json"
    corps: dict[str, str] = reponse.json()
    return corps


async def test_un_gros_corps_sans_jeton_est_refuse_sans_etre_lu(api: tuple[str, psutil.Process]) -> None:
    url, processus = api
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        # Warm: the first request loads what any request needs.
        await client.patch(BROUILLON, content=b"{}", headers=JSON)
        pic = pic_memoire(processus)
        durees: list[float] = []
        for entetes in ({}, {"Authorization": "Bearer pas-un-jeton"}, {"Authorization": "Basic eDp5"}):
            debut = time.monotonic()
            reponse = await client.patch(BROUILLON, content=ATTAQUE, headers={**JSON, **entetes})
            durees.append(time.monotonic() - debut)
            assert probleme(reponse, 401)["detail"] in (
                "Un jeton d'accès (Authorization: Bearer …) est requis.",
                "Le jeton d'accès est invalide ou expiré.",
            )
            assert reponse.headers["www-authenticate"] == 'Bearer realm="modif-solde"'
        # The same refusal when the body streams in without a length.
        reponse = await client.post("/api/v1/demandes", content=en_morceaux(ATTAQUE), headers=JSON)
        assert "content-length" not in reponse.request.headers
        probleme(reponse, 401)
        assert max(durees) < 0.1, durees
        assert pic_memoire(processus) - pic < 5 * 1024 * 1024
        # The connection still serves (kept alive or reopened by the client).
        assert (await client.get("/healthz")).status_code == 200


async def test_chaque_route_plafonne_son_corps_en_francais(api: tuple[str, psutil.Process]) -> None:
    url, processus = api
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await client.patch(BROUILLON, content=b"{}", headers={**JSON, **OPERATEUR})
        pic = pic_memoire(processus)
        # A draft, by its Content-Length, then as it streams.
        debut = time.monotonic()
        refus = probleme(await client.patch(BROUILLON, content=ATTAQUE, headers={**JSON, **OPERATEUR}), 413)
        assert time.monotonic() - debut < 0.1
        assert refus["title"] == "Contenu trop volumineux"
        assert refus["detail"] == "Le corps de la requête dépasse la taille maximale (64 Ko)."
        probleme(
            await client.patch(BROUILLON, content=en_morceaux(ATTAQUE), headers={**JSON, **OPERATEUR}), 413
        )
        # An action, an opening: the same small cap.
        for chemin in (
            "/api/v1/modifications/FINMSS009266M1/retirer",
            "/api/v1/demandes/FINMSS009266/modifications",
        ):
            probleme(await client.post(chemin, content=ATTAQUE, headers={**JSON, **GESTIONNAIRE}), 413)
        # The import: its own cap (MODIF_SOLDE_IMPORT_TAILLE_MAX, 1 MiB here).
        grand = b'{"numero": "' + b"9" * (2 * 1024 * 1024) + b'"}'
        refus = probleme(
            await client.post("/api/v1/demandes", content=grand, headers={**JSON, **OPERATEUR}), 413
        )
        assert refus["detail"] == "Le corps de la requête dépasse la taille maximale (1 Mo)."
        # Under its cap, the body is read and checked as usual (422: not an import document).
        petit = b'{"numero": "' + b"9" * (512 * 1024) + b'"}'
        assert (
            await client.post("/api/v1/demandes", content=petit, headers={**JSON, **OPERATEUR})
        ).status_code == 422
        assert pic_memoire(processus) - pic < 20 * 1024 * 1024
