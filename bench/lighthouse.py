"""What a phone meets: Lighthouse (npm, its mobile defaults: simulated slow 4G and a 4× slower
CPU) on Debian's Chromium, on the request page and the modification page of a seeded dev stack
(the demo data, the service `make captures` runs), logged in as the demo operator; and the bytes
of a first visit and of a repeat visit, counted in the browser (Playwright's request sizes)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

journal = logging.getLogger("bench")

DEPOT = Path(__file__).resolve().parents[1]
LIGHTHOUSE = DEPOT / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices")
# Lighthouse's headless Chromium, kept off the internet like the tests' one.
DRAPEAUX = (
    "--headless=new --no-sandbox --disable-background-networking --disable-component-update "
    "--disable-sync --disable-quic --no-first-run"
)
CIBLES = {
    "performance": 95,
    "accessibility": 100,
    "best-practices": 100,
    "premiere_visite_ko": 300,
    "visite_suivante_ko": 30,
}
ABSENT = "Lighthouse manque : `make modif_solde/pages/static/vendor/.installed` (npm ci l'installe, devDependency)."


async def octets_transferes(contexte: Any, url: str) -> tuple[int, list[str]]:
    """The bytes a page's load brings over the network: headers and encoded bodies, as
    Playwright's request sizes count them, and the URLs fetched; a cache hit counts nothing."""
    page = await contexte.new_page()
    reponses: list[Any] = []
    page.on("response", lambda r: reponses.append(r))
    await page.goto(url)
    await page.wait_for_load_state("networkidle")
    total, urls = 0, []
    for reponse in reponses:
        tailles = await reponse.request.sizes()
        # A cache hit: Chromium gives it a body size of minus its headers' (nothing transferred).
        octets = tailles["responseHeadersSize"] + tailles["responseBodySize"]
        if octets > 0:
            total += octets
            urls.append(reponse.url)
    await page.close()
    return total, urls


async def _lighthouse(url: str, cookie: str, dossier: Path, nom: str) -> dict[str, Any]:
    entetes = dossier / "entetes.json"
    entetes.write_text(json.dumps({"Cookie": cookie}))
    sortie = dossier / f"{nom}.json"
    processus = await asyncio.create_subprocess_exec(
        str(LIGHTHOUSE),
        url,
        "--output=json",
        f"--output-path={sortie}",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--extra-headers={entetes}",
        f"--chrome-flags={DRAPEAUX}",
        "--quiet",
        env={**os.environ, "CHROME_PATH": "/usr/bin/chromium"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    sortie_texte, _ = await processus.communicate()
    if processus.returncode != 0 or not sortie.exists():
        raise RuntimeError(f"Lighthouse sur {url} : {sortie_texte.decode(errors='replace')[-2000:]}")
    rapport = json.loads(sortie.read_text())
    audits = rapport["audits"]
    mesure = {
        c: round(100 * rapport["categories"][c]["score"])
        if rapport["categories"][c]["score"] is not None
        else None
        for c in CATEGORIES
    }
    mesure.update(
        {
            "first_contentful_paint_s": round(audits["first-contentful-paint"]["numericValue"] / 1000, 2),
            "largest_contentful_paint_s": round(audits["largest-contentful-paint"]["numericValue"] / 1000, 2),
            "total_blocking_time_ms": round(audits["total-blocking-time"]["numericValue"]),
            "cumulative_layout_shift": round(audits["cumulative-layout-shift"]["numericValue"], 3),
            "lighthouse_octets": round(audits["total-byte-weight"]["numericValue"]),
            "economie_compression_octets": round(
                audits["uses-text-compression"].get("details", {}).get("overallSavingsBytes", 0)
            ),
            "echecs": sorted(
                a["id"]
                for a in audits.values()
                if a.get("score") is not None
                and a["score"] < 1
                and a.get("scoreDisplayMode") in ("binary", "numeric")
            ),
            "version": rapport.get("lighthouseVersion"),
            # What each request weighed on the wire and once decoded (Lighthouse's network log).
            "requetes": [
                {
                    "url": r["url"].split("/", 3)[-1],
                    "transfere": r.get("transferSize", 0),
                    "decode": r.get("resourceSize", 0),
                    "priorite": r.get("priority"),
                }
                for r in audits["network-requests"]["details"]["items"]
            ],
        }
    )
    return mesure


async def mesurer() -> dict[str, Any]:
    """The dev stack with the demo data, the operator logged in by the local provider, then each
    page: Lighthouse, then two visits in a fresh browser context (bytes)."""
    from playwright.async_api import async_playwright

    from modif_solde.pages.navigateur import ARGUMENTS_CHROMIUM, CHROMIUM
    from modif_solde.pages.session import COOKIE
    from outils.captures import DEMANDE, MODIFICATION, OPERATEUR
    from outils.captures import _service as service_demo

    if not LIGHTHOUSE.exists():
        raise RuntimeError(ABSENT)
    pages = {"demande": f"/demandes/{DEMANDE}", "modification": f"/modifications/{MODIFICATION}"}
    resultats: dict[str, Any] = {"cibles": CIBLES, "pages": {}}
    dossier = Path(tempfile.mkdtemp(prefix="modif-solde-lighthouse-"))
    try:
        async with service_demo(dossier) as url, async_playwright() as p:
            navigateur = await p.chromium.launch(executable_path=CHROMIUM, args=ARGUMENTS_CHROMIUM)
            connexion = await navigateur.new_context(locale="fr-FR")
            page = await connexion.new_page()
            await page.goto(url + "/connexion")
            await page.get_by_role("button", name=OPERATEUR, exact=True).click()
            await page.wait_for_url(url + "/demandes")
            cookies = await connexion.cookies()
            await connexion.close()
            session = next(c["value"] for c in cookies if c["name"] == COOKIE)
            for nom, chemin in pages.items():
                journal.info("[lighthouse] %s (%s)", nom, chemin)
                mesure = await _lighthouse(url + chemin, f"{COOKIE}={session}", dossier, nom)
                contexte = await navigateur.new_context(
                    locale="fr-FR", viewport={"width": 412, "height": 823}
                )
                await contexte.add_cookies(cookies)
                premiere, _ = await octets_transferes(contexte, url + chemin)
                suivante, recharges = await octets_transferes(contexte, url + chemin)
                await contexte.close()
                mesure.update(
                    premiere_visite_octets=premiere,
                    visite_suivante_octets=suivante,
                    visite_suivante_urls=[u.removeprefix(url) for u in recharges],
                    chemin=chemin,
                )
                mesure["objectifs"] = evaluer(mesure)
                resultats["pages"][nom] = mesure
            await navigateur.close()
    finally:
        shutil.rmtree(dossier, ignore_errors=True)
    return resultats


def evaluer(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    valeurs = {
        "performance": m["performance"],
        "accessibility": m["accessibility"],
        "best-practices": m["best-practices"],
        "premiere_visite_ko": round(m["premiere_visite_octets"] / 1024, 1),
        "visite_suivante_ko": round(m["visite_suivante_octets"] / 1024, 1),
    }
    return {
        cle: {
            "valeur": v,
            "cible": CIBLES[cle],
            "atteint": None if v is None else (v <= CIBLES[cle] if cle.endswith("_ko") else v >= CIBLES[cle]),
        }
        for cle, v in valeurs.items()
    }


LIBELLES = {
    "performance": "performance (mobile)",
    "accessibility": "accessibilité",
    "best-practices": "bonnes pratiques",
    "premiere_visite_ko": "première visite, Kio transférés",
    "visite_suivante_ko": "visite suivante, Kio transférés",
}


def tableau(r: dict[str, Any]) -> list[str]:
    """The report's lines: each page's figures beside their targets."""
    pages = r.get("pages", {})
    if not pages:
        return []
    noms = list(pages)
    lignes = [
        "Lighthouse (mobile, ralentissement simulé par défaut) et octets transférés, opérateur connecté :",
        f"  {'mesure':<34}" + "".join(f"{n:>14}" for n in noms) + "  cible      atteint",
    ]
    for cle, libelle in LIBELLES.items():
        evalues = [pages[n]["objectifs"][cle] for n in noms]
        cible = f"{'≤' if cle.endswith('_ko') else '≥'} {CIBLES[cle]}"
        atteints = "/".join(
            "non mesuré" if e["atteint"] is None else ("oui" if e["atteint"] else "NON") for e in evalues
        )
        lignes.append(
            f"  {libelle:<34}"
            + "".join(f"{e['valeur']!s:>14}" for e in evalues)
            + f"  {cible:<10} {atteints}"
        )
    for cle, libelle in (
        ("first_contentful_paint_s", "premier rendu, s"),
        ("largest_contentful_paint_s", "plus grand rendu, s"),
        ("total_blocking_time_ms", "blocage total, ms"),
        ("lighthouse_octets", "octets vus par Lighthouse"),
        ("economie_compression_octets", "à gagner par compression, o"),
    ):
        lignes.append(f"  {libelle:<34}" + "".join(f"{pages[n][cle]!s:>14}" for n in noms))
    for n in noms:
        if pages[n]["echecs"]:
            lignes.append(f"  audits non réussis ({n}) : {', '.join(pages[n]['echecs'])}")
    return lignes
