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
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench import (
    bases,
    charge,
    file,
    lighthouse,
    ouvert,
    pilotage,
    portail,
    profil,
    rapport,
    requetes,
    sablier,
    wrk,
)
from bench.instantane import DEPOT
from bench.jetons import ecrire_jwks, emettre_jeton
from bench.processus import BIN, PYTHON, CompteurCpu, Enfant, Enfants, port_libre, rss_mo
from bench.puits import PuitsHorodate
from modif_solde.api.auth import Role
from modif_solde.config import Settings
from modif_solde.pages.session import COOKIE
from modif_solde.temporal import connecter, enregistrer_search_attributes, options_dev_server
from modif_solde.workflows.contrat import ModificationEntree

journal = logging.getLogger("bench")

RESULTATS = Path(__file__).resolve().parent / "results"
T = TypeVar("T")
# Openings one at a time after the loaded ones: the unloaded latency.
SONDE = 20


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
    lighthouse: bool = True
    file_demandes: int = file.DEMANDES
    pilotage_demandes: int = pilotage.DEMANDES
    duree_ouverte: float = 15.0
    recherche: int = len(ouvert.RECHERCHE)
    deux_workers: bool = True
    confirmations: bool = True
    wrk_connexions: int = wrk.CONNEXIONS
    rapide: bool = False


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
    # Per backend, the next request number never used.
    prochain: dict[str, int] = field(default_factory=dict)


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
    # The modifications opened and still waiting (workflows asleep until their deadline).
    en_attente: list[str] = field(default_factory=list)


# --- the stack ---------------------------------------------------------------------------------


def env_propre() -> dict[str, str]:
    """The children's environment without any MODIF_SOLDE_* of the caller's shell (a short
    EXPIRATION_APRES there would expire the waiting modifications mid-run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODIF_SOLDE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def lancer_temporal(enfants: Enfants) -> tuple[Enfant, str]:
    port = port_libre()
    attributs = options_dev_server()
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


async def phase_base(ctx: Contexte, base: str) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """One backend: import, its own worker and API, raw baseline, openings, reads, waiting."""
    opts = ctx.opts
    r: dict[str, Any] = {"n": opts.n}
    debut = time.monotonic()
    journal.info("[%s] base de données et import de %d demandes", base, opts.n)
    url = await bases.preparer(base, ctx.dossier, opts.pg_admin)
    liste = bases.numeros(base, 1, opts.n)
    sonde = bases.numeros(base, opts.n + 1, opts.n + SONDE)
    stockage = ctx.dossier / f"pieces-{base}"
    ctx.prochain[base] = opts.n + SONDE + 1
    r["import_per_s"] = round(await bases.importer(url, stockage, [*liste, *sonde], pieces=1), 1)

    api_port = port_libre()
    api_url = f"http://127.0.0.1:{api_port}"
    task_queue = f"bench-{base}-{uuid.uuid4().hex[:8]}"
    env = env_propre() | {
        "MODIF_SOLDE_DATABASE_URL": url,
        "MODIF_SOLDE_TEMPORAL_ADDRESS": ctx.adresse,
        "MODIF_SOLDE_TASK_QUEUE": task_queue,
        "MODIF_SOLDE_SMTP_URL": ctx.puits.url,
        # Production's tokens: ES256, the public key in a JWKS file (bench/jetons.py).
        "MODIF_SOLDE_JWT_JWKS_FICHIER": str(ecrire_jwks(ctx.dossier / f"jwks-{base}.json")),
        # The portal's settings, as production requires them; the provider is never reached
        # (the portal scenario's operators come with their session).
        "MODIF_SOLDE_SESSION_SECRET": ctx.secret_session,
        "MODIF_SOLDE_OIDC_CLIENT_SECRET": secrets.token_urlsafe(32),
        "MODIF_SOLDE_OIDC_DISCOVERY_URL": "https://fournisseur.bench.invalid/.well-known/openid-configuration",
        "MODIF_SOLDE_STORAGE_DIR": str(stockage),
        # Production refuses a loopback or http:// portal address and placeholder mailboxes: the
        # e-mails' links and addresses name a site and mailboxes of the bench's own (the e-mails
        # go to the bench's sink; the API is reached at api_url).
        "MODIF_SOLDE_PORTAIL_URL": "https://portail.banc.modif-solde.fr",
        "MODIF_SOLDE_MAIL_FROM": "Portail Ségur Numérique <ne-pas-repondre@banc.modif-solde.fr>",
        "MODIF_SOLDE_GESTIONNAIRES_COURRIEL": "gestionnaires@banc.modif-solde.fr",
        # The legal pages' settings production requires (docs/reglages.md, « Pages légales »).
        "MODIF_SOLDE_EDITEUR": "Éditeur du banc, 1 rue du Banc, 75000 Paris",
        "MODIF_SOLDE_DIRECTEUR_PUBLICATION": "Directeur de la publication du banc",
        "MODIF_SOLDE_HEBERGEUR": "Hébergeur du banc, 1 rue du Banc, 75000 Paris",
        "MODIF_SOLDE_CONTACT_COURRIEL": "contact@banc.modif-solde.fr",
        "MODIF_SOLDE_DPO_CONTACT": "dpo@banc.modif-solde.fr",
        "MODIF_SOLDE_ACCESSIBILITE_STATUT": "non conforme",
        "MODIF_SOLDE_DUREE_CONSERVATION": "P5Y",
    }
    pile = Pile(base, url, task_queue, env, api_url)
    distributions: dict[str, list[float]] = {}
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
        cpu = compteur(ctx, pile)
        ids = [f"noop-{base}-{i}-{uuid.uuid4().hex[:6]}" for i in range(opts.n)]
        r.update(await charge.demarrer_noop(ctx.client, ctx.tq_noop, ids, opts.concurrence))
        r["cpu_baseline"] = cpu.fin()
        ctx.phases[f"{base}_baseline"] = round(time.monotonic() - debut, 1)
        journal.info("[%s]   %.1f démarrages/s", base, r["baseline_starts_per_s"])

        # 1. Openings through the API, and their invitations at the sink.
        journal.info("[%s] ouvertures par l'API : %d, %d clients", base, opts.n, opts.concurrence)
        debut = time.monotonic()
        cpu = compteur(ctx, pile)
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
        # Waiting: every modification whose invitation went out (a 503 after the bounded wait
        # may still have opened it).
        pile.en_attente.extend(
            o.modification for o in ouvertures.appels if f"{o.modification}:invitation" in ctx.puits.arrivees
        )

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

        pile.en_attente.extend(
            o.modification for o in a_vide.appels if f"{o.modification}:invitation" in ctx.puits.arrivees
        )

        # Open loop: openings and confirmations at fixed rates.
        distributions.update(
            {f"ouvert {k}": v for k, v in (await phase_boucle_ouverte(ctx, pile, r)).items()}
        )

        # 3. Reads by wrk, the baselines, SQL statements per page.
        await phase_lectures(ctx, pile, liste, r)

        # 3b. The portal: operators browsing and editing through the pages, then the same
        # rounds through the API (one after the other, the same duration each).
        if opts.operateurs > 0:
            await phase_portail(ctx, pile, liste, r)

        # 4. Waiting cost, on one backend.
        if base == opts.base_attente and opts.attente > len(pile.en_attente):
            await phase_attente(ctx, pile, r)
    finally:
        for enfant in (pile.api, pile.worker):
            if enfant is not None:
                ctx.enfants.arreter(enfant)
    return r, distributions


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
    cpu = compteur(ctx, pile)
    with Profils(ctx, f"{pile.base}-portail", {"api": pile.api}):
        pages = await portail.parcourir_pages(
            pile.api_url, pile.url, bases.SIRET, liste, opts.operateurs, opts.duree_lecture
        )
    r["cpu_portal"] = cpu.fin()
    cpu = compteur(ctx, pile)
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
    # Everything opened so far waits too: en_attente + extra = attente.
    debut_extra = ctx.prochain[base]
    extra = bases.numeros(base, debut_extra, debut_extra + max(opts.attente - len(pile.en_attente), 0) - 1)
    ctx.prochain[base] = debut_extra + len(extra)
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
    cpu = compteur(ctx, pile)
    r.update(
        await charge.ouvrir_directement(ctx.client, pile.task_queue, entrees, opts.concurrence, bases.SIRET)
    )
    manquantes = await ctx.puits.attendre([f"{e.modification_numero}:invitation" for e in entrees], delai=300)
    r["cpu_direct_opens"] = cpu.fin()
    r["direct_invitations_missing"] = len(manquantes)
    ctx.phases[f"{base}_ouvertures_directes"] = round(time.monotonic() - debut, 1)
    journal.info("[%s]   %.1f ouvertures directes/s", base, r["direct_opens_per_s"])
    r["worker_rss_mb_10k"] = await rss_stable(pile.worker.pid)
    r["waiting_10k"] = len(pile.en_attente) + len(extra) - sum(r["direct_opens_errors"].values())
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
    tous = [*pile.en_attente, *(f"{n}M1" for n in extra)]
    echantillon = random.sample(tous, min(opts.echantillon, len(tous)))
    cpu = compteur(ctx, pile)
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


# --- open loop, reads by wrk, baselines, SQL statements -----------------------------------------


def compteur(ctx: Contexte, pile: Pile | None = None, autres: dict[str, int] | None = None) -> CompteurCpu:
    """CPU per process; PostgreSQL's server counted whole except other databases' backends."""
    base_pg = bases.PG_BASE if pile is not None and pile.base == "postgresql" else None
    return CompteurCpu(pids(ctx, pile) | (autres or {}), base_pg=base_pg)


async def calme(ctx: Contexte, pile: Pile, seuil: float = 0.15, delai: float = 60.0) -> None:
    """Until the worker and the Temporal server together use less than `seuil` of a core over a
    second (what an earlier phase left behind is done), at most `delai` s: a phase's CPU is then
    its own."""
    limite = time.monotonic() + delai
    while time.monotonic() < limite:
        cpu = CompteurCpu(
            {"worker": pile.worker.pid if pile.worker else ctx.temporal.pid, "temporal": ctx.temporal.pid}
        )
        await asyncio.sleep(1.0)
        mesure = cpu.fin()
        if mesure.get("worker_cpu_s", 0) + mesure.get("temporal_cpu_s", 0) < seuil * mesure["duree_s"]:
            return
    journal.warning(
        "[%s] le worker et Temporal travaillent encore après %.0f s : la phase suivante commence quand même",
        pile.base,
        delai,
    )


async def demandes_neuves(ctx: Contexte, pile: Pile, nombre: int) -> list[str]:
    """`nombre` requests never opened, imported now (no piece), outside any measure."""
    debut = ctx.prochain[pile.base]
    liste = bases.numeros(pile.base, debut, debut + nombre - 1)
    ctx.prochain[pile.base] = debut + nombre
    await bases.importer(pile.url, ctx.dossier / f"pieces-{pile.base}", liste, pieces=0, lot=250)
    return liste


async def salve_ouvertures(
    ctx: Contexte, pile: Pile, http: httpx.AsyncClient, rythme: float, autres: dict[str, int] | None = None
) -> tuple[dict[str, Any], list[float]]:
    """Openings at `rythme`/s for --duree-ouverte s; CPU per process from the first send until the
    last invitation arrived (the whole delta attributed to the openings)."""
    liste = await demandes_neuves(ctx, pile, max(1, round(rythme * ctx.opts.duree_ouverte)))
    await calme(ctx, pile)

    async def ouvrir(numero: str) -> tuple[int, str]:
        reponse = await http.post(f"/api/v1/demandes/{numero}/modifications", json=charge.OUVERTURE)
        return reponse.status_code, reponse.text

    cpu = compteur(ctx, pile, autres)
    s = await ouvert.salve(rythme, liste, ouvrir, lambda n: f"{n}M1:invitation")
    m, latences = await ouvert.mesurer(s, ctx.puits, 120, "invitation")
    m["cpu"] = cpu.fin()
    m["cpu_ms_par_ouverture"] = cpu.par_operation(len(s.reussis))
    pile.en_attente.extend(e.cle.split(":")[0] for e in s.envois if e.cle in ctx.puits.arrivees)
    journal.info("%s", ouvert.ligne(f"[{pile.base}] ouvertures", m, "invitation"))
    return m, latences


async def phase_boucle_ouverte(ctx: Contexte, pile: Pile, r: dict[str, Any]) -> dict[str, list[float]]:
    """Openings at 5, 10, 20/s, then the search for the highest rate held; one worker against two
    at 20/s; confirmations at 5, 10, 20/s."""
    opts = ctx.opts
    debut = time.monotonic()
    journal.info(
        "[%s] boucle ouverte : ouvertures à %s/s, %.0f s chacune",
        pile.base,
        ", ".join(f"{x:.0f}" for x in ouvert.RYTHMES),
        opts.duree_ouverte,
    )
    distributions: dict[str, list[float]] = {}
    ouvertures: dict[str, Any] = {}
    async with ouvert.client(pile.api_url, {"Authorization": f"Bearer {ctx.jeton}"}) as http:
        for rythme in ouvert.RYTHMES:
            ouvertures[f"{rythme:.0f}"], distributions[f"{rythme:.0f}/s"] = await salve_ouvertures(
                ctx, pile, http, rythme
            )
        # The search: upwards while the rates hold, else between the last held and the first not.
        tenus = [x for x in ouvert.RYTHMES if ouvertures[f"{x:.0f}"]["tenu"]]
        essais = [x for x in ouvert.RECHERCHE][: opts.recherche] if ouvert.RYTHMES[-1] in tenus else []
        if not essais and tenus and opts.recherche > 0:
            suivant = (
                min(x for x in ouvert.RYTHMES if x > max(tenus)) if max(tenus) < ouvert.RYTHMES[-1] else None
            )
            if suivant is not None:
                essais = [round((max(tenus) + suivant) / 2)]
        for rythme in essais:
            journal.info("[%s] recherche du rythme tenu : %.0f/s", pile.base, rythme)
            m, _ = await salve_ouvertures(ctx, pile, http, rythme)
            ouvertures[f"{rythme:.0f}"] = m
            if not m["tenu"]:
                break
        tenus = [float(k) for k, m in ouvertures.items() if m["tenu"]]
        r["rythme_max_tenu_par_s"] = max(tenus) if tenus else None
        r["boucle_ouverte_ouvertures"] = ouvertures
        a20 = ouvertures.get("20", {})
        r["invitation_p99_s_a_20"] = a20.get("invitation_p99_s")
        r["api_ouverture_p99_s_a_20"] = a20.get("api_p99_s")
        if "10" in ouvertures:
            r["cpu_ms_par_ouverture"] = ouvertures["10"]["cpu_ms_par_ouverture"]
            r["cpu_ouverture_total_ms"] = r["cpu_ms_par_ouverture"].get("total_ms")

        # Two worker processes on the same task queue, against one, at 20/s, back to back.
        if opts.deux_workers:
            rythme = ouvert.RYTHMES[-1]
            journal.info("[%s] un worker puis deux, ouvertures à %.0f/s", pile.base, rythme)
            un, _ = await salve_ouvertures(ctx, pile, http, rythme)
            second = ctx.enfants.lancer(
                f"worker2-{pile.base}", [PYTHON, "-m", "modif_solde.cli", "worker"], pile.env
            )
            try:
                await attendre_poller(ctx.client, pile.task_queue, second)
                deux, _ = await salve_ouvertures(ctx, pile, http, rythme, {"worker2": second.pid})
            finally:
                ctx.enfants.arreter(second)
            r["deux_workers"] = {"rythme_par_s": rythme, "un": un, "deux": deux}

    # Confirmations: operators confirm drafts of the modifications opened above.
    if opts.confirmations:
        await phase_confirmations(ctx, pile, r, distributions)
    ctx.phases[f"{pile.base}_boucle_ouverte"] = round(time.monotonic() - debut, 1)
    return distributions


async def phase_confirmations(
    ctx: Contexte, pile: Pile, r: dict[str, Any], distributions: dict[str, list[float]]
) -> None:
    opts = ctx.opts
    besoin = [max(1, round(x * opts.duree_ouverte)) for x in ouvert.RYTHMES]
    if len(pile.en_attente) < sum(besoin):
        journal.warning("[%s] pas assez de modifications ouvertes pour les confirmations", pile.base)
        return
    choisies = pile.en_attente[-sum(besoin) :]
    del pile.en_attente[-sum(besoin) :]
    jeton = emettre_jeton(
        ctx.secret, "operateur.bench", Role.OPERATEUR, siret=bases.SIRET, duree=timedelta(hours=6)
    )
    journal.info("[%s] confirmations : %d brouillons remplis (hors mesure)", pile.base, len(choisies))
    async with ouvert.client(pile.api_url, {"Authorization": f"Bearer {jeton}"}) as http:
        refusees: list[str] = []

        async def remplir(numero: str) -> None:
            vue = await http.get(f"/api/v1/modifications/{numero}")
            reponse = None
            if vue.status_code == 200:
                reponse = await http.patch(
                    f"/api/v1/modifications/{numero}/brouillon",
                    json={**portail.SAISIE, "contact_support_telephone": portail.TELEPHONES[0]},
                    headers={"If-Match": vue.headers["ETag"]},
                )
            if reponse is None or reponse.status_code != 200:
                refusees.append(numero)
                if len(refusees) <= 3:
                    corps = (reponse or vue).text[:300]
                    journal.warning("  brouillon de %s : %s", numero, corps)

        await charge.en_parallele("brouillons", choisies, 10, remplir)
        if refusees:
            # Not confirmable: left out, and counted in the results.
            r["confirmations_brouillons_refuses"] = len(refusees)
            choisies = [m for m in choisies if m not in set(refusees)]

        async def confirmer(numero: str) -> tuple[int, str]:
            reponse = await http.post(f"/api/v1/modifications/{numero}/confirmer")
            return reponse.status_code, reponse.text

        confirmations: dict[str, Any] = {}
        reste = list(choisies)
        for rythme, nombre in zip(ouvert.RYTHMES, besoin, strict=True):
            lot, reste = reste[:nombre], reste[nombre:]
            if not lot:
                break
            await calme(ctx, pile)
            cpu = compteur(ctx, pile)
            s = await ouvert.salve(rythme, lot, confirmer, lambda m: f"{m}:confirmation")
            m, latences = await ouvert.mesurer(s, ctx.puits, 120, "confirmation")
            m["cpu"] = cpu.fin()
            m["cpu_ms_par_confirmation"] = cpu.par_operation(len(s.reussis))
            confirmations[f"{rythme:.0f}"] = m
            distributions[f"confirmation {rythme:.0f}/s"] = latences
            journal.info("%s", ouvert.ligne(f"[{pile.base}] confirmations", m, "confirmation"))
    r["boucle_ouverte_confirmations"] = confirmations
    if "10" in confirmations:
        r["cpu_ms_par_confirmation"] = confirmations["10"]["cpu_ms_par_confirmation"]
        r["cpu_confirmation_total_ms"] = r["cpu_ms_par_confirmation"].get("total_ms")


async def phase_lectures(ctx: Contexte, pile: Pile, liste: list[str], r: dict[str, Any]) -> None:
    """wrk on the request page, the list and the portal's request page; then the baselines on
    the same paths; then the SQL statements of each page."""
    opts = ctx.opts
    base = pile.base
    debut = time.monotonic()
    gestionnaire = f"Authorization: Bearer {ctx.jeton}"
    session = await portail.ouvrir_session(pile.url, "operateur-bench-lecture", bases.SIRET)
    pages = [f"/api/v1/demandes/{n}" for n in liste]
    cibles = {
        "page_demande": (pages, gestionnaire),
        "liste": (
            [f"/api/v1/demandes?limite=100&decalage={d}" for d in range(0, max(len(liste) - 100, 1), 100)],
            gestionnaire,
        ),
        "page_portail": ([f"/demandes/{n}" for n in liste], f"Cookie: {COOKIE}={session}"),
    }
    lectures: dict[str, Any] = {}
    await calme(ctx, pile)
    for nom, (chemins, entete) in cibles.items():
        journal.info(
            "[%s] wrk %s : %.0f s, %d connexions", base, nom, opts.duree_lecture, opts.wrk_connexions
        )
        m, cpu = await wrk.lire(
            pile.api_url,
            chemins,
            entete,
            opts.duree_lecture,
            ctx.dossier,
            f"{base}-{nom}",
            connexions=opts.wrk_connexions,
            apres_chauffe=lambda: compteur(ctx, pile),
        )
        m["cpu"] = cpu.fin()
        m["cpu_ms_par_requete"] = cpu.par_operation(m["requetes"])
        lectures[nom] = m
        journal.info(
            "[%s]   %.0f req/s, p50 %.1f ms, p99 %.1f ms, %d erreurs ; API %.2f ms CPU/req ; wrk %.0f %% d'un cœur",
            base,
            m["rps"],
            m["p50_ms"],
            m["p99_ms"],
            m["erreurs"],
            m["cpu_ms_par_requete"].get("api_ms", 0),
            m["wrk_cpu_pct"],
        )
    r["lectures_wrk"] = lectures
    r["api_get_rps"] = lectures["page_demande"]["rps"]
    r["cpu_page_api_ms"] = lectures["page_demande"]["cpu_ms_par_requete"].get("api_ms")

    # The baselines, same paths, same wrk, same uvicorn settings.
    r["references"] = await phase_references(ctx, pile, pages)
    une = r["references"].get("une_requete")
    if une and une.get("rps") and r["api_get_rps"]:
        r["ratio_page_vs_une_requete"] = round(r["api_get_rps"] / une["rps"], 3)
    nue = r["references"].get("nue")
    if nue and nue.get("rps") and r["api_get_rps"]:
        r["ratio_page_vs_nue"] = round(r["api_get_rps"] / nue["rps"], 3)

    # SQL statements per page, in this process.
    jeton_op = emettre_jeton(ctx.secret, "operateur-bench-lecture", Role.OPERATEUR, siret=bases.SIRET)
    sql = await requetes.compter(
        pile.env,
        {
            "page_demande": (pages[0], {"Authorization": f"Bearer {ctx.jeton}"}),
            "liste": ("/api/v1/demandes?limite=100", {"Authorization": f"Bearer {ctx.jeton}"}),
            "page_demande_operateur": (pages[0], {"Authorization": f"Bearer {jeton_op}"}),
            "page_portail": (f"/demandes/{liste[0]}", {"Cookie": f"{COOKIE}={session}"}),
        },
    )
    r["requetes_sql"] = sql
    r["sql_page_demande"] = sql["page_demande"]["requetes_sql"]
    journal.info(
        "[%s] requêtes SQL par page : %s",
        base,
        ", ".join(f"{k} {v['requetes_sql']} (HTTP {v['statut']})" for k, v in sql.items()),
    )
    ctx.phases[f"{base}_lectures"] = round(time.monotonic() - debut, 1)


async def phase_references(ctx: Contexte, pile: Pile, chemins: list[str]) -> dict[str, Any]:
    """The bare FastAPI app (the captured page as a constant) and, on PostgreSQL, the app that
    builds the same JSON with one hand-written query; each under wrk like the API."""
    opts = ctx.opts
    resultat: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=pile.api_url, timeout=30) as http:
        reponse = await http.get(chemins[0], headers={"Authorization": f"Bearer {ctx.jeton}"})
        reponse.raise_for_status()
        page = reponse.json()
    fichier = ctx.dossier / "page.json"
    fichier.write_text(json.dumps(page, ensure_ascii=False))
    apps: dict[str, list[str]] = {"nue": ["nu", "--corps", str(fichier)]}
    if pile.base == "postgresql":
        apps["une_requete"] = ["une-requete", "--base", pile.url, "--portail-url", pile.api_url]
    for nom, arguments in apps.items():
        port = port_libre()
        commande = [PYTHON, "-m", "bench.enfant", *arguments[:1], "--port", str(port), *arguments[1:]]
        enfant = ctx.enfants.lancer(f"reference-{nom}", commande, env_propre())
        try:
            url = f"http://127.0.0.1:{port}"
            await attendre_http(f"{url}/healthz", enfant)
            if nom == "une_requete":
                async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                    autre = (await http.get(chemins[0])).json()
                resultat["une_requete_json_identique"] = autre == page
                if autre != page:
                    resultat["une_requete_json_differences"] = differences(page, autre)
            m, cpu = await wrk.lire(
                url,
                chemins,
                "X-Banc: 1",
                opts.duree_lecture,
                ctx.dossier,
                f"reference-{nom}",
                connexions=opts.wrk_connexions,
                apres_chauffe=lambda pid=enfant.pid: CompteurCpu(  # type: ignore[misc]
                    {"api": pid}, base_pg=bases.PG_BASE if pile.base == "postgresql" else None
                ),
            )
            m["cpu"] = cpu.fin()
            m["cpu_ms_par_requete"] = cpu.par_operation(m["requetes"])
        finally:
            ctx.enfants.arreter(enfant)
        resultat[nom] = m
        journal.info("[%s] référence %s : %.0f req/s, p99 %.1f ms", pile.base, nom, m["rps"], m["p99_ms"])
    return resultat


def differences(a: Any, b: Any, chemin: str = "") -> list[str]:
    """Where two JSON documents differ (the first 20 places)."""
    if isinstance(a, dict) and isinstance(b, dict):
        sortie = []
        for cle in sorted(set(a) | set(b)):
            sortie += differences(a.get(cle, "<absent>"), b.get(cle, "<absent>"), f"{chemin}.{cle}")
        return sortie[:20]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{chemin}[{i}]")
        ][:20]
    return [] if a == b else [f"{chemin or '.'} : {str(a)[:60]!r} ≠ {str(b)[:60]!r}"]


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
        # The 20-day cycles first, on a machine where nothing else runs yet: measured after the
        # other phases, they took 0.31 to 0.42 s against 0.18 to 0.25 s alone (what the earlier
        # phases leave behind, in this process and on the machine, weighs on a 0.2 s measure).
        cycles: dict[str, Any] = {}
        phase_sablier = 0.0
        if opts.cycles > 0:
            journal.info(
                "[sablier] %d cycles de 20 jours sur le serveur de test (time-skipping)", opts.cycles
            )
            debut = time.monotonic()
            cycles = await sablier.cycles(opts.cycles, dossier, puits)
            phase_sablier = round(time.monotonic() - debut, 1)
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
        if opts.cycles > 0:
            ctx.phases["sablier"] = phase_sablier
            ctx.phases["demarrage"] = round(ctx.phases["demarrage"] - phase_sablier, 1)

        par_base: dict[str, dict[str, Any]] = {}
        invitations: dict[str, list[float]] = {}
        ouvertes: dict[str, list[float]] = {}
        for base in opts.bases:
            if base == "postgresql":
                pg_cree = True
                nettoyage.pg_admin = opts.pg_admin
            par_base[base], distributions = await phase_base(ctx, base)
            invitations[f"{base} (boucle fermée)"] = distributions.get("invitation", [])
            ouvertes.update(
                {
                    f"{base} {k.removeprefix('ouvert ')}": v
                    for k, v in distributions.items()
                    if k.startswith("ouvert ")
                }
            )
        if pg_cree:
            await bases.supprimer_pg(opts.pg_admin)
            pg_cree = False
            nettoyage.pg_admin = None

        resultats: dict[str, Any] = {}

        enfants.arreter(noop)
        enfants.arreter(temporal)
        resultats.update(cycles)

        if "postgresql" in opts.bases and opts.file_demandes > 0:
            debut = time.monotonic()
            nettoyage.pg_admin_file = opts.pg_admin
            resultats["file_de_travail"] = await file.mesurer(opts.pg_admin, opts.file_demandes)
            nettoyage.pg_admin_file = None
            ctx.phases["file_de_travail"] = round(time.monotonic() - debut, 1)
        if "postgresql" in opts.bases and opts.pilotage_demandes > 0:
            debut = time.monotonic()
            resultats["pilotage"] = await pilotage.mesurer(opts.pg_admin, opts.pilotage_demandes)
            ctx.phases["pilotage"] = round(time.monotonic() - debut, 1)

        if opts.lighthouse:
            debut = time.monotonic()
            resultats["lighthouse"] = await lighthouse.mesurer()
            ctx.phases["lighthouse"] = round(time.monotonic() - debut, 1)

        for r in par_base.values():
            r["objectifs"] = rapport.evaluer(r, resultats)
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
                "duree_ouverte_s": opts.duree_ouverte,
                "recherche": opts.recherche,
                "wrk_connexions": opts.wrk_connexions,
                "wrk_fils": wrk.FILS,
                "rapide": opts.rapide,
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
                "boucle_ouverte": (
                    "chaque requête a son instant prévu (début + i / rythme) et part à cet instant, "
                    "concurremment aux autres quoi qu'il arrive aux précédentes ; ses latences (appel API, "
                    "courriel reçu au puits) comptent depuis cet instant prévu : un arrêt du service est dans "
                    "la latence de chaque requête qu'il a retardée (pas d'omission coordonnée). Tenu : p99 du "
                    "courriel < 1 s, aucune erreur, tous les courriels reçus"
                ),
                "cpu_par_operation": (
                    "psutil, cpu_times (user + system) de chaque processus avant / après la salve à 10/s, "
                    "jusqu'au dernier courriel reçu ; le delta entier attribué à l'opération (ce qui tourne "
                    "à vide compris). PostgreSQL : le postmaster et ses enfants (processus de fond et "
                    "connexions de la base du banc ; les connexions aux autres bases exclues)"
                ),
                "lectures_wrk": (
                    f"wrk (boucle fermée), {wrk.FILS} fil, {opts.wrk_connexions} connexions, "
                    f"{opts.duree_lecture:.0f} s après 1 s de chauffe, script bench/lectures.lua (en-tête "
                    "Authorization ou cookie de session, chemins en rotation) ; CPU de wrk par son rusage"
                ),
                "requetes_sql": (
                    "l'application (create_app, réglages de l'API) dans le processus du banc par le transport "
                    "ASGI de httpx, sur la base du banc ; écouteur SQLAlchemy before_cursor_execute ; "
                    "le deuxième appel de chaque chemin compté"
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
        rapport.dessiner(sortie / f"{nom}.png", invitations, ouvertes)
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


def ecrire_seul(
    opts: Options, scenario: str, mesure: dict[str, Any], debut: float
) -> tuple[dict[str, Any], Path]:
    """A scenario run alone (`--seulement`): its figures, the commit and the machine, in
    `<date>-<commit>-<scenario>.json`."""
    commit, sale = commit_court()
    resultats: dict[str, Any] = {
        "date": date.today().isoformat(),
        "commit": commit,
        "commit_dirty": sale,
        **mesure,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "plateforme": platform.platform(),
        },
        "wall_time_s": round(time.monotonic() - debut, 1),
    }
    opts.sortie.mkdir(parents=True, exist_ok=True)
    chemin = opts.sortie / f"{date.today().isoformat()}-{commit}-{scenario}.json"
    rapport.ecrire_json(chemin, resultats)
    return resultats, chemin


async def executer_sablier(opts: Options, dossier: Path) -> dict[str, Any]:
    """`--seulement sablier`: the 20-day cycles alone (no dev server, no other phase), its own
    JSON file: the figure without what a whole bench run leaves on the machine."""
    if opts.cycles < 1:
        raise RuntimeError("--seulement sablier demande --cycles 1 au moins")
    debut = time.monotonic()
    puits = PuitsHorodate(port_libre()).demarrer()
    try:
        journal.info("[sablier] %d cycles de 20 jours sur le serveur de test (time-skipping)", opts.cycles)
        mesure = await sablier.cycles(opts.cycles, dossier, puits)
    finally:
        puits.arreter()
    if not mesure:
        raise RuntimeError("cycles non mesurés (pas de serveur de test)")
    resultats, chemin = ecrire_seul(opts, "sablier", mesure, debut)
    journal.info(
        "cycle de 20 jours : %.3f s en moyenne (min %.3f, max %.3f) sur %d cycles ; résultats : %s",
        mesure["cycle_20j_s"],
        mesure["cycle_20j_min_s"],
        mesure["cycle_20j_max_s"],
        mesure["cycles"],
        chemin,
    )
    return resultats


async def executer_pilotage(opts: Options) -> dict[str, Any]:
    """`--seulement pilotage`: the dashboard and the export alone, no Temporal, its own JSON file."""
    debut = time.monotonic()
    await bases.verifier_pg(opts.pg_admin)
    mesure = await pilotage.mesurer(opts.pg_admin, opts.pilotage_demandes)
    resultats, chemin = ecrire_seul(opts, "pilotage", {"pilotage": mesure}, debut)
    print()
    print("\n".join(pilotage.tableau(mesure)))
    print()
    journal.info("résultats : %s", chemin)
    return resultats


async def executer_file(opts: Options, nettoyage: Nettoyage) -> dict[str, Any]:
    """`--seulement file`: the work queue scenario alone, no Temporal, its own JSON file."""
    debut = time.monotonic()
    await bases.verifier_pg(opts.pg_admin)
    nettoyage.pg_admin_file = opts.pg_admin
    try:
        mesure = await file.mesurer(opts.pg_admin, opts.file_demandes)
    finally:
        nettoyage.pg_admin_file = None
    resultats, chemin = ecrire_seul(opts, "file", {"file_de_travail": mesure}, debut)
    print()
    print("\n".join(file.tableau(mesure)))
    print()
    journal.info("résultats : %s", chemin)
    return resultats


async def executer_lighthouse(opts: Options) -> dict[str, Any]:
    """`--seulement lighthouse`: the two pages on a phone, alone, their own JSON file."""
    debut = time.monotonic()
    mesure = await lighthouse.mesurer()
    resultats, chemin = ecrire_seul(opts, "lighthouse", {"lighthouse": mesure}, debut)
    print()
    print("\n".join(lighthouse.tableau(mesure)))
    print()
    journal.info("résultats : %s", chemin)
    return resultats


# --rapide: every phase, tiny; the figures mean nothing, the pipeline is checked end to end.
RAPIDE: dict[str, Any] = {
    "n": 40,
    "concurrence": 10,
    "operateurs": 2,
    "duree_lecture": 3.0,
    # Few connections: on a loaded machine a page answered in over 3 s would leave wrk empty-handed.
    "wrk_connexions": 4,
    "attente": 300,
    "echantillon": 20,
    "cycles": 1,
    "duree_ouverte": 1.0,
    "recherche": 1,
    "file_demandes": 2000,
    "pilotage_demandes": 2000,
}


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
        "--duree-lecture",
        type=float,
        default=10.0,
        help="secondes de GET mesurées par wrk, par page (défaut : 10)",
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
    parser.add_argument(
        "--bases",
        default="postgresql",
        help="bases mesurées, dans l'ordre : sqlite,postgresql (défaut : postgresql)",
    )
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
        choices=["file", "sablier", "lighthouse", "pilotage"],
        default=None,
        help="un seul scénario : « file » (la file de travail des gestionnaires, PostgreSQL, sans "
        "Temporal), « sablier » (les cycles de 20 jours, seuls sur la machine), « lighthouse » "
        "(les pages de la demande et de la modification sur un téléphone, poids compris) ou "
        "« pilotage » (le tableau de bord et l'export de la file, PostgreSQL, sans Temporal)",
    )
    parser.add_argument(
        "--sans-lighthouse",
        action="store_true",
        help="ne pas mesurer les pages avec Lighthouse à la fin du banc",
    )
    parser.add_argument(
        "--pilotage-demandes",
        type=int,
        default=pilotage.DEMANDES,
        help=f"demandes du tableau de bord et de l'export mesurés sur PostgreSQL, 0 pour s'en passer "
        f"(défaut : {pilotage.DEMANDES})",
    )
    parser.add_argument(
        "--file-demandes",
        type=int,
        default=file.DEMANDES,
        help=f"demandes de la file de travail mesurée sur PostgreSQL, 0 pour s'en passer (défaut : {file.DEMANDES})",
    )
    parser.add_argument(
        "--duree-ouverte",
        type=float,
        default=15.0,
        help="secondes d'envois par rythme de la boucle ouverte (défaut : 15)",
    )
    parser.add_argument(
        "--recherche",
        type=int,
        default=len(ouvert.RECHERCHE),
        help="rythmes essayés au plus au-delà de 20/s pour trouver le plus haut tenu (0 : aucun)",
    )
    parser.add_argument(
        "--sans-deux-workers", action="store_true", help="sans la comparaison un / deux workers"
    )
    parser.add_argument(
        "--sans-confirmations", action="store_true", help="sans les confirmations en boucle ouverte"
    )
    parser.add_argument(
        "--wrk-connexions",
        type=int,
        default=wrk.CONNEXIONS,
        help=f"connexions de wrk (défaut : {wrk.CONNEXIONS})",
    )
    parser.add_argument(
        "--rapide",
        action="store_true",
        help="chaque phase en tout petit (≈ 2 min) : vérifier le banc de bout en bout, pas mesurer",
    )
    premiers = parser.parse_args(argv)
    if premiers.rapide:
        # Explicit options still win: these are only the defaults.
        parser.set_defaults(**RAPIDE)
    args = parser.parse_args(argv)
    liste = [b.strip() for b in args.bases.split(",") if b.strip()]
    if not liste or any(b not in ("sqlite", "postgresql") for b in liste):
        parser.error("--bases : sqlite et/ou postgresql")
    if args.n < 1 or args.n + SONDE > 99_999 or args.attente > 99_999:
        parser.error("--n et --attente : 99 999 au plus (numéros FINMSS<base><5 chiffres>)")
    if not 0 <= args.file_demandes <= 999_999 or (args.seulement == "file" and args.file_demandes == 0):
        parser.error("--file-demandes : de 1 à 999 999 (numéros FINMSS<6 chiffres>)")
    if not 0 <= args.pilotage_demandes <= 999_999 or (
        args.seulement == "pilotage" and args.pilotage_demandes == 0
    ):
        parser.error("--pilotage-demandes : de 1 à 999 999 (numéros FINMSS<6 chiffres>)")
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
        lighthouse=not args.sans_lighthouse,
        file_demandes=args.file_demandes,
        pilotage_demandes=args.pilotage_demandes,
        duree_ouverte=args.duree_ouverte,
        recherche=args.recherche,
        deux_workers=not args.sans_deux_workers,
        confirmations=not args.sans_confirmations,
        wrk_connexions=args.wrk_connexions,
        rapide=args.rapide,
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
        elif opts.seulement == "pilotage":
            boucle_bornee(executer_pilotage(opts))
        elif opts.seulement == "sablier":
            boucle_bornee(executer_sablier(opts, dossier))
        elif opts.seulement == "lighthouse":
            boucle_bornee(executer_lighthouse(opts))
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
