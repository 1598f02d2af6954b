"""`modif-solde gestionnaire ajouter|retirer|lister`: the service's list of gestionnaires."""

from __future__ import annotations

from pathlib import Path

import pytest

from modif_solde.cli import main
from modif_solde.config import get_settings


@pytest.fixture
def base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODIF_SOLDE_DATABASE_URL", f"sqlite:///{tmp_path}/cli.db")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("base")
def test_add_list_and_remove_a_gestionnaire(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gestionnaire", "ajouter", "Gestionnaire@ASP.example"]) == 0
    assert main(["gestionnaire", "ajouter", "gestionnaire@asp.example"]) == 0
    assert main(["gestionnaire", "lister"]) == 0
    sortie = capsys.readouterr().out
    assert "était déjà gestionnaire" in sortie
    assert sortie.splitlines()[-1] == "gestionnaire@asp.example"

    assert main(["gestionnaire", "retirer", "gestionnaire@asp.example"]) == 0
    assert main(["gestionnaire", "lister"]) == 0
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == "gestionnaire@asp.example n'est plus gestionnaire ; aucune session du portail ouverte."
    )


@pytest.mark.usefixtures("base")
def test_an_invalid_address_is_refused_in_french(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gestionnaire", "ajouter", "pas-une-adresse"]) == 1
    assert "n'est pas une adresse électronique valide" in capsys.readouterr().err
