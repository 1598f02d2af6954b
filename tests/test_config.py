"""The settings' secure default, and the commands' refusal to start without a real secret."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from modif_solde import dev
from modif_solde.config import DEV_JWT_SECRET, Settings

PREFIXE = "MODIF_SOLDE_"


@pytest.fixture
def sans_env_modif_solde(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests run in development (tests/conftest.py): here only the defaults must count."""
    for nom in list(os.environ):
        if nom.startswith(PREFIXE):
            monkeypatch.delenv(nom)


def _env_sans_reglages() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(PREFIXE)}


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_la_production_est_le_reglage_par_defaut() -> None:
    with pytest.raises(ValidationError, match="MODIF_SOLDE_JWT_SECRET"):
        Settings()
    assert Settings(JWT_SECRET="x" * 32).ENVIRONNEMENT == "production"


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_la_cle_de_developpement_est_refusee_par_defaut() -> None:
    with pytest.raises(ValidationError, match="MODIF_SOLDE_JWT_SECRET"):
        Settings(JWT_SECRET=DEV_JWT_SECRET)


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_modif_solde_dev_choisit_le_developpement_explicitement() -> None:
    dev.choisir_developpement()
    assert os.environ["MODIF_SOLDE_ENVIRONNEMENT"] == "developpement"
    assert Settings().JWT_SECRET == DEV_JWT_SECRET


@pytest.mark.parametrize(
    "arguments",
    [["api", "--host", "127.0.0.1", "--port", "1"], ["token", "--role", "gestionnaire"], ["worker"]],
    ids=["api", "token", "worker"],
)
def test_sans_secret_la_commande_refuse_de_demarrer_en_francais(arguments: list[str]) -> None:
    """What the image does when started without MODIF_SOLDE_JWT_SECRET: a clear refusal."""
    resultat = subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "modif_solde.cli", *arguments],
        env=_env_sans_reglages(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert resultat.returncode == 2
    assert resultat.stdout == ""
    assert "Traceback" not in resultat.stderr
    assert "Réglages invalides" in resultat.stderr
    assert "MODIF_SOLDE_JWT_SECRET doit être défini (32 caractères au moins) en production" in resultat.stderr


def test_l_api_refuse_les_reglages_de_connexion_de_developpement_en_francais() -> None:
    """A real JWT secret is not enough: production refuses the portal's development session
    secret, and says so without a traceback."""
    resultat = subprocess.run(
        [sys.executable, "-m", "modif_solde.cli", "api", "--host", "127.0.0.1", "--port", "1"],
        env={**_env_sans_reglages(), "MODIF_SOLDE_JWT_SECRET": "j" * 40},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert resultat.returncode == 2
    assert "Traceback" not in resultat.stderr
    assert "Réglages invalides" in resultat.stderr
    assert "MODIF_SOLDE_SESSION_SECRET doit être défini" in resultat.stderr
