"""Real processes for the tests that need them: the Temporal dev server (on a database file it
can be restarted on), the worker and the API as `modif-solde` commands, a PostgreSQL of the
test's own. Each one is killed by its owner's teardown, even when the test fails."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from modif_solde.config import Settings
from modif_solde.temporal import options_dev_server

BIN = Path(sys.executable).parent
TEMPORAL = BIN / "temporal"


# What a worker or an API in production needs besides its database, Temporal and keys: real
# addresses (production refuses the placeholders) and a retention period.
# What the legal pages need of the deployer, which production requires of the API (Settings' names).
PAGES_LEGALES_PRODUCTION = {
    "EDITEUR": "Agence de services et de paiement, 2 rue du Maupas, 87040 Limoges",
    "DIRECTEUR_PUBLICATION": "Camille Martin, directrice générale",
    "HEBERGEUR": "Hébergeur public, 1 rue de l'Hébergement, 75013 Paris, 01 02 03 04 05",
    "CONTACT_COURRIEL": "contact-modif-solde@portail.exemple.fr",
    "DPO_CONTACT": "dpo@portail.exemple.fr",
    "ACCESSIBILITE_STATUT": "partiellement conforme",
    "ACCESSIBILITE_AUDIT_DATE": "2026-11-30",
    "ACCESSIBILITE_AUDIT_PAR": "Audit Accessible SARL",
    "DUREE_CONSERVATION": "P5Y",
}


def pages_legales_production() -> dict[str, Any]:
    """The same, typed, for `Settings.model_copy(update=…)` (which converts nothing)."""
    return Settings(**PAGES_LEGALES_PRODUCTION).model_dump(include=set(PAGES_LEGALES_PRODUCTION))


REGLAGES_PRODUCTION = {
    **{f"MODIF_SOLDE_{nom}": valeur for nom, valeur in PAGES_LEGALES_PRODUCTION.items()},
    "MODIF_SOLDE_ENVIRONNEMENT": "production",
    "MODIF_SOLDE_PORTAIL_URL": "https://portail.exemple.fr",
    "MODIF_SOLDE_MAIL_FROM": "Portail <ne-pas-repondre@portail.exemple.fr>",
    "MODIF_SOLDE_GESTIONNAIRES_COURRIEL": "gestionnaires@portail.exemple.fr",
    "MODIF_SOLDE_DUREE_CONSERVATION": "P5Y",
}


def port_libre() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processus:
    """A child process in its own process group, its output in a log file."""

    def __init__(
        self, nom: str, commande: list[str], journal: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.nom, self.commande, self.journal = nom, commande, journal
        self.env = {**os.environ, **(env or {})}
        self.popen: subprocess.Popen[bytes] | None = None

    def demarrer(self) -> None:
        with self.journal.open("ab") as sortie:
            self.popen = subprocess.Popen(  # noqa: S603 (fixed commands of the test)
                self.commande, stdout=sortie, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )

    @property
    def vivant(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tuer(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL (no chance to clean up) by default; waits until the process is gone."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.popen = None

    def sortie(self) -> str:
        return self.journal.read_text(errors="replace")[-4000:]


class ServeurTemporalDev(Processus):
    """`temporal server start-dev` on free ports, its state in a SQLite file so that it can be
    killed and restarted on the same workflows."""

    def __init__(self, dossier: Path, attributs: bool = True) -> None:
        """`attributs`: the service's search attributes registered at start (`--search-attribute`),
        as `make run` does; without them, as a production namespace before `temporal preparer`."""
        self.port = port_libre()
        self.adresse = f"127.0.0.1:{self.port}"
        # The server's own metrics (Prometheus' format), as `PROMETHEUS_ENDPOINT` in compose.
        self.port_metriques = port_libre()
        commande = [
            str(TEMPORAL), "server", "start-dev", "--headless",
            "--ip", "127.0.0.1", "--port", str(self.port), "--ui-port", str(port_libre()),
            "--http-port", str(port_libre()), "--metrics-port", str(self.port_metriques),
            "--db-filename", str(dossier / "temporal.db"), "--log-level", "error",
        ]  # fmt: skip
        if attributs:
            commande += options_dev_server()
        super().__init__("temporal", commande, dossier / "temporal.log")

    async def client(self, delai: float = 30) -> Client:
        """Connect as soon as the server answers."""
        limite = time.monotonic() + delai
        while True:
            if not self.vivant:
                raise RuntimeError(f"le serveur Temporal de dev s'est arrêté : {self.sortie()}")
            try:
                return await Client.connect(self.adresse, data_converter=pydantic_data_converter)
            except RuntimeError:
                if time.monotonic() > limite:
                    raise
                await asyncio.sleep(0.2)


@asynccontextmanager
async def temporal_dev(dossier: Path, attributs: bool = True) -> AsyncIterator[ServeurTemporalDev]:
    """A dev server on `dossier`, yielded once it answers, killed on the way out (the test's
    fixtures, whatever their scope)."""
    serveur = ServeurTemporalDev(dossier, attributs)
    serveur.demarrer()
    try:
        await serveur.client()
        yield serveur
    finally:
        serveur.tuer()


class PostgresPropre(Processus):
    """A PostgreSQL of the test's own (initdb in a temporary folder, a free port), which the test
    may stop and start at will; never the machine's shared one. PostgreSQL refuses to run as
    root: under root, it runs as the `postgres` user (setpriv), in a folder that user owns."""

    def __init__(self) -> None:
        self.dossier = Path(tempfile.mkdtemp(prefix="modif-solde-pg-"))
        self.donnees = self.dossier / "pgdata"
        self.port = port_libre()
        prefixe: list[str] = []
        if os.geteuid() == 0:
            utilisateur = pwd.getpwnam("postgres")
            os.chown(self.dossier, utilisateur.pw_uid, utilisateur.pw_gid)
            prefixe = [
                "setpriv",
                f"--reuid={utilisateur.pw_uid}",
                f"--regid={utilisateur.pw_gid}",
                "--init-groups",
            ]
        initdb = shutil.which("initdb")
        if initdb is None:
            raise RuntimeError("initdb est introuvable dans le PATH (paquet postgresql)")
        subprocess.run(  # noqa: S603
            [
                *prefixe,
                initdb,
                "-D",
                str(self.donnees),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        commande = [
            *prefixe, shutil.which("postgres") or "postgres", "-D", str(self.donnees), "-p", str(self.port),
            "-k", str(self.dossier), "-h", "127.0.0.1", "-c", "fsync=off",
        ]  # fmt: skip
        super().__init__("postgres", commande, self.dossier / "postgres.log")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def arreter(self) -> None:
        """A fast shutdown (SIGINT): every connection is cut, as when the server goes down."""
        self.tuer(signal.SIGINT)

    def supprimer(self) -> None:
        self.tuer()
        shutil.rmtree(self.dossier, ignore_errors=True)

    async def attendre_pret(self, delai: float = 30) -> None:
        import asyncpg

        limite = time.monotonic() + delai
        while True:
            try:
                conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user="postgres")
                await conn.close()
                return
            except (OSError, asyncpg.PostgresError):
                if not self.vivant or time.monotonic() > limite:
                    raise RuntimeError(f"PostgreSQL ne démarre pas : {self.sortie()}") from None
                await asyncio.sleep(0.1)


def commande_modif_solde(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "modif_solde.cli", *arguments]


@asynccontextmanager
async def api_lancee(
    dossier: Path, env: Mapping[str, str], delai: float = 60
) -> AsyncIterator[tuple[str, Processus]]:
    """`modif-solde api` on a free loopback port with these settings, yielded (its URL and the
    process) once /healthz answers, killed on the way out."""
    import httpx

    port = port_libre()
    api = Processus(
        "api",
        commande_modif_solde("api", "--host", "127.0.0.1", "--port", str(port)),
        dossier / "api.log",
        env,
    )
    api.demarrer()
    url = f"http://127.0.0.1:{port}"
    try:
        limite = time.monotonic() + delai
        async with httpx.AsyncClient(base_url=url) as client:
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if not api.vivant or time.monotonic() > limite:
                    raise RuntimeError(f"l'API ne répond pas : {api.sortie()}")
                await asyncio.sleep(0.05)
        yield url, api
    finally:
        api.tuer()
