"""A JWKS endpoint that answers once, then hangs: a real `modif-solde api` (uvicorn) keeps serving
the tokens of the keys it has, at their usual latency; an unknown `kid` gets the usual 401 at
once; the refresh is retried with backoff, not at every request."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from modif_solde.api.auth import PrivateKey, Role, emettre_jeton, generer_cle, jwk_public
from modif_solde.migrations import migrer
from tests.processus import api_lancee, port_libre

REFUS = "Le jeton d'accès est invalide ou expiré."


class JwksQuiSeBloque:
    """Answers the first GET with the JWKS; every later connection is accepted, read, and never
    answered (a JWKS behind a hung proxy)."""

    def __init__(self, cles: dict[str, PrivateKey]) -> None:
        self.corps = json.dumps({"keys": [jwk_public(cle, kid) for kid, cle in cles.items()]}).encode()
        self.connexions = 0
        self.ecoute = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.ecoute.getsockname()[1]}/.well-known/jwks.json"
        self.bloquees: list[socket.socket] = []
        self.fin = threading.Event()
        self.fil = threading.Thread(target=self._servir, daemon=True)
        self.fil.start()

    def _servir(self) -> None:
        self.ecoute.settimeout(0.1)
        while not self.fin.is_set():
            try:
                conn, _ = self.ecoute.accept()
            except TimeoutError:
                continue
            self.connexions += 1
            conn.recv(65536)
            if self.connexions == 1:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    + f"Content-Length: {len(self.corps)}\r\n\r\n".encode()
                    + self.corps
                )
                conn.close()
            else:
                self.bloquees.append(conn)  # kept open, never answered

    def fermer(self) -> None:
        self.fin.set()
        # The serving thread stops at its next accept timeout, before the socket is closed.
        self.fil.join(timeout=5)
        for conn in self.bloquees:
            conn.close()
        self.ecoute.close()


@pytest.fixture(scope="module")
def cle() -> PrivateKey:
    return generer_cle("ES256")


@pytest.fixture
def jwks(cle: PrivateKey) -> Iterator[JwksQuiSeBloque]:
    serveur = JwksQuiSeBloque({"cle-1": cle})
    yield serveur
    serveur.fermer()


@pytest.fixture
async def api(tmp_path: Path, jwks: JwksQuiSeBloque) -> AsyncIterator[str]:
    base = f"sqlite+aiosqlite:///{tmp_path}/api.db"
    await asyncio.to_thread(migrer, base)
    env = {
        # Development: the JWKS may be served over plain HTTP on loopback.
        "MODIF_SOLDE_ENVIRONNEMENT": "developpement",
        "MODIF_SOLDE_DATABASE_URL": base,
        "MODIF_SOLDE_JWT_JWKS_URL": jwks.url,
        # The keys read are stale after a second: every request after that wants a refresh.
        "MODIF_SOLDE_JWT_JWKS_CACHE": "PT1S",
        "MODIF_SOLDE_JWT_JWKS_RELECTURE": "PT0S",
        "MODIF_SOLDE_STORAGE_DIR": str(tmp_path / "pieces"),
        "MODIF_SOLDE_TEMPORAL_ADDRESS": f"127.0.0.1:{port_libre()}",
    }
    async with api_lancee(tmp_path, env) as (url, _):
        yield url


def entete(cle: PrivateKey, kid: str = "cle-1") -> dict[str, str]:
    return {"Authorization": f"Bearer {emettre_jeton(cle, 'gestionnaire.test', Role.GESTIONNAIRE, kid=kid)}"}


async def chronometrer(client: httpx.AsyncClient, entetes: dict[str, str]) -> tuple[int, float]:
    debut = time.monotonic()
    reponse = await client.get("/api/v1/demandes", headers=entetes)
    return reponse.status_code, time.monotonic() - debut


async def test_un_jwks_bloque_ne_fait_attendre_aucune_requete(
    api: str, jwks: JwksQuiSeBloque, cle: PrivateKey
) -> None:
    connu = entete(cle)
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        assert (await client.get("/api/v1/demandes", headers=connu)).status_code == 200  # keys read once
        await asyncio.sleep(1.5)  # stale now: the next request starts a refresh, which hangs

        # Six at once, as when the stall was found; the known token and fresh ones of the same key.
        mesures = await asyncio.gather(
            *(chronometrer(client, connu if i % 2 else entete(cle)) for i in range(6))
        )
        assert [statut for statut, _ in mesures] == [200] * 6
        assert max(duree for _, duree in mesures) < 1.0, mesures
        assert jwks.connexions >= 2  # the refresh was attempted, and hangs

        # An unknown kid: the keys cannot be refreshed now, the usual 401 within a second (not
        # after the hang).
        debut = time.monotonic()
        inconnu = await client.get("/api/v1/demandes", headers=entete(cle, "cle-2"))
        assert inconnu.status_code == 401 and inconnu.json()["detail"] == REFUS
        assert time.monotonic() - debut < 1.0

        # Over the next seconds, known tokens keep their latency while the refresh is retried.
        latences: list[float] = []
        fin = time.monotonic() + 8
        while time.monotonic() < fin:
            statut, duree = await chronometrer(client, connu)
            assert statut == 200
            latences.append(duree)
            inconnu = await client.get("/api/v1/demandes", headers=entete(cle, "cle-3"))
            assert inconnu.status_code == 401
            await asyncio.sleep(0.05)
        assert max(latences) < 1.0, max(latences)
    # Retried with backoff (at 5 s per hung attempt, a few at most), not at every request.
    assert 2 <= jwks.connexions <= 4, jwks.connexions
