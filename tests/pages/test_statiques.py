"""What a phone downloads: static files under hashed names cached a year and precompressed,
compressed pages (not documents), only the DSFR parts the pages use, and the weight of a first
and of a repeat visit counted in the browser (sizes, not times)."""

from __future__ import annotations

import asyncio
import gzip
import re
from pathlib import Path
from typing import Any

import brotli
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from bench.lighthouse import octets_transferes
from modif_solde.models.tables import Demande
from modif_solde.pages.compression import Compression
from modif_solde.pages.statiques import (
    DSFR_PORTAIL,
    DSFR_PORTAIL_IMPRESSION,
    DSFR_PORTAIL_SCRIPT,
    IMMUABLE,
    PARTIES_DSFR,
    STATIQUES,
    manifeste,
    url_statique,
)
from tests.pages.conftest import OPERATEUR, jeton_csrf, se_connecter
from tests.pages.navigation import choisir_identite
from tests.pages.test_navigateur import ouvrir_modification
from tests.workflows.conftest import ServeurSmtp

GABARITS = Path(__file__).parents[2] / "modif_solde" / "pages" / "templates"
DSFR_COMPLET = Path(__file__).parents[2] / "node_modules" / "@gouvfr" / "dsfr" / "dist" / "dsfr.min.css"
HACHE = re.compile(r"/static/[^\"'\s)]+\.[0-9a-f]{12}\.[a-z0-9]+")
PREMIERE_VISITE_MAX = 300 * 1024
VISITE_SUIVANTE_MAX = 30 * 1024


async def test_a_hashed_url_is_immutable_and_compressed_as_asked(portail: httpx.AsyncClient) -> None:
    url = url_statique(DSFR_PORTAIL)
    assert re.fullmatch(r"/static/vendor/dsfr/portail/dsfr\.min\.[0-9a-f]{12}\.css", url)
    identite = await portail.get(url, headers={"Accept-Encoding": "identity"})
    assert identite.status_code == 200 and "Content-Encoding" not in identite.headers
    assert identite.headers["Cache-Control"] == IMMUABLE == "public, max-age=31536000, immutable"
    assert identite.headers["Content-Type"].startswith("text/css")
    assert identite.headers["Vary"] == "Accept-Encoding"
    for codage, decoder in (("gzip", gzip.decompress), ("br", brotli.decompress)):
        async with portail.stream("GET", url, headers={"Accept-Encoding": codage}) as r:
            brut = b"".join([morceau async for morceau in r.aiter_raw()])
        assert r.headers["Content-Encoding"] == codage and r.headers["Cache-Control"] == IMMUABLE
        assert r.headers["Content-Type"].startswith("text/css")
        assert len(brut) < len(identite.content) / 5
        assert decoder(brut) == identite.content
    # A font is already compressed: as it is, cached a year too.
    police = await portail.get(
        url_statique("vendor/dsfr/fonts/Marianne-Regular.woff2"), headers={"Accept-Encoding": "gzip, br"}
    )
    assert police.status_code == 200 and "Content-Encoding" not in police.headers
    assert police.headers["Cache-Control"] == IMMUABLE and police.headers["Content-Type"] == "font/woff2"


async def test_the_plain_name_still_answers_with_a_short_cache(portail: httpx.AsyncClient) -> None:
    r = await portail.get("/static/portail.css")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "public, max-age=3600"
    assert (await portail.get("/static/vendor/absent.3f2a9c1b7d04.css")).status_code == 404
    assert (await portail.get("/static/../pages/rendu.py")).status_code == 404
    assert (await portail.post(url_statique("portail.css"))).status_code == 405


async def test_pages_name_hashed_static_files_only_and_the_stylesheet_too(portail: httpx.AsyncClient) -> None:
    pages = [("/", (await portail.get("/")).text)]
    await se_connecter(portail, OPERATEUR)
    pages += [(chemin, (await portail.get(chemin)).text) for chemin in ("/demandes", "/docs")]
    for chemin, html in pages:
        references = re.findall(r"""(?:href|src)="(/static/[^"]+)\"""", html)
        assert references, chemin
        for reference in references:
            assert HACHE.fullmatch(reference), f"{chemin} : {reference}"
            assert (await portail.get(reference)).status_code == 200, reference
    # The stylesheet's fonts and icons are the hashed files the page preloads, cached as long.
    feuille = (await portail.get(url_statique(DSFR_PORTAIL))).text
    urls = re.findall(r"url\(([^)\"']+)\)", feuille)
    assert urls and all(re.search(r"\.[0-9a-f]{12}\.(woff2?|svg)$", u) for u in urls), urls[:5]
    assert "../fonts/" + url_statique("vendor/dsfr/fonts/Marianne-Bold.woff2").rsplit("/", 1)[1] in feuille


async def test_pages_are_gzipped_with_a_csrf_token_new_at_each_answer(portail: httpx.AsyncClient) -> None:
    await se_connecter(portail, OPERATEUR)
    async with portail.stream("GET", "/demandes", headers={"Accept-Encoding": "gzip"}) as r:
        brut = b"".join([morceau async for morceau in r.aiter_raw()])
    assert r.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in r.headers["Vary"]
    assert r.headers["Cache-Control"] == "no-store" and "Content-Security-Policy" in r.headers
    premier = jeton_csrf(gzip.decompress(brut).decode())
    second = jeton_csrf((await portail.get("/demandes")).text)
    assert premier != second
    # Either is the session's token; another session's or a made-up one is not.
    assert (await portail.post("/deconnexion", data={"csrf": second[:-4] + "AAAA"})).status_code == 403
    assert (await portail.post("/deconnexion", data={"csrf": premier})).status_code == 303


async def test_a_document_streams_out_as_it_is_and_a_tiny_body_too() -> None:
    """The middleware on a route streaming a PDF in chunks: no compression, each chunk sent as
    it comes (nothing buffered); a JSON body under a kilobyte is not compressed either."""
    morceaux = [b"%PDF-1.7\n" + b"x" * 4000, b"y" * 4000, b"%%EOF\n"]
    envoyes: list[int] = []

    async def document(_: Any) -> StreamingResponse:
        async def flux() -> Any:
            for morceau in morceaux:
                envoyes.append(len(morceau))
                yield morceau

        return StreamingResponse(flux(), media_type="application/pdf")

    async def petit(_: Any) -> JSONResponse:
        return JSONResponse({"statut": "ok"})

    app = Compression(Starlette(routes=[Route("/piece", document), Route("/petit", petit)]))
    # Straight over ASGI: each message the client side would get, as the server sends it.
    messages: list[dict[str, Any]] = []

    async def recevoir() -> dict[str, Any]:
        # The client stays connected: Starlette's watch for a disconnect waits (and is cancelled).
        await asyncio.Event().wait()
        raise AssertionError

    produits: list[int] = []  # chunks produced when each body message went out

    async def envoyer(message: Any) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            produits.append(len(envoyes))
        messages.append(message)

    for chemin in ("/piece", "/petit"):
        messages.clear()
        await app(
            {
                "type": "http",
                "method": "GET",
                "path": chemin,
                "raw_path": chemin.encode(),
                "query_string": b"",
                "headers": [(b"accept-encoding", b"gzip, br"), (b"host", b"t")],
                "http_version": "1.1",
                "scheme": "http",
                "server": ("t", 80),
                "client": ("127.0.0.1", 1),
                "root_path": "",
            },
            recevoir,
            envoyer,
        )
        entetes = dict(messages[0]["headers"])
        assert b"content-encoding" not in entetes, chemin
        corps = [m["body"] for m in messages[1:] if m.get("body")]
        if chemin == "/piece":
            assert corps == morceaux
            # Each chunk went out before the next was produced: nothing held back.
            assert produits == [1, 2, 3]
        else:
            assert corps == [b'{"statut":"ok"}']


def test_the_dsfr_parts_loaded_define_every_dsfr_class_the_templates_use() -> None:
    if not DSFR_COMPLET.exists():
        pytest.fail("le DSFR complet manque : `make install`")
    complet = DSFR_COMPLET.read_text()
    charge = (STATIQUES / DSFR_PORTAIL).read_text() + (STATIQUES / DSFR_PORTAIL_IMPRESSION).read_text()
    classes = {
        c
        for gabarit in GABARITS.rglob("*.html")
        for attribut in re.findall(r'class="([^"]*)"', gabarit.read_text())
        for c in re.sub(r"{[{%].*?[%}]}", " ", attribut).split()
        if c.startswith("fr-")
    }
    assert len(classes) > 50
    definie = re.compile(r"\.{}(?![\w-])")
    manquantes = sorted(
        c
        for c in classes
        if re.search(definie.pattern.format(re.escape(c)), complet)
        and not re.search(definie.pattern.format(re.escape(c)), charge)
    )
    assert not manquantes, f"ajouter leur composant à PARTIES_DSFR : {manquantes}"
    assert "core/core" in PARTIES_DSFR and len(charge) < len(complet) * 0.7


def test_make_precompressed_every_compressible_file_of_the_page() -> None:
    m = manifeste()
    for nom in (DSFR_PORTAIL, DSFR_PORTAIL_SCRIPT, "vendor/htmx/htmx.min.js", "portail.css"):
        hache = m.hache[nom]
        for suffixe in (".gz", ".br"):
            assert (STATIQUES / (hache + suffixe)).is_file(), f"{hache}{suffixe} : `make` ne l'a pas écrit"


async def test_a_first_visit_weighs_under_300_kb_and_a_repeat_visit_under_30_kb(
    serveur_portail: str, navigateur: Any, smtp: ServeurSmtp, demande: Demande
) -> None:
    del demande
    lien = await ouvrir_modification(serveur_portail, smtp, "FINMSS009266M1")
    connexion = await navigateur.new_context(locale="fr-FR")
    page = await connexion.new_page()
    await page.goto(lien)
    await choisir_identite(page, OPERATEUR)
    cookies = await connexion.cookies()
    await connexion.close()
    # A new context: an empty cache, the session's cookies (the operator is logged in).
    contexte = await navigateur.new_context(locale="fr-FR", viewport={"width": 412, "height": 823})
    await contexte.add_cookies(cookies)
    try:
        modification = f"{serveur_portail}/modifications/FINMSS009266M1"
        premiere, urls = await octets_transferes(contexte, modification)
        assert any("dsfr.min." in u for u in urls) and any("Marianne-Regular" in u for u in urls), urls
        print(f"première visite : {premiere} octets, {len(urls)} réponses")
        assert premiere <= PREMIERE_VISITE_MAX, f"{premiere} octets : {urls}"
        suivante, urls = await octets_transferes(contexte, modification)
        print(f"visite suivante : {suivante} octets, {len(urls)} réponses")
        assert suivante <= VISITE_SUIVANTE_MAX, f"{suivante} octets : {urls}"
        assert not any("/static/" in u for u in urls), urls
    finally:
        await contexte.close()
