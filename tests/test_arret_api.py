"""`modif-solde api` as a real process stopped by SIGTERM, as an orchestrator stops it: /readyz
turns 503 first while everything else is still served, then the listener closes, and a request
under way (an import whose body arrives slowly) still finishes with its 201."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from modif_solde.api.auth import Role, emettre_jeton
from tests.conftest import EXEMPLE
from tests.processus import Processus, ServeurTemporalDev, commande_modif_solde, port_libre

SECRET = "secret-de-test-0123456789-0123456789-abcdef"


async def _attendre(condition: Any, delai: float, quoi: str) -> Any:
    limite = time.monotonic() + delai
    while True:
        resultat = await condition()
        if resultat:
            return resultat
        if time.monotonic() > limite:
            raise AssertionError(f"jamais arrivé : {quoi}")
        await asyncio.sleep(0.05)


async def _get(url: str) -> httpx.Response | None:
    """A new connection each time, as a load balancer's probe; None when nothing serves it (the
    port closed, or a connection still in the closing listener's queue reset)."""
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(url)
    except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
        return None


async def test_sigterm_readyz_503_pendant_le_delai_puis_la_requete_en_cours_finit(
    tmp_path: Path, temporal: ServeurTemporalDev
) -> None:
    port = port_libre()
    base = f"http://127.0.0.1:{port}"
    api = Processus(
        "api",
        commande_modif_solde("api", "--host", "127.0.0.1", "--port", str(port)),
        tmp_path / "api.log",
        {
            "MODIF_SOLDE_ENVIRONNEMENT": "developpement",
            "MODIF_SOLDE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/arret.db",
            "MODIF_SOLDE_TEMPORAL_ADDRESS": temporal.adresse,
            "MODIF_SOLDE_STORAGE_DIR": str(tmp_path / "pieces"),
            "MODIF_SOLDE_JWT_SECRET": SECRET,
            "MODIF_SOLDE_ARRET_DELAI": "PT3S",
            "MODIF_SOLDE_ARRET_GRACE": "PT60S",
        },
    )
    api.demarrer()
    try:

        async def pret() -> bool:
            if not api.vivant:
                raise AssertionError(api.sortie())
            reponse = await _get(f"{base}/readyz")
            return reponse is not None and reponse.status_code == 200

        await _attendre(pret, 60, "l'API est prête")

        # An import whose body comes in two halves: the second only when the test says so.
        corps = json.dumps({**json.loads(EXEMPLE.read_text()), "numero": "FINMSS000777"}).encode()
        premiere_moitie_envoyee, envoyer_la_suite = asyncio.Event(), asyncio.Event()

        async def lentement() -> AsyncIterator[bytes]:
            yield corps[: len(corps) // 2]
            premiere_moitie_envoyee.set()
            await envoyer_la_suite.wait()
            yield corps[len(corps) // 2 :]

        jeton = emettre_jeton(SECRET, "gestionnaire.test", Role.GESTIONNAIRE)
        async with httpx.AsyncClient(timeout=120) as client:
            en_cours = asyncio.create_task(
                client.post(
                    f"{base}/api/v1/demandes",
                    content=lentement(),
                    headers={"Authorization": f"Bearer {jeton}", "Content-Type": "application/json"},
                )
            )
            await asyncio.wait_for(premiere_moitie_envoyee.wait(), 30)
            assert api.popen is not None
            api.popen.send_signal(signal.SIGTERM)

            # During the delay: not ready (the load balancer stops sending), still serving.
            async def pas_pret() -> httpx.Response | None:
                reponse = await _get(f"{base}/readyz")
                assert reponse is not None, "le port s'est fermé avant que /readyz réponde 503"
                return reponse if reponse.status_code == 503 else None

            readyz = await _attendre(pas_pret, 30, "/readyz répond 503")
            assert readyz.json() == {"statut": "arret_en_cours"}
            vivacite = await _get(f"{base}/healthz")
            assert vivacite is not None and vivacite.status_code == 200

            # Then no new connection is accepted, while the import is still under way.
            async def ferme() -> bool:
                return await _get(f"{base}/healthz") is None

            await _attendre(ferme, 60, "l'API n'accepte plus de connexion")
            assert not en_cours.done()
            assert api.vivant

            envoyer_la_suite.set()
            reponse = await asyncio.wait_for(en_cours, 60)
        assert reponse.status_code == 201, reponse.text
        assert reponse.json()["numero"] == "FINMSS000777"

        assert api.popen is not None
        code = await asyncio.to_thread(api.popen.wait, 60)
        assert code == 0, api.sortie()
    finally:
        api.tuer()
