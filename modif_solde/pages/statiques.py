"""The portal's static files under content-hashed names, cached for a year, precompressed.

Once per process, every file under `static/` gets a name carrying the hash of what is served
(`vendor/dsfr/core/core.min.css` → `vendor/dsfr/core/core.min.3f2a9c1b7d04.css`): the templates
ask `url_statique()` for it, and such a URL answers `Cache-Control: public, max-age=31536000,
immutable` (a new content is a new name). A stylesheet's `url(...)` to a font or an icon is
rewritten to that file's hashed name, so the font the page preloads is the one the stylesheet
asks for, cached as long. The plain name still answers (an old page, a bookmark), with a short
cache.

`python -m modif_solde.pages.statiques` (run by `make` and the image's build) writes, beside each
compressible file (CSS, JS, SVG, JSON, HTML), its served content compressed by gzip and brotli,
named after the hash (`core.min.3f2a9c1b7d04.css.br`): a stale one is never served, since its
name no longer matches. A hashed URL asked with `Accept-Encoding: br` or `gzip` gets that file
with `Content-Encoding` and `Vary: Accept-Encoding`; without it (a tree where `make` did not
compress), the identity body goes out and the compression middleware compresses it as it does
the pages (modif_solde/pages/compression.py).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

STATIQUES = Path(__file__).parent / "static"
PREFIXE = "/static/"
IMMUABLE = "public, max-age=31536000, immutable"
# A plain name: what an old page or a bookmark asks for; served, revalidated within the hour.
COURT = "public, max-age=3600"
COMPRESSIBLES = frozenset(
    {
        "text/css",
        "text/javascript",
        "application/javascript",
        "image/svg+xml",
        "application/json",
        "text/html",
    }
)
# Under this size a compressed body saves less than its headers cost.
TAILLE_MINIMALE = 1024
_SUFFIXES_COMPRESSES = (".gz", ".br")
_URL_CSS = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")
_LONGUEUR_HASH = 12


def type_media(nom: str) -> str:
    if nom.endswith(".js"):
        return "text/javascript"
    if nom.endswith(".woff2"):
        return "font/woff2"
    return mimetypes.guess_type(nom)[0] or "application/octet-stream"


def compressible(nom: str) -> bool:
    return type_media(nom) in COMPRESSIBLES


def _nom_hache(nom: str, empreinte: str) -> str:
    """`a/b.min.css` → `a/b.min.<hash>.css` (the hash before the last extension)."""
    base, point, extension = nom.rpartition(".")
    return f"{base}.{empreinte}.{extension}" if point else f"{nom}.{empreinte}"


@dataclass(frozen=True)
class Fichier:
    source: Path
    type: str
    # A stylesheet's body with its url(...) rewritten; None: the file is served as it is on disk.
    contenu: bytes | None


@dataclass(frozen=True)
class Manifeste:
    hache: dict[str, str]  # plain name → hashed name
    fichiers: dict[str, Fichier]  # hashed name → what it serves

    def url(self, nom: str) -> str:
        try:
            return PREFIXE + self.hache[nom]
        except KeyError:
            raise LookupError(f"fichier statique inconnu : {nom} (make l'a-t-il copié ?)") from None


def _sources(dossier: Path) -> list[str]:
    return sorted(
        p.relative_to(dossier).as_posix()
        for p in dossier.rglob("*")
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(_SUFFIXES_COMPRESSES)
    )


def _reecrire(nom: str, css: bytes, hache: dict[str, str]) -> bytes:
    """A stylesheet's relative url(...) pointing at a file of the folder → its hashed name."""
    dossier = posixpath.dirname(nom)

    def remplacer(m: re.Match[bytes]) -> bytes:
        cible = m.group(2).decode()
        chemin, sep, reste = cible.partition("#")
        chemin, sep2, requete = chemin.partition("?")
        if ":" in chemin or chemin.startswith("/"):
            return m.group(0)
        resolu = posixpath.normpath(posixpath.join(dossier, chemin))
        if resolu not in hache:
            return m.group(0)
        nouveau = posixpath.relpath(hache[resolu], dossier or ".")
        return b"url(" + (nouveau + sep2 + requete + sep + reste).encode() + b")"

    return re.sub(_URL_CSS.pattern.encode(), remplacer, css)


@lru_cache(maxsize=4)
def manifeste(dossier: Path = STATIQUES) -> Manifeste:
    """Hash every file, stylesheets last: theirs covers the names they refer to."""
    hache: dict[str, str] = {}
    fichiers: dict[str, Fichier] = {}
    noms = _sources(dossier)
    for nom in sorted(noms, key=lambda n: n.endswith(".css")):
        source = dossier / nom
        contenu = source.read_bytes()
        reecrit = _reecrire(nom, contenu, hache) if nom.endswith(".css") else None
        empreinte = hashlib.sha256(reecrit if reecrit is not None else contenu).hexdigest()[:_LONGUEUR_HASH]
        hache[nom] = _nom_hache(nom, empreinte)
        fichiers[hache[nom]] = Fichier(source=source, type=type_media(nom), contenu=reecrit)
    return Manifeste(hache=hache, fichiers=fichiers)


def url_statique(nom: str) -> str:
    """The URL a template writes for a static file: its hashed name (`vendor/htmx/htmx.min.js`)."""
    return manifeste().url(nom)


def _accepte(scope: Scope) -> set[str]:
    for cle, valeur in scope.get("headers", []):
        if cle == b"accept-encoding":
            return {v.split(";")[0].strip() for v in valeur.decode("latin-1").split(",")}
    return set()


def _lire(fichier: Fichier) -> bytes:
    return fichier.contenu if fichier.contenu is not None else fichier.source.read_bytes()


class Statiques:
    """The ASGI app mounted on /static."""

    def __init__(self, dossier: Path = STATIQUES) -> None:
        self.dossier = dossier
        self.manifeste = manifeste(dossier)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reponse = self.reponse(scope)
        await reponse(scope, receive, send)

    def reponse(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": "GET, HEAD"})
        nom = scope["path"].removeprefix(scope.get("root_path", "")).lstrip("/")
        nom = nom.removeprefix(PREFIXE.strip("/") + "/") if nom.startswith("static/") else nom
        fichier = self.manifeste.fichiers.get(nom)
        if fichier is not None:
            return self._hache(nom, fichier, scope)
        if nom in self.manifeste.hache:
            source = self.dossier / nom
            entetes = {"Cache-Control": COURT}
            if compressible(nom):
                entetes["Vary"] = "Accept-Encoding"
            return FileResponse(source, media_type=type_media(nom), headers=entetes)
        return PlainTextResponse("Not Found", status_code=404)

    def _hache(self, nom: str, fichier: Fichier, scope: Scope) -> Response:
        entetes = {"Cache-Control": IMMUABLE}
        if compressible(nom):
            entetes["Vary"] = "Accept-Encoding"
            accepte = _accepte(scope)
            for codage, suffixe in (("br", ".br"), ("gzip", ".gz")):
                compresse = fichier.source.parent / (posixpath.basename(nom) + suffixe)
                if codage in accepte and compresse.is_file():
                    entetes["Content-Encoding"] = codage
                    return FileResponse(compresse, media_type=fichier.type, headers=entetes)
        if fichier.contenu is not None:
            return Response(fichier.contenu, media_type=fichier.type, headers=entetes)
        return FileResponse(fichier.source, media_type=fichier.type, headers=entetes)


def compresser(dossier: Path = STATIQUES) -> list[Path]:
    """Write each compressible file's served content, gzip (level 9) and brotli (quality 11),
    beside it under its hashed name; remove the compressed files of contents no longer served."""
    import brotli

    m = manifeste(dossier)
    gardes: set[Path] = set()
    ecrits: list[Path] = []
    for hache, fichier in m.fichiers.items():
        if not compressible(hache):
            continue
        contenu = _lire(fichier)
        if len(contenu) < TAILLE_MINIMALE:
            continue
        base = fichier.source.parent / posixpath.basename(hache)
        for suffixe, compresseur in (
            (".gz", lambda c: gzip.compress(c, compresslevel=9, mtime=0)),
            (".br", lambda c: brotli.compress(c, quality=11)),
        ):
            cible = base.with_name(base.name + suffixe)
            gardes.add(cible)
            if not cible.exists():
                cible.write_bytes(compresseur(contenu))
                ecrits.append(cible)
    for ancien in dossier.rglob("*"):
        if ancien.name.endswith(_SUFFIXES_COMPRESSES) and ancien not in gardes:
            ancien.unlink()
    return ecrits


# The DSFR parts the pages use (its dist/ ships one stylesheet per part): the core (fonts,
# grid, spacing, typography, icons' base), the components the templates name, and the two icon
# families they use (system, user). A template using another component adds it here; the test
# tests/pages/test_statiques.py fails on a class the full DSFR defines and this list misses.
PARTIES_DSFR = (
    "core/core",
    *(
        f"component/{c}/{c}"
        for c in (
            "accordion",
            "alert",
            "badge",
            "breadcrumb",
            "button",
            "callout",
            "card",
            "checkbox",
            "footer",
            "form",
            "header",
            "input",
            "link",
            "logo",
            "modal",
            "navigation",
            "notice",
            "pagination",
            "select",
            "skiplink",
            "tab",
            "table",
            "upload",
        )
    ),
    "utility/icons/icons-system/icons-system",
    "utility/icons/icons-user/icons-user",
)
DSFR_PORTAIL = "vendor/dsfr/portail/dsfr.min.css"
# The script: the core and the components the pages drive (the whole module is 115 Kio, these
# 89): each `<part>.module.min.js` in a block of its own, so their top-level names stay apart in
# the one module; order kept (the core first, which the components register with).
DSFR_PORTAIL_SCRIPT = "vendor/dsfr/portail/dsfr.module.min.js"
PARTIES_DSFR_SCRIPT = (
    "core/core",
    *(f"component/{c}/{c}" for c in ("accordion", "button", "header", "modal", "navigation", "tab")),
)
DSFR_PORTAIL_IMPRESSION = "vendor/dsfr/portail/dsfr.print.min.css"
_VERS_RACINE = re.compile(rb"url\((?:\.\./)+(fonts|icons)/")
_LICENCE = re.compile(rb"/\*!.*?\*/", re.DOTALL)
_CARTE_SOURCE = re.compile(rb"^//# sourceMappingURL=.*$", re.MULTILINE)


def assembler_dsfr(dist: Path, dossier: Path = STATIQUES) -> list[Path]:
    """One stylesheet of the parts (`<part>.main.min.css`, what current browsers read) and one
    of their print rules, under vendor/dsfr/portail/: their url(...) lead to vendor/dsfr/fonts
    and vendor/dsfr/icons, copied beside. The licence header is kept once."""
    ecrits = []
    for sortie, variante in ((DSFR_PORTAIL, "main"), (DSFR_PORTAIL_IMPRESSION, "print")):
        morceaux: list[bytes] = []
        for partie in PARTIES_DSFR:
            fichier = dist / f"{partie}.{variante}.min.css"
            if variante == "print" and not fichier.exists():
                continue  # the icons have no print rules
            css = fichier.read_bytes()
            css = _VERS_RACINE.sub(rb"url(../\1/", css)
            morceaux.append(css if not morceaux else _LICENCE.sub(b"", css))
        cible = dossier / sortie
        cible.parent.mkdir(parents=True, exist_ok=True)
        cible.write_bytes(b"\n".join(morceaux) + b"\n")
        ecrits.append(cible)
    morceaux = []
    for partie in PARTIES_DSFR_SCRIPT:
        js = _CARTE_SOURCE.sub(b"", (dist / f"{partie}.module.min.js").read_bytes())
        morceaux.append(b"{\n" + (js if not morceaux else _LICENCE.sub(b"", js)) + b"\n}")
    cible = dossier / DSFR_PORTAIL_SCRIPT
    cible.write_bytes(b"\n".join(morceaux) + b"\n")
    ecrits.append(cible)
    return ecrits


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m modif_solde.pages.statiques",
        description="Assemble les parties du DSFR utilisées puis précompresse les fichiers statiques.",
    )
    parser.add_argument("--dsfr", type=Path, help="le dist/ du paquet npm @gouvfr/dsfr à assembler")
    parser.add_argument("--dossier", type=Path, default=STATIQUES)
    args = parser.parse_args()
    if args.dsfr:
        for chemin in assembler_dsfr(args.dsfr, args.dossier):
            print(f"{chemin} : {chemin.stat().st_size // 1024} Kio")
    faits = compresser(args.dossier)
    print(f"{len(faits)} fichiers statiques compressés")
