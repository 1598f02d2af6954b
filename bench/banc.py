"""The bench's run: its own stack on free ports, the phases in order, the results."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import logging
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
import temporalio
from temporalio.api.enums.v1 import IndexedValueType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench import bases, charge, file, portail, profil, rapport, sablier
from bench.instantane import DEPOT
from bench.processus import BIN, PYTHON, CompteurCpu, Enfant, Enfants, port_libre, rss_mo
from bench.puits import PuitsHorodate
from modif_solde.api.auth import Role, emettre_jeton
from modif_solde.config import Settings
from modif_solde.temporal import SEARCH_ATTRIBUTES, connecter, enregistrer_search_attributes
from modif_solde.workflows.contrat import ModificationEntree

journal = logging.getLogger("bench")

RESULTATS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")
# Openings one at a time after the loaded ones: the unloaded latency.
SONDE = 20
_TYPES_SA = {
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    IndexedValueType.INDEXED_VALUE_TYPE_TEXT: "Text",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
}


@dataclass
class Options:
    n: int
    concurrence: int
    operateurs: int
    duree_lecture: float
    attente: int
    base_attente: str
    echantillon: int
    cycles: int
    bases: list[str]
    pg_admin: str
    garder: bool
    profil: bool
    source: Path | None
    sortie: Path
    seulement: str | None = None
    file_demandes: int = file.DEMANDES


@dataclass
class Contexte:
    opts: Options
    enfants: Enfants
    dossier: Path
    puits: PuitsHorodate
    client: Client
    adresse: str
    secret: str
    secret_session: str
    jeton: str
    tq_noop: str
    temporal: Enfant
    noop: Enfant
    profils: Path | None
    phases: dict[str, float] = field(default_factory=dict)


@dataclass
class Pile:
    """One backend's service: its database, task queue, worker and API."""

    base: str
    url: str
    task_queue: str
    env: dict[str, str]
    api_url: str
    api: Enfant | None = None
    worker: Enfant | None = None


# --- the stack ---------------------------------------------------------------------------------


def env_propre() -> dict[str, str]:
    """The children's environment without any MODIF_SOLDE_* of the caller's shell (a short
    EXPIRATION_APRES there would expire the waiting modifications mid-run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODIF_SOLDE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def lancer_temporal(enfants: Enfants) -> tuple[Enfant, str]:
    port = port_libre()
    attributs = [
        a
        for nom, type_ in SEARCH_ATTRIBUTES.items()
        for a in ("--search-attribute", f"{nom}={_TYPES_SA[type_]}")
    ]
    commande = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        # Explicit, so that nothing lands on a port of `make run`'s stack.
        "--http-port",
        str(port_libre()),
        "--metrics-port",
        str(port_libre()),
        "--log-level",
        "warn",
        *attributs,
    ]
    return enfants.lancer("temporal", commande, env_propre()), f"127.0.0.1:{port}"


async def connecter_temporal(adresse: str, temporal: Enfant, delai: float = 60.0) -> Client:
    # The service's own client settings (namespace, pydantic data converter).
    settings = Settings(TEMPORAL_ADDRESS=adresse)
    limite = time.monotonic() + delai
    while True:
        temporal.verifier()
        try:
            client = await connecter(settings)
            await client.service_client.check_health()
            return client
        except Exception:
            if time.monotonic() > limite:
                raise
            await asyncio.sleep(0.25)


async def attendre_poller(client: Client, task_queue: str, worker: Enfant, delai: float = 90.0) -> float:
    """Until the server sees a workflow poll from this process (the SDK's identity is
    `pid@host`); answers the seconds since the process was spawned."""
    limite = time.monotonic() + delai
    requete = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    while True:
        worker.verifier()
        reponse = await client.workflow_service.describe_task_queue(requete)
        if any(p.identity.startswith(f"{worker.pid}@") for p in reponse.pollers):
            return time.monotonic() - worker.lance_le
        if time.monotonic() > limite:
            raise RuntimeError(f"{worker.nom} n'interroge pas {task_queue} :\n{worker.fin_du_journal()}")
        await asyncio.sleep(0.05)


async def attendre_http(url: str, enfant: Enfant, delai: float = 60.0) -> None:
    limite = time.monotonic() + delai
    async with httpx.AsyncClient(timeout=2) as http:
        while True:
            enfant.verifier()
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > limite:
                raise RuntimeError(f"{enfant.nom} ne répond pas sur {url} :\n{enfant.fin_du_journal()}")
            await asyncio.sleep(0.1)


def lancer_worker(ctx: Contexte, pile: Pile) -> Enfant:
    # As operations run it: `python -m modif_solde.cli worker`, settings from the environment.
    return ctx.enfants.lancer(f"worker-{pile.base}", [PYTHON, "-m", "modif_solde.cli", "worker"], pile.env)


def lancer_api(ctx: Contexte, pile: Pile, port: int) -> Enfant:
    commande = [PYTHON, "-m", "modif_solde.cli", "api", "--host", "127.0.0.1", "--port", str(port)]
    return ctx.enfants.lancer(f"api-{pile.base}", commande, pile.env)


def pids(ctx: Contexte, pile: Pile | None = None) -> dict[str, int]:
    resultat = {"bench": os.getpid(), "temporal": ctx.temporal.pid, "worker_noop": ctx.noop.pid}
    if pile is not None and pile.worker is not None:
        resultat["worker"] = pile.worker.pid
    if pile is not None and pile.api is not None:
        resultat["api"] = pile.api.pid
    return resultat


async def rss_stable(pid: int, pause: float = 3.0) -> float:
    """The worker's RSS once it is quiet: a pause, then the mean of five samples."""
    await asyncio.sleep(pause)
    mesures = []
    for _ in range(5):
        mesures.append(rss_mo(pid))
        await asyncio.sleep(0.2)
    return round(sum(mesures) / len(mesures), 1)


class Profils:
    """With --profil: py-spy on the given processes for the duration of a block."""

    def __init__(self, ctx: Contexte, phase: str, cibles: dict[str, Enfant | None]) -> None:
        self.ctx, self.phase, self.cibles = ctx, phase, cibles
        self.actifs: list[tuple[Enfant, Path]] = []

    def __enter__(self) -> Profils:
        if self.ctx.profils is not None:
            for nom, cible in self.cibles.items():
                if cible is None:
                    continue
                sortie = self.ctx.profils / f"{self.phase}-{nom}.txt"
                espion = profil.demarrer(self.ctx.enfants, cible, sortie)
                if espion is not None:
                    self.actifs.append((espion, sortie))
        return self

    def __exit__(self, *_: object) -> None:
        for espion, sortie in self.actifs:
            # py-spy writes its samples on SIGINT.
            self.ctx.enfants.arreter(espion, delai=30, sig=signal.SIGINT)
            if sortie.exists():
                resume = profil.resumer(sortie)
                sortie.with_suffix(".resume.txt").write_text(resume)
                journal.info("  profil : %s", sortie.with_suffix(".resume.txt"))


# --- the phases ----------------------------------------------------------------------------------


async def phase_base(
    ctx: Contexte, base: str
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[float]]]:
    """One backend: import, its own worker and API, raw baseline, openings, reads, waiting."""
    opts = ctx.opts
    r: dict[str, Any] = {"n": opts.n}
    debut = time.monotonic()
    journal.info("[%s] base de données et import de %d demandes", base, opts.n)
    url = await bases.preparer(base, ctx.dossier, opts.pg_admin)
    liste = bases.numeros(base, 1, opts.n)
    sonde = bases.numeros(base, opts.n + 1, opts.n + SONDE)
    stockage = ctx.dossier / f"pieces-{base}"
    r["import_per_s"] = round(await bases.importer(url, stockage, [*liste, *sonde], pieces=1), 1)

    api_port = port_libre()
    api_url = f"http://127.0.0.1:{api_port}"
    task_queue = f"bench-{base}-{uuid.uuid4().hex[:8]}"
    env = env_propre() | {
        "MODIF_SOLDE_DATABASE_URL": url,
        "MODIF_SOLDE_TEMPORAL_ADDRESS": ctx.adresse,
        "MODIF_SOLDE_TASK_QUEUE": task_queue,
        "MODIF_SOLDE_SMTP_URL": ctx.puits.url,
        "MODIF_SOLDE_JWT_SECRET": ctx.secret,
        # The portal's settings, as production requires them; the provider is never reached
        # (the portal scenario's operators come with their session).
        "MODIF_SOLDE_SESSION_SECRET": ctx.secret_session,
        "MODIF_SOLDE_OIDC_CLIENT_SECRET": secrets.token_urlsafe(32),
        "MODIF_SOLDE_OIDC_DISCOVERY_URL": "https://fournisseur.bench.invalid/.well-known/openid-configuration",
        "MODIF_SOLDE_STORAGE_DIR": str(stockage),
        "MODIF_SOLDE_PORTAIL_URL": api_url,
        "MODIF_SOLDE_GESTIONNAIRES_COURRIEL": "gestionnaires@bench.invalid",
    }
    pile = Pile(base, url, task_queue, env, api_url)
    distributions: dict[str, list[float]] = {}
    page: dict[str, Any] = {}
    try:
        pile.worker = lancer_worker(ctx, pile)
        pile.api = lancer_api(ctx, pile, api_port)
        r["worker_ready_s"] = round(await attendre_poller(ctx.client, task_queue, pile.worker), 2)
        await attendre_http(f"{api_url}/healthz", pile.api)
        r["worker_rss_mb_idle"] = await rss_stable(pile.worker.pid)
        ctx.phases[f"{base}_preparation"] = round(time.monotonic() - debut, 1)

        # 2. The raw baseline, right before the openings: same server, same moment.
        journal.info(
            "[%s] référence brute : %d workflows no-op, %d à la fois", base, opts.n, opts.concurrence
        )
        debut = time.monotonic()
        cpu = CompteurCpu(pids(ctx, pile))
        ids = [f"noop-{base}-{i}-{uuid.uuid4().hex[:6]}" for i in range(opts.n)]
        r.update(await charge.demarrer_noop(ctx.client, ctx.tq_noop, ids, opts.concurrence))
        r["cpu_baseline"] = cpu.fin()
        ctx.phases[f"{base}_baseline"] = round(time.monotonic() - debut, 1)
        journal.info("[%s]   %.1f démarrages/s", base, r["baseline_starts_per_s"])

        # 1. Openings through the API, and their invitations at the sink.
        journal.info("[%s] ouvertures par l'API : %d, %d clients", base, opts.n, opts.concurrence)
        debut = time.monotonic()
        cpu = CompteurCpu(pids(ctx, pile))
        with Profils(ctx, f"{base}-ouvertures", {"api": pile.api, "worker": pile.worker}):
            ouvertures = await charge.ouvrir_par_api(api_url, ctx.jeton, liste, opts.concurrence)
            reussies = [o for o in ouvertures.appels if o.statut == 201]
            r["opens_per_s"] = round(len(reussies) / ouvertures.duree_s, 2)
            r["opens_s"] = round(ouvertures.duree_s, 2)
            r["opens_errors"] = sum(ouvertures.erreurs.values())
            r["opens_errors_by_status"] = {str(k): v for k, v in ouvertures.erreurs.items()}
            cles = [f"{o.modification}:invitation" for o in ouvertures.appels]
            manquantes = await ctx.puits.attendre(cles, delai=180)
        r["cpu_opens"] = cpu.fin()
        r["invitations_missing"] = len(manquantes)
        r["invitations_all_in_s"] = round(
            max((ctx.puits.arrivees[c] for c in cles if c in ctx.puits.arrivees), default=0)
            - min(o.debut for o in ouvertures.appels),
            2,
        )
        latences = [
            ctx.puits.arrivees[f"{o.modification}:invitation"] - o.debut
            for o in ouvertures.appels
            if f"{o.modification}:invitation" in ctx.puits.arrivees
        ]
        distributions["invitation"] = latences
        r.update(charge.centiles(latences, "open_to_invitation", "s"))
        r.update(charge.centiles([o.fin - o.debut for o in reussies], "open_http", "s"))
        r["ratio_opens_vs_baseline"] = round(r["opens_per_s"] / r["baseline_starts_per_s"], 3)
        # Against the no-op's completions too: a start alone runs no workflow task, an opening
        # waits for two workflow tasks and an activity.
        r["ratio_opens_vs_baseline_completed"] = round(r["opens_per_s"] / r["baseline_completed_per_s"], 3)
        ctx.phases[f"{base}_ouvertures"] = round(time.monotonic() - debut, 1)
        journal.info(
            "[%s]   %.1f ouvertures/s, invitation p50 %.3f s p99 %.3f s, %d erreurs, %d invitations manquantes",
            base,
            r["opens_per_s"],
            r.get("open_to_invitation_p50_s", float("nan")),
            r.get("open_to_invitation_p99_s", float("nan")),
            r["opens_errors"],
            len(manquantes),
        )
        r["worker_rss_mb_1k"] = await rss_stable(pile.worker.pid)
        r["waiting_1k"] = len(reussies)

        # The same opening with nothing else running, one at a time: the floor under the
        # loaded latencies above (what is queueing, what is the path itself).
        journal.info("[%s] ouvertures à vide : %d, une à la fois", base, SONDE)
        a_vide = await charge.ouvrir_par_api(api_url, ctx.jeton, sonde, 1)
        manquantes = await ctx.puits.attendre(
            [f"{o.modification}:invitation" for o in a_vide.appels], delai=60
        )
        r["unloaded_invitations_missing"] = len(manquantes)
        r.update(
            charge.centiles(
                [
                    ctx.puits.arrivees[f"{o.modification}:invitation"] - o.debut
                    for o in a_vide.appels
                    if f"{o.modification}:invitation" in ctx.puits.arrivees
                ],
                "unloaded_open_to_invitation",
                "s",
            )
        )
        r.update(charge.centiles([o.fin - o.debut for o in a_vide.appels], "unloaded_open_http", "s"))
        journal.info(
            "[%s]   à vide : POST p50 %.3f s, invitation p50 %.3f s",
            base,
            r.get("unloaded_open_http_p50_s", float("nan")),
            r.get("unloaded_open_to_invitation_p50_s", float("nan")),
        )

        # 3. Reads of the request page.
        journal.info(
            "[%s] lectures GET pendant %.0f s, %d clients", base, opts.duree_lecture, opts.concurrence
        )
        debut = time.monotonic()
        entetes = {"Authorization": f"Bearer {ctx.jeton}"}
        async with httpx.AsyncClient(base_url=api_url, timeout=30) as http:
            reponse = await http.get(f"/api/v1/demandes/{liste[0]}", headers=entetes)
            reponse.raise_for_status()
            page = reponse.json()
            r["api_get_body_bytes"] = len(reponse.content)
        cpu = CompteurCpu(pids(ctx, pile))
        with Profils(ctx, f"{base}-lectures", {"api": pile.api}):
            lectures = await charge.lire_en_charge(
                api_url,
                [f"/api/v1/demandes/{n}" for n in liste],
                entetes,
                opts.concurrence,
                opts.duree_lecture,
            )
        r["cpu_reads"] = cpu.fin()
        distributions["lecture"] = lectures.latences_s
        r.update(charge.centiles(lectures.latences_s, "api_get", "ms", 1000))
        r["api_get_rps"] = round(lectures.rps, 1)
        r["api_get_errors"] = lectures.erreurs
        ctx.phases[f"{base}_lectures"] = round(time.monotonic() - debut, 1)
        journal.info("[%s]   %.0f req/s, p99 %.1f ms", base, lectures.rps, r.get("api_get_p99_ms", 0))

        # 3b. The portal: operators browsing and editing through the pages, then the same
        # rounds through the API (one after the other, the same duration each).
        if opts.operateurs > 0:
            await phase_portail(ctx, pile, liste, r)

        # 4. Waiting cost, on one backend.
        if base == opts.base_attente and opts.attente > opts.n + SONDE:
            await phase_attente(ctx, pile, r)
    finally:
        for enfant in (pile.api, pile.worker):
            if enfant is not None:
                ctx.enfants.arreter(enfant)
    return r, page, distributions


async def phase_portail(ctx: Contexte, pile: Pile, liste: list[str], r: dict[str, Any]) -> None:
    opts = ctx.opts
    journal.info(
        "[%s] portail : %d opérateurs, %.0f s par les pages puis %.0f s par l'API",
        pile.base,
        opts.operateurs,
        opts.duree_lecture,
        opts.duree_lecture,
    )
    debut = time.monotonic()
    cpu = CompteurCpu(pids(ctx, pile))
    with Profils(ctx, f"{pile.base}-portail", {"api": pile.api}):
        pages = await portail.parcourir_pages(
            pile.api_url, ctx.secret_session, bases.SIRET, liste, opts.operateurs, opts.duree_lecture
        )
    r["cpu_portal"] = cpu.fin()
    cpu = CompteurCpu(pids(ctx, pile))
    api = await portail.parcourir_api(
        pile.api_url, ctx.secret, bases.SIRET, liste, opts.operateurs, opts.duree_lecture
    )
    r["cpu_portal_api"] = cpu.fin()
    r.update(portail.mesures(pages, api))
    ctx.phases[f"{pile.base}_portail"] = round(time.monotonic() - debut, 1)
    journal.info(
        "[%s]   pages : %.1f tours/s, %d erreurs ; API : %.1f tours/s, %d erreurs",
        pile.base,
        r["portal_rounds_per_s"],
        r["portal_errors"],
        r["portal_api_rounds_per_s"],
        r["portal_api_errors"],
    )


async def phase_attente(ctx: Contexte, pile: Pile, r: dict[str, Any]) -> None:
    opts = ctx.opts
    assert pile.worker is not None
    base = pile.base
    # The probe's modifications (see phase_base) wait too: n + SONDE + extra = attente.
    extra = bases.numeros(base, opts.n + SONDE + 1, opts.attente)
    journal.info("[%s] attente : import de %d demandes de plus (sans pièce)", base, len(extra))
    debut = time.monotonic()
    await bases.importer(pile.url, ctx.dossier / f"pieces-{base}", extra, pieces=0, lot=250)
    ctx.phases[f"{base}_import_attente"] = round(time.monotonic() - debut, 1)

    journal.info(
        "[%s] attente : %d ouvertures directes (demarrer_modification), ≈ %.0f min au rythme des ouvertures",
        base,
        len(extra),
        len(extra) / max(r["opens_per_s"], 1.0) / 60,
    )
    debut = time.monotonic()
    settings = Settings()
    entrees = [
        ModificationEntree(
            demande_numero=numero,
            modification_numero=f"{numero}M1",
            commentaire=str(charge.OUVERTURE["commentaire"]),
            champs=["contact_support_telephone"],
            ouverte_par="gestionnaire.bench",
            relance_apres=settings.RELANCE_APRES,
            expiration_apres=settings.EXPIRATION_APRES,
        )
        for numero in extra
    ]
    cpu = CompteurCpu(pids(ctx, pile))
    r.update(
        await charge.ouvrir_directement(ctx.client, pile.task_queue, entrees, opts.concurrence, bases.SIRET)
    )
    manquantes = await ctx.puits.attendre([f"{e.modification_numero}:invitation" for e in entrees], delai=300)
    r["cpu_direct_opens"] = cpu.fin()
    r["direct_invitations_missing"] = len(manquantes)
    ctx.phases[f"{base}_ouvertures_directes"] = round(time.monotonic() - debut, 1)
    journal.info("[%s]   %.1f ouvertures directes/s", base, r["direct_opens_per_s"])
    r["worker_rss_mb_10k"] = await rss_stable(pile.worker.pid)
    r["waiting_10k"] = r["waiting_1k"] + SONDE + len(extra) - sum(r["direct_opens_errors"].values())
    r["worker_rss_growth_mb_1k_10k"] = round(r["worker_rss_mb_10k"] - r["worker_rss_mb_1k"], 1)
    journal.info(
        "[%s]   RSS du worker : %.1f Mo (1k) → %.1f Mo (10k)",
        base,
        r["worker_rss_mb_1k"],
        r["worker_rss_mb_10k"],
    )

    # Restart: a fresh worker process, timed from its spawn until a sample of the waiting
    # workflows answers the `etat` query (each one replayed from its history on the new worker).
    journal.info("[%s] redémarrage du worker, puis requête etat sur %d workflows", base, opts.echantillon)
    debut = time.monotonic()
    arret = time.monotonic()
    ctx.enfants.arreter(pile.worker)
    r["restart_stop_s"] = round(time.monotonic() - arret, 2)
    pile.worker = lancer_worker(ctx, pile)
    origine = pile.worker.lance_le
    r["restart_poller_s"] = round(await attendre_poller(ctx.client, pile.task_queue, pile.worker), 3)
    tous = [f"{n}M1" for n in bases.numeros(base, 1, opts.attente)]
    echantillon = random.sample(tous, min(opts.echantillon, len(tous)))
    cpu = CompteurCpu(pids(ctx, pile))
    with Profils(ctx, f"{base}-reprise", {"worker": pile.worker}):
        r.update(await charge.interroger(ctx.client, echantillon, opts.concurrence, origine))
    r["cpu_restart"] = cpu.fin()
    r["restart_sample"] = len(echantillon)
    r["worker_rss_mb_after_restart"] = round(rss_mo(pile.worker.pid), 1)
    ctx.phases[f"{base}_redemarrage"] = round(time.monotonic() - debut, 1)
    journal.info(
        "[%s]   à l'écoute en %.2f s, 1re réponse à %.2f s, échantillon complet à %.2f s",
        base,
        r["restart_poller_s"],
        r["restart_first_query_s"],
        r["restart_sample_all_answered_s"],
    )


async def phase_nu(
    ctx: Contexte, page: dict[str, Any], chemins: list[str]
) -> tuple[dict[str, Any], list[float]]:
    """The bare FastAPI app, same load, serving the captured request page."""
    opts = ctx.opts
    journal.info(
        "[nue] FastAPI nue : lectures GET pendant %.0f s, %d clients", opts.duree_lecture, opts.concurrence
    )
    debut = time.monotonic()
    fichier = ctx.dossier / "page.json"
    fichier.write_text(json.dumps(page, ensure_ascii=False))
    port = port_libre()
    commande = [PYTHON, "-m", "bench.enfant", "nu", "--port", str(port), "--corps", str(fichier)]
    nu = ctx.enfants.lancer("fastapi-nue", commande, env_propre())
    try:
        base = f"http://127.0.0.1:{port}"
        await attendre_http(f"{base}/healthz", nu)
        cpu = CompteurCpu({"bench": os.getpid(), "api": nu.pid})
        lectures = await charge.lire_en_charge(base, chemins, {}, opts.concurrence, opts.duree_lecture)
        r: dict[str, Any] = {"cpu_reads": cpu.fin()}
    finally:
        ctx.enfants.arreter(nu)
    mesures = charge.centiles(lectures.latences_s, "baseline_api", "ms", 1000)
    r.update(mesures)
    r["baseline_api_rps"] = round(lectures.rps, 1)
    r["baseline_api_errors"] = lectures.erreurs
    ctx.phases["nue_lectures"] = round(time.monotonic() - debut, 1)
    journal.info("[nue]   %.0f req/s, p99 %.1f ms", lectures.rps, r.get("baseline_api_p99_ms", 0))
    return r, lectures.latences_s


# --- the run ----------------------------------------------------------------------------------------


def commit_court() -> tuple[str, bool]:
    try:
        court = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=DEPOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        sale = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=DEPOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return court, sale
    except (OSError, subprocess.CalledProcessError):
        return "sans-git", False


async def executer(opts: Options, enfants: Enfants, dossier: Path, nettoyage: Nettoyage) -> dict[str, Any]:
    debut_total = time.monotonic()
    puits = PuitsHorodate(port_libre()).demarrer()
    pg_cree = False
    try:
        if "postgresql" in opts.bases:
            await bases.verifier_pg(opts.pg_admin)
        journal.info("serveur Temporal de dev (ports libres), puits SMTP sur %s", puits.url)
        temporal, adresse = lancer_temporal(enfants)
        client = await connecter_temporal(adresse, temporal)
        await enregistrer_search_attributes(client)
        tq_noop = f"bench-noop-{uuid.uuid4().hex[:8]}"
        commande_noop = [PYTHON, "-m", "bench.enfant", "noop", "--adresse", adresse, "--file", tq_noop]
        noop = enfants.lancer("worker-noop", commande_noop, env_propre())
        await attendre_poller(client, tq_noop, noop)
        secret = secrets.token_urlsafe(48)
        profils = None
        if opts.profil:
            if profil.py_spy() is None:
                journal.warning("--profil : py-spy introuvable, pas de profil")
            else:
                profils = dossier / "profils"
                profils.mkdir()
        ctx = Contexte(
            opts=opts,
            enfants=enfants,
            dossier=dossier,
            puits=puits,
            client=client,
            adresse=adresse,
            secret=secret,
            secret_session=secrets.token_urlsafe(48),
            jeton=emettre_jeton(secret, "gestionnaire.bench", Role.GESTIONNAIRE, duree=timedelta(hours=6)),
            tq_noop=tq_noop,
            temporal=temporal,
            noop=noop,
            profils=profils,
        )
        ctx.phases["demarrage"] = round(time.monotonic() - debut_total, 1)

        par_base: dict[str, dict[str, Any]] = {}
        invitations: dict[str, list[float]] = {}
        lectures: dict[str, list[float]] = {}
        page: dict[str, Any] = {}
        for base in opts.bases:
            if base == "postgresql":
                pg_cree = True
                nettoyage.pg_admin = opts.pg_admin
            par_base[base], page_base, distributions = await phase_base(ctx, base)
            page = page or page_base
            invitations[base] = distributions.get("invitation", [])
            lectures[f"API {base}"] = distributions.get("lecture", [])
        if pg_cree:
            await bases.supprimer_pg(opts.pg_admin)
            pg_cree = False
            nettoyage.pg_admin = None

        resultats: dict[str, Any] = {}
        if page:
            chemins = [f"/api/v1/demandes/{n}" for n in bases.numeros(opts.bases[0], 1, opts.n)]
            nu, lectures["FastAPI nue"] = await phase_nu(ctx, page, chemins)
            resultats["baseline_api"] = nu
            for r in par_base.values():
                r["baseline_api_rps"] = nu["baseline_api_rps"]
                r["baseline_api_p99_ms"] = nu.get("baseline_api_p99_ms")
                r["ratio_api_vs_baseline"] = round(r["api_get_rps"] / nu["baseline_api_rps"], 3)

        # Nothing else runs now: stop the dev server and the no-op worker before the cycles.
        enfants.arreter(noop)
        enfants.arreter(temporal)
        if opts.cycles > 0:
            journal.info(
                "[sablier] %d cycles de 20 jours sur le serveur de test (time-skipping)", opts.cycles
            )
            debut = time.monotonic()
            resultats.update(await sablier.cycles(opts.cycles, dossier, puits))
            ctx.phases["sablier"] = round(time.monotonic() - debut, 1)

        if "postgresql" in opts.bases and opts.file_demandes > 0:
            debut = time.monotonic()
            nettoyage.pg_admin_file = opts.pg_admin
            resultats["file_de_travail"] = await file.mesurer(opts.pg_admin, opts.file_demandes)
            nettoyage.pg_admin_file = None
            ctx.phases["file_de_travail"] = round(time.monotonic() - debut, 1)

        for r in par_base.values():
            r["objectifs"] = rapport.evaluer(r)
        tete = "postgresql" if "postgresql" in par_base else opts.bases[0]
        commit, sale = commit_court()
        entete: dict[str, Any] = {
            "date": date.today().isoformat(),
            "commit": commit,
            "commit_dirty": sale,
            "headline_backend": tete,
        }
        cles_tete = {k: v for k, v in par_base[tete].items() if not isinstance(v, dict) or k == "objectifs"}
        resultats = {
            **entete,
            **cles_tete,
            **resultats,
            "par_base": par_base,
            "parametres": {
                "n": opts.n,
                "concurrence": opts.concurrence,
                "operateurs_portail": opts.operateurs,
                "duree_lecture_s": opts.duree_lecture,
                "attente": opts.attente,
                "base_attente": opts.base_attente,
                "echantillon_redemarrage": opts.echantillon,
                "cycles": opts.cycles,
                "source": str(opts.source) if opts.source else "dépôt (copie au lancement)",
            },
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "temporalio": temporalio.__version__,
                "plateforme": platform.platform(),
            },
            "methode": {
                "attente_10k": (
                    f"sur {opts.base_attente} seulement : {opts.n} ouvertes par l'API, le reste par "
                    "modif_solde.temporal.demarrer_modification depuis le banc (50 à la fois, sans HTTP)"
                ),
                "redemarrage": (
                    "SIGTERM au worker, nouveau processus `python -m modif_solde.cli worker` ; temps mesurés "
                    "depuis son lancement : worker à l'écoute (poller vu par DescribeTaskQueue), première "
                    "réponse et dernière réponse à la requête ModificationWorkflow.etat sur un échantillon "
                    "aléatoire des workflows en attente (50 à la fois)"
                ),
                "portail": (
                    f"{opts.operateurs} opérateurs simulés (une session chacun, cookie signé comme après la "
                    "connexion), chacun sur ses propres demandes ouvertes, en boucle pendant "
                    f"{opts.duree_lecture:.0f} s : Mes demandes, page de la demande, page de modification, "
                    "Enregistrer (POST du formulaire, 303 non suivie) ; puis les mêmes tours par l'API avec un "
                    "jeton opérateur (liste limite=500, GET demande, GET modification, PATCH brouillon avec "
                    "If-Match). Temps de réponse vus du banc sur la boucle locale, file d'attente comprise ; "
                    "toutes les demandes du banc ont le même SIRET : Mes demandes en liste 500 (sa limite)"
                ),
                "latence_invitation": (
                    "horloge monotone du banc : de l'envoi du POST à la réception du DATA par le puits SMTP "
                    "du banc (aiosmtpd, fil du processus du banc)"
                ),
            },
            "phases_s": ctx.phases,
            "puits": {"sans_cle": puits.sans_cle, "doublons": puits.doublons},
        }
        resultats["wall_time_s"] = round(time.monotonic() - debut_total, 1)

        sortie = opts.sortie
        sortie.mkdir(parents=True, exist_ok=True)
        nom = f"{date.today().isoformat()}-{commit}"
        rapport.ecrire_json(sortie / f"{nom}.json", resultats)
        rapport.dessiner(sortie / f"{nom}.png", invitations, lectures)
        if profils is not None:
            cible = sortie / f"{nom}-profils"
            shutil.rmtree(cible, ignore_errors=True)
            shutil.copytree(profils, cible)
            journal.info("profils py-spy : %s", cible)
        print()
        print(rapport.tableau(resultats))
        print()
        journal.info("résultats : %s (.json, .png)", sortie / nom)
        return resultats
    finally:
        puits.arreter()
        enfants.tout_arreter()
        if pg_cree:
            try:
                await bases.supprimer_pg(opts.pg_admin)
            except Exception as err:
                journal.error("suppression de %s : %s", bases.PG_BASE, err)


async def executer_file(opts: Options, nettoyage: Nettoyage) -> dict[str, Any]:
    """`--seulement file`: the work queue scenario alone, no Temporal, its own JSON file."""
    debut = time.monotonic()
    await bases.verifier_pg(opts.pg_admin)
    nettoyage.pg_admin_file = opts.pg_admin
    try:
        mesure = await file.mesurer(opts.pg_admin, opts.file_demandes)
    finally:
        nettoyage.pg_admin_file = None
    commit, sale = commit_court()
    resultats: dict[str, Any] = {
        "date": date.today().isoformat(),
        "commit": commit,
        "commit_dirty": sale,
        "file_de_travail": mesure,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "plateforme": platform.platform(),
        },
        "wall_time_s": round(time.monotonic() - debut, 1),
    }
    opts.sortie.mkdir(parents=True, exist_ok=True)
    chemin = opts.sortie / f"{date.today().isoformat()}-{commit}-file.json"
    rapport.ecrire_json(chemin, resultats)
    print()
    print("\n".join(file.tableau(mesure)))
    print()
    journal.info("résultats : %s", chemin)
    return resultats


def _arguments(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="ouvertures par base (défaut : 1000)")
    parser.add_argument("--concurrence", type=int, default=50, help="clients concurrents (défaut : 50)")
    parser.add_argument(
        "--operateurs",
        type=int,
        default=portail.OPERATEURS,
        help=f"opérateurs simulés du portail, 0 pour s'en passer (défaut : {portail.OPERATEURS})",
    )
    parser.add_argument(
        "--duree-lecture", type=float, default=15.0, help="secondes de GET mesurées (défaut : 15)"
    )
    parser.add_argument(
        "--attente",
        type=int,
        default=10_000,
        help="modifications en attente pour la mesure mémoire (défaut : 10000)",
    )
    parser.add_argument("--base-attente", default="postgresql", choices=["sqlite", "postgresql"])
    parser.add_argument("--echantillon", type=int, default=500, help="workflows interrogés après redémarrage")
    parser.add_argument("--cycles", type=int, default=5, help="cycles de 20 jours sur le serveur de test")
    parser.add_argument("--bases", default="sqlite,postgresql", help="bases mesurées, dans l'ordre")
    parser.add_argument("--pg-admin", default=bases.PG_ADMIN, help="connexion d'administration PostgreSQL")
    parser.add_argument("--garder", action="store_true", help="garder le dossier de travail (journaux)")
    parser.add_argument("--profil", action="store_true", help="échantillonner API et worker avec py-spy")
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="mesurer le modif_solde d'un autre dossier (une copie modifiée) au lieu de celui du dépôt",
    )
    parser.add_argument(
        "--sortie", type=Path, default=RESULTATS, help="dossier des résultats (défaut : bench/results)"
    )
    parser.add_argument(
        "--seulement",
        choices=["file"],
        default=None,
        help="un seul scénario : « file » (la file de travail des gestionnaires, PostgreSQL, sans Temporal)",
    )
    parser.add_argument(
        "--file-demandes",
        type=int,
        default=file.DEMANDES,
        help=f"demandes de la file de travail mesurée sur PostgreSQL, 0 pour s'en passer (défaut : {file.DEMANDES})",
    )
    args = parser.parse_args(argv)
    liste = [b.strip() for b in args.bases.split(",") if b.strip()]
    if not liste or any(b not in ("sqlite", "postgresql") for b in liste):
        parser.error("--bases : sqlite et/ou postgresql")
    if args.n < 1 or args.n + SONDE > 99_999 or args.attente > 99_999:
        parser.error("--n et --attente : 99 999 au plus (numéros FINMSS<base><5 chiffres>)")
    if not 0 <= args.file_demandes <= 999_999 or (args.seulement == "file" and args.file_demandes == 0):
        parser.error("--file-demandes : de 1 à 999 999 (numéros FINMSS<6 chiffres>)")
    return Options(
        n=args.n,
        concurrence=args.concurrence,
        operateurs=args.operateurs,
        duree_lecture=args.duree_lecture,
        attente=args.attente,
        base_attente=args.base_attente,
        echantillon=args.echantillon,
        cycles=args.cycles,
        bases=liste,
        pg_admin=args.pg_admin,
        garder=args.garder,
        profil=args.profil,
        source=args.source,
        sortie=args.sortie,
        seulement=args.seulement,
        file_demandes=args.file_demandes,
    )


@dataclass
class Nettoyage:
    """What an interruption must undo, kept up to date by the run."""

    enfants: Enfants
    dossier: Path
    pg_admin: str | None = None
    # The work queue scenario's own database, while it exists.
    pg_admin_file: str | None = None
    en_cours: bool = False

    def interrompre(self, signum: int, _frame: Any) -> None:
        # Ctrl-C or SIGTERM: stop everything here and now, then leave. Raising into the event
        # loop instead is not enough: asyncio.run then waits for every task to finish its
        # cancellation, and a Temporal call stuck in its retries never does.
        if self.en_cours:
            return
        self.en_cours = True
        journal.error("interrompu (%s) : arrêt de tous les processus du banc", signal.Signals(signum).name)
        self.enfants.tout_arreter(delai=10)
        arreter_descendants()
        if self.pg_admin is not None:
            admin = self.pg_admin
            fil = threading.Thread(target=lambda: asyncio.run(bases.supprimer_pg(admin)), daemon=True)
            fil.start()
            fil.join(15)
        if self.pg_admin_file is not None:
            admin_file = self.pg_admin_file
            fil = threading.Thread(target=lambda: asyncio.run(file.supprimer(admin_file)), daemon=True)
            fil.start()
            fil.join(15)
        journal.info("dossier de travail (journaux des processus) : %s", self.dossier)
        logging.shutdown()
        os._exit(130)


def boucle_bornee(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, except that leftover tasks get 10 s to end after a failure: asyncio.run
    waits for them without limit, and a Temporal call retrying through its cancellation
    would hold the exit forever."""
    boucle = asyncio.new_event_loop()
    asyncio.set_event_loop(boucle)
    try:
        return boucle.run_until_complete(coro)
    finally:
        restantes = [t for t in asyncio.all_tasks(boucle) if not t.done()]
        for tache in restantes:
            tache.cancel()
        if restantes:
            boucle.run_until_complete(asyncio.wait(restantes, timeout=10))
        boucle.run_until_complete(boucle.shutdown_asyncgens())
        asyncio.set_event_loop(None)
        boucle.close()


def arreter_descendants() -> None:
    """Processes started for the bench outside `Enfants` (the time-skipping test server that
    the SDK spawns): by their pid, children of this process only."""
    restants = psutil.Process().children(recursive=True)
    for proc in restants:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, vivants = psutil.wait_procs(restants, timeout=5)
    for proc in vivants:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def main(argv: list[str] | None = None, dossier: Path | None = None, code: Path | None = None) -> int:
    opts = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for nom in ("httpx", "temporalio", "mail.log", "aiosmtpd", "alembic"):
        logging.getLogger(nom).setLevel(logging.WARNING)
    ignorees = sorted(k for k in os.environ if k.startswith("MODIF_SOLDE_"))
    if ignorees:
        journal.warning("variables ignorées par le banc : %s", ", ".join(ignorees))
        for k in ignorees:
            del os.environ[k]
    # This process reads settings only for durations and the import's size limit: development,
    # said explicitly. The children get none of it (env_propre) and run in production with
    # their own secret.
    os.environ["MODIF_SOLDE_ENVIRONNEMENT"] = "developpement"
    if dossier is None or code is None:
        dossier, code = dossier or Path(tempfile.mkdtemp(prefix="modif-solde-bench-")), DEPOT
    enfants = Enfants(dossier, code)
    nettoyage = Nettoyage(enfants, dossier)
    atexit.register(enfants.tout_arreter)
    # Installed before asyncio.run, which then leaves SIGINT to this handler.
    signal.signal(signal.SIGINT, nettoyage.interrompre)
    signal.signal(signal.SIGTERM, nettoyage.interrompre)
    reussi = False
    try:
        if opts.seulement == "file":
            boucle_bornee(executer_file(opts, nettoyage))
        else:
            boucle_bornee(executer(opts, enfants, dossier, nettoyage))
        reussi = True
        return 0
    except RuntimeError as err:
        # The bench's own diagnostics (a process that stopped, a server that does not answer).
        journal.error("échec : %s", err)
        return 1
    finally:
        enfants.tout_arreter()
        arreter_descendants()
        if reussi and not opts.garder:
            shutil.rmtree(dossier, ignore_errors=True)
        else:
            journal.info("dossier de travail (journaux des processus) : %s", dossier)
        sys.stdout.flush()
