"""The bench's own rules: the open-loop generator does not omit a stall, a rate is held only when
every e-mail came in time, and the targets say what was not measured. No timing is asserted."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import pytest

from bench import ouvert, rapport
from bench.processus import port_libre
from bench.puits import PuitsHorodate

N = 10
RACINE = Path(__file__).resolve().parents[2]


class Bloquee:
    """An ASGI app that answers nobody until all N requests have arrived: a stalled service."""

    def __init__(self) -> None:
        self.arrivees = 0
        self.toutes = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        self.arrivees += 1
        if self.arrivees == N:
            self.toutes.set()
        await self.toutes.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def test_la_boucle_ouverte_envoie_pendant_un_arret_et_compte_depuis_l_instant_prevu() -> None:
    app = Bloquee()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://banc") as http:

        async def appeler(numero: str) -> tuple[int, str]:
            reponse = await http.post(f"/ouvrir/{numero}")
            return reponse.status_code, reponse.text

        # A generator that waited for each answer before the next send would never get one.
        salve = await asyncio.wait_for(
            ouvert.salve(50.0, [f"D{i}" for i in range(N)], appeler, lambda n: f"{n}:invitation"), timeout=60
        )
    assert [e.statut for e in salve.envois] == [201] * N
    dernier_prevu = salve.envois[-1].prevu
    for envoi in salve.envois:
        # The first request waited for the last one's send: its latency, from its own intended
        # time, includes the whole stall.
        assert envoi.fin - envoi.prevu >= dernier_prevu - envoi.prevu
    assert salve.envois[0].fin - salve.envois[0].prevu >= (N - 1) / 50.0


async def test_un_rythme_n_est_tenu_que_si_chaque_courriel_est_arrive() -> None:
    puits = PuitsHorodate(port_libre())  # never started: its arrivals are written here
    salve = ouvert.Salve(
        10.0, [ouvert.Envoi(f"D{i}M1:invitation", prevu=float(i), fin=i + 0.1, statut=201) for i in range(3)]
    )
    for envoi in salve.envois:
        puits.arrivees[envoi.cle] = envoi.prevu + 0.2
    tenu, _ = await ouvert.mesurer(salve, puits, delai=0.1, prefixe="invitation")
    assert tenu["tenu"] is True
    assert tenu["courriels_manquants"] == 0

    del puits.arrivees["D2M1:invitation"]
    manque, latences = await ouvert.mesurer(salve, puits, delai=0.1, prefixe="invitation")
    assert manque["tenu"] is False
    assert manque["courriels_manquants"] == 1
    assert len(latences) == 2

    puits.arrivees["D2M1:invitation"] = 2 + ouvert.SEUIL_P99_S + 0.5
    lent, _ = await ouvert.mesurer(salve, puits, delai=0.1, prefixe="invitation")
    assert lent["tenu"] is False


@pytest.mark.parametrize(
    ("mesures", "atteints"),
    [
        ({}, {"cpu_ouverture_total_ms": None, "sql_page_demande": None, "cycle_20j_s": None}),
        (
            {"cpu_ouverture_total_ms": 39.0, "sql_page_demande": 7},
            {"cpu_ouverture_total_ms": True, "sql_page_demande": False, "cycle_20j_s": True},
        ),
    ],
)
def test_les_objectifs_disent_atteint_ou_non_mesure(
    mesures: dict[str, Any], atteints: dict[str, Any]
) -> None:
    communs = {"cycle_20j_s": 0.2} if mesures else {}
    objectifs = rapport.evaluer(mesures, communs)
    assert {cle: objectifs[cle]["atteint"] for cle in atteints} == atteints
    lignes = rapport.objectifs({"par_base": {"postgresql": {"objectifs": objectifs}}})
    assert len(lignes) == 2 + len(rapport.OBJECTIFS)
    if not mesures:
        assert all("non mesuré" in ligne for ligne in lignes[2:])


async def test_le_puits_reveille_qui_attend_un_courriel_et_dit_ceux_qui_manquent() -> None:
    """Over real SMTP: a wait for a few keys ends when the message arrives (woken by the
    arrival, not by a poll), and a key that never comes is answered missing once the time is up."""
    puits = PuitsHorodate(port_libre()).demarrer()
    try:
        attente = asyncio.create_task(puits.attendre(["D1M1:invitation"], delai=30))
        await asyncio.sleep(0)  # registered before the message is sent
        await aiosmtplib.send(
            b"From: a@banc.invalid\r\nTo: b@banc.invalid\r\nX-Modif-Solde-Cle: D1M1:invitation\r\n\r\nx\r\n",
            sender="a@banc.invalid",
            recipients=["b@banc.invalid"],
            hostname="127.0.0.1",
            port=puits.port,
        )
        assert await asyncio.wait_for(attente, timeout=30) == []
        assert "D1M1:invitation" in puits.arrivees
        assert await puits.attendre(["D1M1:invitation", "D2M1:invitation"], delai=0.2) == ["D2M1:invitation"]
    finally:
        puits.arreter()


def test_les_cycles_de_20_jours_se_mesurent_seuls(tmp_path: Path) -> None:
    """`python -m bench --seulement sablier`: the cycles alone, on the time-skipping server, to
    their own JSON (one warm-up cycle not counted, then the counted ones, each run to its expiry
    e-mail)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODIF_SOLDE_")}
    options = ["--seulement", "sablier", "--cycles", "2", "--sortie", str(tmp_path)]
    commande = [sys.executable, "-m", "bench", *options]
    resultat = subprocess.run(  # noqa: S603 (the project's own bench)
        commande, cwd=RACINE, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert resultat.returncode == 0, resultat.stderr[-2000:]
    (fichier,) = tmp_path.glob("*-sablier.json")
    mesure = json.loads(fichier.read_text())
    assert mesure["cycles"] == 2
    assert 0 < mesure["cycle_20j_min_s"] <= mesure["cycle_20j_s"] <= mesure["cycle_20j_max_s"]
