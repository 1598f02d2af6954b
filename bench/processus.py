"""The bench's child processes: free ports, one process group each, always stopped."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

journal = logging.getLogger("bench")

PYTHON = sys.executable
BIN = Path(sys.executable).parent
# What `make run` listens on: the bench must be able to run beside it.
PORTS_RESERVES = {7233, 8233, 8000, 1025}


def port_libre() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in PORTS_RESERVES:
            return port


@dataclass
class Enfant:
    nom: str
    popen: subprocess.Popen[bytes]
    journal: Path
    lance_le: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def vivant(self) -> bool:
        return self.popen.poll() is None

    def fin_du_journal(self, octets: int = 3000) -> str:
        try:
            return self.journal.read_bytes()[-octets:].decode(errors="replace")
        except OSError:
            return ""

    def verifier(self) -> None:
        if not self.vivant():
            raise RuntimeError(
                f"{self.nom} s'est arrêté (code {self.popen.returncode}) :\n{self.fin_du_journal()}"
            )


class Enfants:
    """Every process the bench starts, so that a failure or Ctrl-C still stops them all."""

    def __init__(self, dossier: Path, code: Path) -> None:
        self.dossier = dossier
        # The children run the bench's copy of the code (bench/instantane.py): `python -m` puts
        # the working directory first on their sys.path.
        self.code = code
        self.actifs: list[Enfant] = []
        self._compte = 0

    def lancer(self, nom: str, commande: list[str], env: dict[str, str] | None = None) -> Enfant:
        self._compte += 1
        chemin = self.dossier / f"{self._compte:02d}-{nom}.log"
        # The children's own output (their logs) goes to files, not to the bench's console.
        with chemin.open("wb") as sortie:
            popen = subprocess.Popen(
                commande,
                stdout=sortie,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env if env is not None else dict(os.environ),
                cwd=self.code,
                # Its own process group: Ctrl-C on the terminal reaches the bench only, which then
                # stops the children in order (API and worker before Temporal).
                start_new_session=True,
            )
        enfant = Enfant(nom, popen, chemin)
        self.actifs.append(enfant)
        journal.debug("lancé %s (pid %s)", nom, popen.pid)
        return enfant

    def arreter(self, enfant: Enfant, delai: float = 30.0, sig: signal.Signals = signal.SIGTERM) -> None:
        if enfant.vivant():
            _signal_groupe(enfant.pid, sig)
            try:
                enfant.popen.wait(timeout=delai)
            except subprocess.TimeoutExpired:
                journal.warning("%s ne s'arrête pas : SIGKILL", enfant.nom)
                _signal_groupe(enfant.pid, signal.SIGKILL)
                enfant.popen.wait(timeout=10)
        # Anything it left in its group (none expected) goes too.
        _signal_groupe(enfant.pid, signal.SIGKILL)
        if enfant in self.actifs:
            self.actifs.remove(enfant)

    def tout_arreter(self, delai: float = 30.0) -> None:
        for enfant in reversed(list(self.actifs)):
            try:
                self.arreter(enfant, delai)
            except Exception as err:  # keep stopping the others
                journal.error("arrêt de %s : %s", enfant.nom, err)


def _signal_groupe(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def rss_mo(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


class CompteurCpu:
    """CPU seconds used per process during a phase: who saturates the two cores."""

    def __init__(self, pids: dict[str, int], base_pg: str | None = None) -> None:
        self.pids = pids
        self.base_pg = base_pg
        self._debut = time.monotonic()
        self._avant = self._mesurer()

    def _mesurer(self) -> dict[str, float]:
        mesures: dict[str, float] = {}
        for nom, pid in self.pids.items():
            try:
                t = psutil.Process(pid).cpu_times()
                mesures[nom] = t.user + t.system
            except psutil.Error:
                pass
        # PostgreSQL's server: its backends are not ours, read only, summed under one name.
        mesures["postgres"] = cpu_postgres(self.base_pg)
        return mesures

    def par_operation(self, operations: int) -> dict[str, float]:
        """After `fin`: milliseconds of CPU per operation, per process, and their sum."""
        if operations <= 0:
            return {}
        ms = {
            f"{nom}_ms": round(1000 * v / operations, 2)
            for nom, v in self.deltas.items()
            if nom not in ("bench", "worker_noop", "wrk")
        }
        ms["total_ms"] = round(sum(ms.values()), 2)
        return ms

    def fin(self) -> dict[str, float]:
        apres = self._mesurer()
        duree = time.monotonic() - self._debut
        # Unrounded, for the CPU per operation.
        self.deltas = {nom: apres[nom] - self._avant.get(nom, 0.0) for nom in apres}
        resultat = {
            f"{nom}_cpu_s": round(apres[nom] - self._avant.get(nom, 0.0), 2) for nom in apres if nom in apres
        }
        resultat["duree_s"] = round(duree, 2)
        return resultat


def cpu_postgres(base: str | None = None) -> float:
    """CPU seconds of the PostgreSQL server: the postmaster and its children (backends and
    background processes). With `base`, the other databases' client backends are left out (the
    server is shared); the background processes (WAL writer, checkpointer, autovacuum...) are
    counted whole. A backend that ended during a phase takes its CPU with it: the bench's pools
    keep theirs open."""
    total = 0.0
    for proc in psutil.process_iter(["name", "ppid", "cmdline"]):
        if proc.info["name"] not in ("postgres", "postmaster"):
            continue
        ligne = " ".join(proc.info["cmdline"] or [])
        # A client backend's title: "postgres: 15/main: user database 127.0.0.1(port) state".
        client = "(" in ligne and ")" in ligne
        if base is not None and client and f" {base} " not in ligne:
            continue
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total
