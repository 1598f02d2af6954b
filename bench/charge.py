"""Load from this process: 50 concurrent clients opening, reading, starting, querying."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import numpy as np
from temporalio.client import Client
from temporalio.service import RPCError

from bench.noop import EntreeNoop, NoopWorkflow
from modif_solde.temporal import demarrer_modification
from modif_solde.workflows.contrat import ModificationEntree
from modif_solde.workflows.modification import ModificationWorkflow

journal = logging.getLogger("bench")

T = TypeVar("T")

OUVERTURE = {
    "commentaire": "Le numéro du contact support diffère de celui de la pièce « MSS_RESU_TEST_TECH ».",
    "champs": ["contact_support_telephone"],
}


def centiles(valeurs: Sequence[float], prefixe: str, unite: str, echelle: float = 1.0) -> dict[str, float]:
    if not valeurs:
        return {}
    p50, p95, p99 = np.percentile(np.asarray(valeurs) * echelle, [50, 95, 99])
    arrondi = 4 if unite == "s" else 2
    return {
        f"{prefixe}_p50_{unite}": round(float(p50), arrondi),
        f"{prefixe}_p95_{unite}": round(float(p95), arrondi),
        f"{prefixe}_p99_{unite}": round(float(p99), arrondi),
        f"{prefixe}_max_{unite}": round(float(max(valeurs) * echelle), arrondi),
    }


async def en_parallele(
    nom: str, elements: Sequence[T], concurrence: int, fonction: Callable[[T], Awaitable[None]]
) -> float:
    """`concurrence` tasks draining one shared list; a progress line every 10 s; answers the
    elapsed seconds."""
    suivant = iter(elements)
    faits = 0
    debut = time.monotonic()

    async def ouvrier() -> None:
        nonlocal faits
        for element in suivant:
            await fonction(element)
            faits += 1

    async def progres() -> None:
        while True:
            await asyncio.sleep(10)
            ecoule = time.monotonic() - debut
            journal.info("  %s : %d/%d (%.0f/s)", nom, faits, len(elements), faits / ecoule)

    suivi = asyncio.create_task(progres())
    try:
        await asyncio.gather(*(ouvrier() for _ in range(concurrence)))
    finally:
        suivi.cancel()
    return time.monotonic() - debut


@asynccontextmanager
async def clients_http(base: str, nombre: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One AsyncClient (one keep-alive connection) per concurrent client. A single client with a
    pool of 50 connections is itself the bottleneck: httpcore's pool costs grow with the number
    of waiting requests (measured here: 215 req/s at 50 on the bare app, against 1,190 so)."""
    clients = [
        httpx.AsyncClient(
            base_url=base,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=httpx.Timeout(60.0),
        )
        for _ in range(nombre)
    ]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


@dataclass
class Ouverture:
    numero: str
    debut: float
    fin: float
    statut: int
    modification: str


@dataclass
class Ouvertures:
    appels: list[Ouverture]
    duree_s: float
    erreurs: Counter[int] = field(default_factory=Counter)


async def ouvrir_par_api(base: str, jeton: str, liste: Sequence[str], concurrence: int) -> Ouvertures:
    """POST /api/v1/demandes/{numero}/modifications as a gestionnaire, `concurrence` at a time."""
    entetes = {"Authorization": f"Bearer {jeton}"}
    appels: list[Ouverture] = []
    erreurs: Counter[int] = Counter()

    async with clients_http(base, concurrence) as clients:
        libres = list(clients)

        async def ouvrir(numero: str) -> None:
            # Each of the `concurrence` tasks holds one client for the duration of its call.
            http = libres.pop()
            debut = time.monotonic()
            try:
                r = await http.post(
                    f"/api/v1/demandes/{numero}/modifications", json=OUVERTURE, headers=entetes
                )
                statut, corps = r.status_code, r.text
            except httpx.HTTPError as err:
                statut, corps = 0, repr(err)
            fin = time.monotonic()
            libres.append(http)
            if statut != 201:
                erreurs[statut] += 1
                if sum(erreurs.values()) <= 3:
                    journal.warning("  ouverture de %s : %s %s", numero, statut, corps[:300])
            appels.append(Ouverture(numero, debut, fin, statut, f"{numero}M1"))

        duree = await en_parallele("ouvertures (API)", liste, concurrence, ouvrir)
    return Ouvertures(appels, duree, erreurs)


async def demarrer_noop(
    client: Client, task_queue: str, ids: Sequence[str], concurrence: int
) -> dict[str, Any]:
    """The raw baseline: start the no-op workflows, `concurrence` at a time, then wait for all."""
    latences: list[float] = []
    handles = []

    async def demarrer(wid: str) -> None:
        t0 = time.monotonic()
        handle = await client.start_workflow(
            NoopWorkflow.run,
            EntreeNoop(
                numero=wid, commentaire=OUVERTURE["commentaire"], champs=["contact_support_telephone"]
            ),
            id=wid,
            task_queue=task_queue,
        )
        latences.append(time.monotonic() - t0)
        handles.append(handle)

    debut = time.monotonic()
    duree = await en_parallele("démarrages bruts", ids, concurrence, demarrer)
    sem = asyncio.Semaphore(concurrence)

    async def resultat(handle: Any) -> None:
        async with sem:
            await handle.result()

    await asyncio.gather(*(resultat(h) for h in handles))
    toutes_finies = time.monotonic() - debut
    return {
        "baseline_starts_per_s": round(len(ids) / duree, 2),
        "baseline_all_completed_s": round(toutes_finies, 2),
        "baseline_completed_per_s": round(len(ids) / toutes_finies, 2),
        **centiles(latences, "baseline_start", "s"),
    }


async def ouvrir_directement(
    client: Client, task_queue: str, entrees: Sequence[ModificationEntree], concurrence: int, siret: str
) -> dict[str, Any]:
    """The cheaper path for the extra waiting modifications: `demarrer_modification` (start +
    the opening update) from this process, without HTTP."""
    erreurs: Counter[str] = Counter()

    async def ouvrir(entree: ModificationEntree) -> None:
        try:
            await demarrer_modification(client, task_queue, entree, siret)
        except Exception as err:
            erreurs[type(err).__name__] += 1
            if sum(erreurs.values()) <= 3:
                journal.warning("  ouverture directe de %s : %r", entree.modification_numero, err)

    duree = await en_parallele("ouvertures directes", entrees, concurrence, ouvrir)
    return {
        "direct_opens_per_s": round(len(entrees) / duree, 2),
        "direct_opens_s": round(duree, 2),
        "direct_opens_errors": dict(erreurs),
    }


async def interroger(client: Client, ids: Sequence[str], concurrence: int, origine: float) -> dict[str, Any]:
    """Query `etat` on each workflow (retrying until it answers); times from `origine`."""
    latences: list[float] = []
    reponses: list[float] = []
    echecs = 0

    async def interroger_un(wid: str) -> None:
        nonlocal echecs
        handle = client.get_workflow_handle_for(ModificationWorkflow.run, wid)
        t0 = time.monotonic()
        for _ in range(60):
            try:
                await handle.query(ModificationWorkflow.etat, rpc_timeout=timedelta(seconds=30))
                break
            except RPCError:
                echecs += 1
                await asyncio.sleep(0.2)
        t1 = time.monotonic()
        latences.append(t1 - t0)
        reponses.append(t1 - origine)

    await en_parallele("requêtes etat", ids, concurrence, interroger_un)
    return {
        "restart_first_query_s": round(min(reponses), 3),
        "restart_sample_all_answered_s": round(max(reponses), 3),
        "restart_query_retries": echecs,
        **centiles(latences, "restart_query", "s"),
    }
