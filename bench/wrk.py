"""Closed-loop reads by wrk (Debian's `wrk`, C, epoll): the client is no longer the bottleneck.

wrk runs with one thread and a few connections: on two cores, the second core is the API's (a
single Python process). Its own CPU is measured (its rusage once it ended) and reported beside.
Closed loop: each connection sends its next request when the previous one answered, so these are
throughput figures; the latencies are the ones seen by such clients (coordinated omission)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "lectures.lua"
FILS = 1
CONNEXIONS = 16


def disponible() -> str | None:
    return shutil.which("wrk")


def _executer(commande: list[str], env: dict[str, str], journal: Path) -> tuple[int, str, float]:
    with journal.open("wb") as sortie:
        proc = subprocess.Popen(commande, stdout=sortie, stderr=subprocess.STDOUT, env=env)
        # wait4: the child's own rusage (user + system CPU), whatever else this process runs.
        _, statut, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(statut)
    return proc.returncode, journal.read_text(errors="replace"), usage.ru_utime + usage.ru_stime


async def lire(
    url: str,
    chemins: list[str],
    entete: str,
    duree: float,
    dossier: Path,
    nom: str,
    connexions: int = CONNEXIONS,
    fils: int = FILS,
    apres_chauffe: Callable[[], Any] | None = None,
) -> tuple[dict[str, Any], Any]:
    """wrk against `url` for `duree` seconds (after a 1 s warm-up run); answers requests/s,
    p50/p90/p99 in ms, errors, and wrk's CPU seconds, and what `apres_chauffe` answered (called
    between the warm-up and the measured run: a CPU counter)."""
    binaire = disponible()
    if binaire is None:
        raise RuntimeError("wrk introuvable : make wrk (apt-get install -y --no-install-recommends wrk)")
    fichier = dossier / f"chemins-{nom}.txt"
    fichier.write_text("\n".join(chemins) + "\n")
    env = {**os.environ, "BANC_CHEMINS": str(fichier), "BANC_ENTETE": entete}
    base = [binaire, "-t", str(fils), "-c", str(connexions), "-s", str(SCRIPT), "--timeout", "30s"]
    # Warm-up: connections, the API's caches, the database's buffers.
    await asyncio.to_thread(_executer, [*base, "-d", "1s", url], env, dossier / f"wrk-{nom}-chauffe.log")
    temoin = apres_chauffe() if apres_chauffe is not None else None
    code, sortie, cpu = await asyncio.to_thread(
        _executer, [*base, "-d", f"{max(1, round(duree))}s", url], env, dossier / f"wrk-{nom}.log"
    )
    ligne = next((x for x in sortie.splitlines() if x.startswith("BANC-JSON ")), None)
    if code != 0 or ligne is None:
        raise RuntimeError(f"wrk en échec ({code}) sur {url} :\n{sortie[-2000:]}")
    brut = json.loads(ligne.removeprefix("BANC-JSON "))
    duree_s = brut["duree_us"] / 1e6
    return {
        "rps": round(brut["requetes"] / duree_s, 1),
        "requetes": brut["requetes"],
        "duree_s": round(duree_s, 2),
        "p50_ms": round(brut["p50_us"] / 1000, 2),
        "p90_ms": round(brut["p90_us"] / 1000, 2),
        "p99_ms": round(brut["p99_us"] / 1000, 2),
        "max_ms": round(brut["max_us"] / 1000, 2),
        "erreurs": brut["non_2xx"] + brut["erreurs_socket"],
        "octets_par_reponse": round(brut["octets"] / max(brut["requetes"], 1)),
        "wrk_cpu_s": round(cpu, 2),
        "wrk_cpu_pct": round(100 * cpu / duree_s, 1),
        "connexions": connexions,
        "fils": fils,
    }, temoin
