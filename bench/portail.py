"""The portal scenario: simulated operators browsing and editing through the pages, beside the
API's equivalent calls, each step timed on its own."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from bench.bases import url_async
from bench.charge import centiles
from bench.jetons import emettre_jeton
from modif_solde.api.auth import Role
from modif_solde.db import create_engine, session_factory, unit_of_work
from modif_solde.models.types import maintenant
from modif_solde.pages.session import COOKIE
from modif_solde.services import sessions_portail

OPERATEURS = 20
# One operator's round, in this order, on the pages and (same data) on the API.
ETAPES = ("mes_demandes", "demande", "modification", "enregistrer")
LIBELLES_PAGES = {
    "mes_demandes": "GET /demandes (Mes demandes)",
    "demande": "GET /demandes/{numero}",
    "modification": "GET /modifications/{numero}M1",
    "enregistrer": "POST …/brouillon (Enregistrer, 303)",
}
LIBELLES_API = {
    "mes_demandes": "GET /api/v1/demandes?limite=500",
    "demande": "GET /api/v1/demandes/{numero}",
    "modification": "GET /api/v1/modifications/{numero}M1",
    "enregistrer": "PATCH …/brouillon (If-Match)",
}
# Two valid telephone numbers in turn: every save changes the draft.
TELEPHONES = ("06 12 34 56 78", "06 98 76 54 32")
SAISIE = {
    "contact_support_nom": "NOM Prénom",
    "contact_support_courriel": "mail@contact-support.fr",
    "site_documentation_url": "https://lien_site_web.fr",
}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_VERSION = re.compile(r'name="brouillon_version" value="(\d+)"')


async def ouvrir_session(url: str, sub: str, siret: str, courriel: str | None = None) -> str:
    """A logged-in session as the login leaves it: its row in the database, opened by the
    service's own function, and the identifier the cookie carries. The scenario measures the
    pages, not the identity provider."""
    engine = create_engine(url_async(url))
    try:
        async with unit_of_work(session_factory(engine)) as session:
            return await sessions_portail.ouvrir(
                session,
                sessions_portail.Identite(
                    sub=sub,
                    courriel=courriel or f"{sub}@banc.modif-solde.fr",
                    siret=siret,
                    prenom=None,
                    nom_usage=None,
                    id_token=None,
                ),
                sessions_portail.Duree(inactivite=timedelta(hours=12), maximum=timedelta(hours=12)),
                maintenant(),
            )
    finally:
        await engine.dispose()


@dataclass
class Parcours:
    latences_s: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ETAPES})
    tours: int = 0
    duree_s: float = 0.0
    erreurs: Counter[str] = field(default_factory=Counter)


class Refus(Exception):
    """A step answered something other than what a working page or API answers."""


async def _parcourir(
    base: str,
    demandes: Sequence[str],
    operateurs: int,
    duree: float,
    entetes: Callable[[int], dict[str, str]],
    tour: Callable[[httpx.AsyncClient, str, int, Callable[[str, float], None]], Awaitable[None]],
    echauffement: float = 2.0,
) -> Parcours:
    """`operateurs` clients, each looping over its own requests for `duree` seconds after a warm-up."""
    parcours = Parcours()
    debut_mesure = time.monotonic() + echauffement
    fin_mesure = debut_mesure + duree
    derniere = debut_mesure

    async def operateur(k: int) -> None:
        nonlocal derniere
        siennes = list(demandes[k::operateurs]) or [demandes[k % len(demandes)]]
        async with httpx.AsyncClient(
            base_url=base,
            headers=entetes(k),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=httpx.Timeout(60.0),
        ) as http:
            i = 0
            while time.monotonic() < fin_mesure:
                numero = siennes[i % len(siennes)]
                debut_tour = time.monotonic()

                def noter(etape: str, t0: float) -> None:
                    if t0 >= debut_mesure:
                        parcours.latences_s[etape].append(time.monotonic() - t0)

                try:
                    await tour(http, numero, i, noter)
                    if debut_tour >= debut_mesure:
                        parcours.tours += 1
                        derniere = max(derniere, time.monotonic())
                except (Refus, httpx.HTTPError) as err:
                    parcours.erreurs[type(err).__name__ + (f" {err}" if isinstance(err, Refus) else "")] += 1
                i += 1

    await asyncio.gather(*(operateur(k) for k in range(operateurs)))
    parcours.duree_s = max(derniere - debut_mesure, 1e-9)
    return parcours


def _attendu(reponse: httpx.Response, statut: int, etape: str) -> httpx.Response:
    if reponse.status_code != statut:
        raise Refus(f"{etape}:{reponse.status_code}")
    return reponse


async def parcourir_pages(
    base: str, url_base: str, siret: str, demandes: Sequence[str], operateurs: int, duree: float
) -> Parcours:
    """Mes demandes, the request page, the modification page, an Enregistrer post (no JavaScript:
    the form's post and its redirect, not followed: the next round reads the page)."""

    sessions = [await ouvrir_session(url_base, f"operateur-bench-{k}", siret) for k in range(operateurs)]

    def entetes(k: int) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={sessions[k]}"}

    async def tour(http: httpx.AsyncClient, numero: str, i: int, noter: Callable[[str, float], None]) -> None:
        t0 = time.monotonic()
        _attendu(await http.get("/demandes"), 200, "mes_demandes")
        noter("mes_demandes", t0)
        t0 = time.monotonic()
        _attendu(await http.get(f"/demandes/{numero}"), 200, "demande")
        noter("demande", t0)
        t0 = time.monotonic()
        page = _attendu(await http.get(f"/modifications/{numero}M1"), 200, "modification").text
        noter("modification", t0)
        csrf, version = _CSRF.search(page), _VERSION.search(page)
        if not csrf or not version:
            raise Refus("modification:formulaire absent")
        donnees = {
            **SAISIE,
            "csrf": csrf.group(1),
            "brouillon_version": version.group(1),
            "contact_support_telephone": TELEPHONES[i % 2],
        }
        t0 = time.monotonic()
        reponse = _attendu(
            await http.post(f"/modifications/{numero}M1/brouillon", data=donnees), 303, "enregistrer"
        )
        noter("enregistrer", t0)
        if reponse.headers.get("location") != f"/modifications/{numero}M1":
            raise Refus("enregistrer:redirection inattendue")

    return await _parcourir(base, demandes, operateurs, duree, entetes, tour)


async def parcourir_api(
    base: str, secret_jwt: str, siret: str, demandes: Sequence[str], operateurs: int, duree: float
) -> Parcours:
    """The same round through the API, as an operator's token: the same reads, the same save."""

    def entetes(k: int) -> dict[str, str]:
        jeton = emettre_jeton(secret_jwt, f"operateur-bench-{k}", Role.OPERATEUR, siret=siret)
        return {"Authorization": f"Bearer {jeton}"}

    async def tour(http: httpx.AsyncClient, numero: str, i: int, noter: Callable[[str, float], None]) -> None:
        t0 = time.monotonic()
        _attendu(await http.get("/api/v1/demandes", params={"limite": 500}), 200, "mes_demandes")
        noter("mes_demandes", t0)
        t0 = time.monotonic()
        _attendu(await http.get(f"/api/v1/demandes/{numero}"), 200, "demande")
        noter("demande", t0)
        t0 = time.monotonic()
        modification = _attendu(await http.get(f"/api/v1/modifications/{numero}M1"), 200, "modification")
        noter("modification", t0)
        t0 = time.monotonic()
        _attendu(
            await http.patch(
                f"/api/v1/modifications/{numero}M1/brouillon",
                json={**SAISIE, "contact_support_telephone": TELEPHONES[i % 2]},
                headers={"If-Match": modification.headers["ETag"]},
            ),
            200,
            "enregistrer",
        )
        noter("enregistrer", t0)

    return await _parcourir(base, demandes, operateurs, duree, entetes, tour)


def mesures(pages: Parcours, api: Parcours) -> dict[str, Any]:
    """The results' keys: per step, p50/p95/p99/max in ms, pages (`portal_*`) beside the API
    (`portal_api_*`); rounds per second and errors of each side."""
    r: dict[str, Any] = {}
    for prefixe, parcours in (("portal", pages), ("portal_api", api)):
        for etape in ETAPES:
            r.update(centiles(parcours.latences_s[etape], f"{prefixe}_{etape}", "ms", 1000))
        r[f"{prefixe}_rounds_per_s"] = round(parcours.tours / parcours.duree_s, 2)
        r[f"{prefixe}_errors"] = sum(parcours.erreurs.values())
        if parcours.erreurs:
            r[f"{prefixe}_errors_by_kind"] = dict(parcours.erreurs)
    return r


def tableau(r: dict[str, Any]) -> list[str]:
    """Each step's p50 / p95 on the pages beside the API's, for the printed report."""
    if "portal_rounds_per_s" not in r:
        return []
    lignes = [f"  {'étape':<40}{'pages p50 / p95 (ms)':>24}   {'API p50 / p95 (ms)':>20}   équivalent API"]
    for etape in ETAPES:
        pages = f"{r.get(f'portal_{etape}_p50_ms', float('nan')):.1f} / {r.get(f'portal_{etape}_p95_ms', float('nan')):.1f}"
        api = f"{r.get(f'portal_api_{etape}_p50_ms', float('nan')):.1f} / {r.get(f'portal_api_{etape}_p95_ms', float('nan')):.1f}"
        lignes.append(f"  {LIBELLES_PAGES[etape]:<40}{pages:>24}   {api:>20}   {LIBELLES_API[etape]}")
    lignes.append(
        f"  {'tours complets /s':<40}{r['portal_rounds_per_s']:>24}   {r['portal_api_rounds_per_s']:>20}"
        f"   erreurs : pages {r['portal_errors']}, API {r['portal_api_errors']}"
    )
    return lignes
