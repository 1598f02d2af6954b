"""The W3C Nu HTML Checker (npm vnu-jar, on the machine's Java) finds no error in the HTML the
server sends for any page and state of both roles (the tour of tests/pages/parcours.py)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from modif_solde.db import SessionFactory
from modif_solde.models.tables import Demande
from tests.pages.parcours import Parcours, parcourir
from tests.workflows.conftest import ServeurSmtp

VNU = Path(__file__).resolve().parents[2] / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


def erreurs_vnu(pages: dict[str, str], dossier: Path) -> list[str]:
    """Every page in one run of the checker (a JVM: started once), its errors as « page : message »."""
    java = shutil.which("java")
    assert java, "Java est nécessaire au Nu HTML Checker (apt-get install default-jre-headless)"
    assert VNU.is_file(), f"{VNU} manque : `npm ci` installe vnu-jar (devDependencies de package.json)"
    fichiers: dict[str, str] = {}
    for i, (nom, html) in enumerate(pages.items()):
        fichier = dossier / f"{i:02d}-{re.sub(r'[^a-z0-9]+', '-', nom.lower()).strip('-')}.html"
        fichier.write_text(html, encoding="utf-8")
        fichiers[fichier.name] = nom
    sortie = subprocess.run(  # noqa: S603 (a fixed command on files this test wrote)
        [
            java,
            "-jar",
            str(VNU),
            "--format",
            "json",
            "--errors-only",
            *(str(dossier / f) for f in sorted(fichiers)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    messages = json.loads(sortie.stderr)["messages"]
    erreurs = []
    for m in messages:
        url = m.get("url", "")
        page = fichiers.get(url.rsplit("/", 1)[-1], url or "(sans fichier)")
        erreurs.append(
            f"{page} (ligne {m.get('lastLine', '?')}) : {m['message']} — {m.get('extract', '').strip()}"
        )
    # Nothing found and no file read would also say "no error": the checker must have read them all.
    assert sortie.returncode in (0, 1), sortie.stderr
    return erreurs


def test_the_checker_reports_what_it_finds(tmp_path: Path) -> None:
    erreurs = erreurs_vnu(
        {"page fautive": "<!doctype html><html lang=fr><title>t</title><div aria-labelledby=x></div>"},
        tmp_path,
    )
    assert erreurs and erreurs[0].startswith("page fautive (ligne 1) : "), erreurs


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # the same HTML on either database
async def test_every_page_and_state_is_valid_html(
    serveur_portail: str,
    navigateur: Any,
    smtp: ServeurSmtp,
    factory: SessionFactory,
    demande: Demande,
    pdf: bytes,
    tmp_path: Path,
) -> None:
    parcours = Parcours()
    await parcourir(parcours, navigateur, serveur_portail, smtp, factory, pdf)
    erreurs = erreurs_vnu(parcours.pages, tmp_path)
    assert not erreurs, f"{len(erreurs)} erreur(s) du Nu HTML Checker :\n" + "\n".join(erreurs)
