"""The README and the docs it links to: every relative link and anchor leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

RACINE = Path(__file__).resolve().parents[1]
DOCUMENTS = [RACINE / "README.md", RACINE / "bench" / "README.md", *sorted((RACINE / "docs").glob("*.md"))]
_LIEN = re.compile(r"\]\(([^)\s]+)\)")


def ancres_github(texte: str) -> set[str]:
    """The anchors GitHub (and GitLab) give the headings of a Markdown file (outside code blocks)."""
    sans_code = re.sub(r"^```.*?^```", "", texte, flags=re.MULTILINE | re.DOTALL)
    return {
        re.sub(r"[^\w\- ]", "", titre.strip().lower()).replace(" ", "-")
        for titre in re.findall(r"^#{1,6} (.+)$", sans_code, re.MULTILINE)
    }


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(RACINE)))
def test_chaque_lien_relatif_mene_a_un_fichier_et_a_une_section(document: Path) -> None:
    texte = document.read_text(encoding="utf-8")
    for cible in _LIEN.findall(texte):
        if re.match(r"^[a-z]+:", cible):  # http(s)://, mailto: …
            continue
        chemin, _, ancre = cible.partition("#")
        fichier = (document.parent / chemin).resolve() if chemin else document
        assert fichier.exists(), f"{document.name} : {cible} ne mène à aucun fichier"
        if ancre:
            assert ancre in ancres_github(fichier.read_text(encoding="utf-8")), (
                f"{document.name} : la section #{ancre} n'existe pas dans {fichier.name}"
            )


def test_le_readme_se_lit_en_dix_minutes() -> None:
    """What a newcomer reads first stays short; the rest lives in docs/."""
    assert len((RACINE / "README.md").read_text(encoding="utf-8").splitlines()) <= 350
