"""Open loop: requests sent at a fixed arrival rate, each timed from its intended send time.

A closed loop (N clients, each waiting for its answer before sending the next) slows down with the
service it measures: when the service stalls, the clients stop sending, and the stall shows in one
latency instead of in every request that should have been sent meanwhile (coordinated omission).
Here each request has its intended time, `debut + i / rythme`; it is sent then, concurrently with
the others whatever the earlier ones are doing, and its latency counts from that intended time:
a stall of the service, or of this process, is in the latency of every request it delayed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.charge import centiles
from bench.puits import PuitsHorodate

journal = logging.getLogger("bench")

# The rates the targets are written at, then the search for the highest one held.
RYTHMES = (5.0, 10.0, 20.0)
RECHERCHE = (30.0, 40.0, 60.0, 80.0)
# Held: the e-mail's p99 under this, no error, every e-mail received.
SEUIL_P99_S = 1.0


@dataclass
class Envoi:
    cle: str
    prevu: float
    envoye: float = 0.0
    fin: float = 0.0
    statut: int = 0


@dataclass
class Salve:
    """One rate's run: every request, and how late the generator itself was."""

    rythme: float
    envois: list[Envoi]
    erreurs: Counter[int] = field(default_factory=Counter)

    @property
    def reussis(self) -> list[Envoi]:
        return [e for e in self.envois if 200 <= e.statut < 300]


async def salve(
    rythme: float,
    elements: Sequence[str],
    appeler: Callable[[str], Awaitable[tuple[int, str]]],
    cle: Callable[[str], str],
) -> Salve:
    """One request per element at `rythme` per second; `appeler` answers (status, body)."""
    resultat = Salve(rythme, [])
    debut = time.monotonic() + 0.05

    async def un(element: str, envoi: Envoi) -> None:
        envoi.envoye = time.monotonic()
        try:
            envoi.statut, corps = await appeler(element)
        except httpx.HTTPError as err:
            envoi.statut, corps = 0, repr(err)
        envoi.fin = time.monotonic()
        if not 200 <= envoi.statut < 300:
            resultat.erreurs[envoi.statut] += 1
            if sum(resultat.erreurs.values()) <= 3:
                journal.warning("  %s : %s %s", element, envoi.statut, corps[:300])

    taches = []
    for i, element in enumerate(elements):
        prevu = debut + i / rythme
        attente = prevu - time.monotonic()
        if attente > 0:
            await asyncio.sleep(attente)
        envoi = Envoi(cle(element), prevu)
        resultat.envois.append(envoi)
        taches.append(asyncio.create_task(un(element, envoi)))
    await asyncio.gather(*taches)
    return resultat


def client(base: str, entetes: dict[str, str]) -> httpx.AsyncClient:
    # Enough connections for every request in flight: a request never waits for a free one.
    return httpx.AsyncClient(
        base_url=base,
        headers=entetes,
        limits=httpx.Limits(max_connections=2000, max_keepalive_connections=200),
        timeout=httpx.Timeout(120.0),
    )


async def mesurer(
    s: Salve, puits: PuitsHorodate, delai: float, prefixe: str
) -> tuple[dict[str, Any], list[float]]:
    """Wait for the e-mails (at most `delai` s), then the figures: the API call and request →
    e-mail received at the sink, both from the intended send time."""
    manquantes = await puits.attendre([e.cle for e in s.reussis], delai=delai)
    arrivees = [puits.arrivees[e.cle] - e.prevu for e in s.reussis if e.cle in puits.arrivees]
    r: dict[str, Any] = {
        "rythme_par_s": s.rythme,
        "envois": len(s.envois),
        "erreurs": sum(s.erreurs.values()),
        "courriels_manquants": len(manquantes),
        # How late this process sent, at worst: above a few ms, the generator itself lagged (the
        # latencies still count from the intended time).
        "retard_emission_max_ms": round(1000 * max((e.envoye - e.prevu for e in s.envois), default=0), 1),
    }
    if s.erreurs:
        r["erreurs_par_statut"] = {str(k): v for k, v in s.erreurs.items()}
    # Every answer, refusals and timeouts included: a 503 after a bounded wait is latency too.
    r.update(centiles([e.fin - e.prevu for e in s.envois], "api", "s"))
    r.update(centiles(arrivees, prefixe, "s"))
    if arrivees and s.envois:
        # What the service delivered: e-mails per second from the first intended send to the last arrival.
        fin = max(puits.arrivees[e.cle] for e in s.reussis if e.cle in puits.arrivees)
        r["debit_courriels_par_s"] = round(len(arrivees) / (fin - s.envois[0].prevu), 2)
    p99 = r.get(f"{prefixe}_p99_s")
    r["tenu"] = bool(
        p99 is not None
        and p99 < SEUIL_P99_S
        and not s.erreurs
        and not manquantes
        and len(arrivees) == len(s.envois)
    )
    return r, arrivees


def ligne(nom: str, r: dict[str, Any], prefixe: str) -> str:
    return (
        f"  {nom:<26}{r['rythme_par_s']:>6.0f}/s  n={r['envois']:<5} API p50 {r.get('api_p50_s', float('nan')):.3f} "
        f"p99 {r.get('api_p99_s', float('nan')):.3f} s   courriel p50 {r.get(f'{prefixe}_p50_s', float('nan')):.3f} "
        f"p99 {r.get(f'{prefixe}_p99_s', float('nan')):.3f} s   erreurs {r['erreurs']}, manquants "
        f"{r['courriels_manquants']}, retard d'émission max {r['retard_emission_max_ms']:.0f} ms"
        f"{'' if r['tenu'] else '  (non tenu)'}"
    )
