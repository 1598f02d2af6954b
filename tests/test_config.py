"""The settings' secure default, and the commands' refusal to start without their real keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from modif_solde import dev
from modif_solde.config import DEV_JWT_SECRET, Settings, verifier_reglages_jetons

PREFIXE = "MODIF_SOLDE_"


@pytest.fixture
def sans_env_modif_solde(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests run in development (tests/conftest.py): here only the defaults must count."""
    for nom in list(os.environ):
        if nom.startswith(PREFIXE):
            monkeypatch.delenv(nom)


def _env_sans_reglages() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(PREFIXE)}


JWKS_REQUIS = "MODIF_SOLDE_JWT_JWKS_URL ou MODIF_SOLDE_JWT_JWKS_FICHIER doit être défini en production"


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_la_production_est_le_reglage_par_defaut() -> None:
    settings = Settings()
    assert settings.ENVIRONNEMENT == "production"
    # The API's tokens: production needs the JWKS, a shared secret does not replace it.
    with pytest.raises(ValueError, match=JWKS_REQUIS):
        verifier_reglages_jetons(settings)
    with pytest.raises(ValueError, match=JWKS_REQUIS):
        verifier_reglages_jetons(Settings(JWT_SECRET="x" * 64))
    verifier_reglages_jetons(Settings(JWT_JWKS_URL="https://idp.example/jwks.json"))


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_les_reglages_du_jwks_sont_verifies_en_francais() -> None:
    with pytest.raises(ValidationError, match="l'un ou l'autre, pas les deux"):
        Settings(JWT_JWKS_URL="https://idp.example/jwks.json", JWT_JWKS_FICHIER=Path("jwks.json"))
    with pytest.raises(ValidationError, match="MODIF_SOLDE_JWT_JWKS_URL doit être une URL https://"):
        Settings(JWT_JWKS_URL="http://idp.example/jwks.json")
    with pytest.raises(ValidationError, match="MODIF_SOLDE_JWT_JWKS_URL doit être une URL https://"):
        Settings(JWT_JWKS_URL="file:///etc/passwd")
    assert Settings(ENVIRONNEMENT="developpement", JWT_JWKS_URL="http://127.0.0.1:9400/jwks").JWT_JWKS_URL


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_modif_solde_dev_choisit_le_developpement_explicitement() -> None:
    dev.choisir_developpement()
    assert os.environ["MODIF_SOLDE_ENVIRONNEMENT"] == "developpement"
    assert Settings().JWT_SECRET == DEV_JWT_SECRET


def _modif_solde(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "modif_solde.cli", *arguments],
        env={**_env_sans_reglages(), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["api", "--host", "127.0.0.1", "--port", "1"], JWKS_REQUIS),
        (["token", "--role", "gestionnaire"], "en production, signez avec une clé privée du JWKS"),
        (["worker"], "MODIF_SOLDE_DUREE_CONSERVATION doit être défini en production"),
        (["purger"], "MODIF_SOLDE_DUREE_CONSERVATION doit être défini en production"),
        (["temporal", "preparer"], "MODIF_SOLDE_DUREE_CONSERVATION doit être défini en production"),
    ],
    ids=["api", "token", "worker", "purger", "temporal-preparer"],
)
def test_sans_cles_la_commande_refuse_de_demarrer_en_francais(arguments: list[str], message: str) -> None:
    """What the image does when started without its keys: a clear refusal."""
    resultat = _modif_solde(*arguments, env={"MODIF_SOLDE_JWT_SECRET": "j" * 40})
    assert resultat.returncode == 2
    assert resultat.stdout == ""
    assert "Traceback" not in resultat.stderr
    assert message in resultat.stderr


def test_les_commandes_sans_jeton_n_exigent_aucune_cle_en_production(tmp_path: Path) -> None:
    """The worker, migrate and verifier neither issue nor check tokens: no secret asked of them."""
    resultat = _modif_solde("migrate", env={"MODIF_SOLDE_DATABASE_URL": f"sqlite:///{tmp_path}/base.db"})
    assert resultat.returncode == 0, resultat.stderr
    assert resultat.stdout.strip() == "Base de données à jour."


def test_l_api_refuse_les_reglages_de_connexion_de_developpement_en_francais(tmp_path: Path) -> None:
    """A JWKS is not enough: production refuses the portal's development session
    secret, and says so without a traceback."""
    jwks = tmp_path / "jwks.json"
    assert _modif_solde("cles", "generer", "--kid", "k1", "--jwks", str(jwks)).returncode == 0
    resultat = _modif_solde(
        "api", "--host", "127.0.0.1", "--port", "1", env={"MODIF_SOLDE_JWT_JWKS_FICHIER": str(jwks)}
    )
    assert resultat.returncode == 2
    assert "Traceback" not in resultat.stderr
    assert "Réglages invalides" in resultat.stderr
    assert "MODIF_SOLDE_SESSION_SECRET doit être défini" in resultat.stderr


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_la_duree_de_conservation_et_la_retention_temporal_se_tiennent() -> None:
    from datetime import timedelta

    from modif_solde.config import verifier_reglages_conservation

    # Required where a purge runs (worker, purger, temporal preparer), outside development only.
    with pytest.raises(ValueError, match="MODIF_SOLDE_DUREE_CONSERVATION doit être défini en production"):
        verifier_reglages_conservation(Settings())
    verifier_reglages_conservation(Settings(ENVIRONNEMENT="developpement"))
    assert Settings(DUREE_CONSERVATION="P5Y").DUREE_CONSERVATION == timedelta(days=5 * 365)
    with pytest.raises(ValidationError, match="au moins un jour en production"):
        Settings(DUREE_CONSERVATION="PT30S")
    with pytest.raises(ValidationError, match="doit être une durée positive"):
        Settings(ENVIRONNEMENT="developpement", DUREE_CONSERVATION="-P1D")
    # Temporal's histories hold the same personal data: never kept longer than the database's.
    with pytest.raises(ValidationError, match="TEMPORAL_RETENTION ne peut dépasser MODIF_SOLDE_DUREE_CONSERVATION"):
        Settings(DUREE_CONSERVATION="P30D", TEMPORAL_RETENTION="P60D")
    # …and kept at least as long as a cycle lasts.
    with pytest.raises(ValidationError, match="TEMPORAL_RETENTION doit couvrir au moins un cycle"):
        Settings(TEMPORAL_RETENTION="P10D")
    assert Settings(MIGRATION_DATABASE_URL="postgres://schema@db/modif").MIGRATION_DATABASE_URL == (
        "postgresql+asyncpg://schema@db/modif"
    )
