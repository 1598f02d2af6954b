"""The settings' secure default, and the commands' refusal to start without their real keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from modif_solde import dev
from modif_solde.config import (
    DEV_JWT_SECRET,
    ReglagesInvalides,
    Settings,
    decrire_erreurs,
    verifier_reglages,
)
from tests.processus import PAGES_LEGALES_PRODUCTION

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
    with pytest.raises(ReglagesInvalides, match=JWKS_REQUIS):
        verifier_reglages(settings, "api")
    with pytest.raises(ReglagesInvalides, match=JWKS_REQUIS):
        verifier_reglages(Settings(JWT_SECRET="x" * 64), "api")
    with pytest.raises(ReglagesInvalides) as exc:
        verifier_reglages(Settings(JWT_JWKS_URL="https://idp.example/jwks.json"), "api")
    assert not [ligne for ligne in exc.value.lignes if JWKS_REQUIS in ligne]
    # The worker checks no token.
    with pytest.raises(ReglagesInvalides) as exc:
        verifier_reglages(settings, "worker")
    assert not [ligne for ligne in exc.value.lignes if "JWT" in ligne]


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


def _production_api(tmp_path: Path) -> dict[str, str]:
    """What the API needs in production, except the settings under test."""
    jwks = tmp_path / "jwks.json"
    assert _modif_solde("cles", "generer", "--kid", "k1", "--jwks", str(jwks)).returncode == 0
    return {
        "MODIF_SOLDE_DATABASE_URL": f"sqlite:///{tmp_path}/base.db",
        "MODIF_SOLDE_JWT_JWKS_FICHIER": str(jwks),
        "MODIF_SOLDE_SESSION_SECRET": "s" * 40,
        "MODIF_SOLDE_OIDC_CLIENT_SECRET": "c" * 40,
        "MODIF_SOLDE_OIDC_DISCOVERY_URL": "https://idp.example/.well-known/openid-configuration",
        "MODIF_SOLDE_PORTAIL_URL": "https://portail.example",
        "MODIF_SOLDE_MAIL_FROM": "Portail <ne-pas-repondre@portail.example.fr>",
        "MODIF_SOLDE_GESTIONNAIRES_COURRIEL": "gestionnaires@asp.example.fr",
        **{f"MODIF_SOLDE_{nom}": valeur for nom, valeur in PAGES_LEGALES_PRODUCTION.items()},
        # Nothing listens there: a process that got past its checks fails at once.
        "MODIF_SOLDE_TEMPORAL_ADDRESS": "127.0.0.1:1",
    }


def _refus(resultat: subprocess.CompletedProcess[str]) -> list[str]:
    assert resultat.returncode == 2, resultat.stderr
    assert "Traceback" not in resultat.stderr
    sortie = resultat.stderr.strip().splitlines()
    # (Any warning a library prints at import comes before.)
    lignes = sortie[sortie.index("Réglages invalides :") + 1 :]
    assert all(ligne.startswith("  - MODIF_SOLDE_") for ligne in lignes), lignes
    return [ligne.removeprefix("  - ") for ligne in lignes]


@pytest.mark.parametrize(
    ("reglages", "nommes"),
    [
        ({"MODIF_SOLDE_PORTAIL_URL": "http://portail.example"}, ["PORTAIL_URL"]),
        # Every refused setting at once, the API's own checks and the common ones alike.
        (
            {"MODIF_SOLDE_PORTAIL_URL": "http://127.0.0.1:8000", "MODIF_SOLDE_SESSION_SECRET": "court"},
            ["SESSION_SECRET", "PORTAIL_URL"],
        ),
    ],
    ids=["http", "deux"],
)
def test_l_api_refuse_les_reglages_de_substitution_en_nommant_chacun(
    tmp_path: Path, reglages: dict[str, str], nommes: list[str]
) -> None:
    env = {**_production_api(tmp_path), **reglages}
    lignes = _refus(_modif_solde("api", "--host", "127.0.0.1", "--port", "1", env=env))
    assert [ligne.split(" ", 1)[0].removeprefix("MODIF_SOLDE_") for ligne in lignes] == nommes


def test_le_worker_refuse_les_adresses_de_substitution_en_nommant_chacune(tmp_path: Path) -> None:
    env = _production_api(tmp_path)
    for nom in ("MODIF_SOLDE_MAIL_FROM", "MODIF_SOLDE_GESTIONNAIRES_COURRIEL"):
        del env[nom]  # their defaults: addresses under .invalid
    env["MODIF_SOLDE_PORTAIL_URL"] = "http://portail.example"

    lignes = _refus(_modif_solde("worker", env=env))

    assert [ligne.split(" ", 1)[0] for ligne in lignes] == [
        "MODIF_SOLDE_PORTAIL_URL",
        "MODIF_SOLDE_MAIL_FROM",
        "MODIF_SOLDE_GESTIONNAIRES_COURRIEL",
    ]
    assert "https://" in lignes[0] and "modif-solde.invalid" in lignes[1]


@pytest.mark.usefixtures("sans_env_modif_solde")
@pytest.mark.parametrize(
    "adresse",
    [
        "ne-pas-repondre@modif-solde.invalid",
        "Portail <contact@portail.test>",
        "x@example.com",
        "x@mail.example.org",
        "x@localhost",
        "pas une adresse",
    ],
)
def test_une_adresse_de_substitution_est_refusee_hors_developpement(adresse: str) -> None:
    settings = Settings(
        JWT_JWKS_URL="https://idp.example/jwks.json", PORTAIL_URL="https://portail.example", MAIL_FROM=adresse
    )
    with pytest.raises(ReglagesInvalides) as exc:
        verifier_reglages(settings, "worker")
    assert any(ligne.startswith("MODIF_SOLDE_MAIL_FROM : ") for ligne in exc.value.lignes)
    # In development the demo's own addresses are fine.
    verifier_reglages(settings.model_copy(update={"ENVIRONNEMENT": "developpement"}), "worker")


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_les_refus_du_modele_sont_tous_nommes_a_la_fois() -> None:
    with pytest.raises(ValidationError) as exc:
        Settings(STORAGE_URL="s3://documents", METRIQUES_PORT=9464)
    lignes = decrire_erreurs(exc.value)
    assert [ligne.split(" ", 1)[0] for ligne in lignes] == [
        "MODIF_SOLDE_S3_ACCESS_KEY_ID",
        "MODIF_SOLDE_METRIQUES_JETON",
    ]


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_un_secret_se_lit_dans_le_fichier_que_nomme_sa_variable_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Docker secrets and Kubernetes Secret volumes: the value in a file, one line break dropped."""
    fichier = tmp_path / "session"
    fichier.write_text("s" * 40 + "\n", encoding="utf-8")
    monkeypatch.setenv("MODIF_SOLDE_SESSION_SECRET_FILE", str(fichier))
    jeton = tmp_path / "jeton"
    jeton.write_text("j" * 32, encoding="utf-8")
    monkeypatch.setenv("MODIF_SOLDE_METRIQUES_JETON_FILE", str(jeton))
    settings = Settings()
    assert settings.SESSION_SECRET == "s" * 40
    # Validators apply to a value from a file as to any other.
    assert settings.METRIQUES_JETON == "j" * 32
    jeton.write_text("court", encoding="utf-8")
    with pytest.raises(ValidationError, match="32 caractères"):
        Settings()


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_une_variable_et_son_fichier_ensemble_sont_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fichier = tmp_path / "session"
    fichier.write_text("s" * 40, encoding="utf-8")
    monkeypatch.setenv("MODIF_SOLDE_SESSION_SECRET_FILE", str(fichier))
    monkeypatch.setenv("MODIF_SOLDE_SESSION_SECRET", "t" * 40)
    with pytest.raises(
        ReglagesInvalides, match="MODIF_SOLDE_SESSION_SECRET et MODIF_SOLDE_SESSION_SECRET_FILE"
    ):
        Settings()


def test_la_commande_lit_ses_reglages_dans_des_fichiers(tmp_path: Path) -> None:
    """The database URL (with its password) from a file, as the Kubernetes manifests mount it."""
    url = tmp_path / "database-url"
    url.write_text(f"sqlite:///{tmp_path}/base.db\n", encoding="utf-8")
    resultat = _modif_solde("migrate", env={"MODIF_SOLDE_DATABASE_URL_FILE": str(url)})
    assert resultat.returncode == 0, resultat.stderr
    assert (tmp_path / "base.db").exists()


def test_un_fichier_de_secret_illisible_arrete_la_commande_en_francais(tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    resultat = _modif_solde("migrate", env={"MODIF_SOLDE_DATABASE_URL_FILE": str(absent)})
    assert resultat.returncode == 2
    assert "Traceback" not in resultat.stderr
    assert "Réglages invalides" in resultat.stderr
    assert f"MODIF_SOLDE_DATABASE_URL_FILE : impossible de lire {absent}" in resultat.stderr


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
    with pytest.raises(
        ValidationError, match="TEMPORAL_RETENTION ne peut dépasser MODIF_SOLDE_DUREE_CONSERVATION"
    ):
        Settings(DUREE_CONSERVATION="P30D", TEMPORAL_RETENTION="P60D")
    # …and kept at least as long as a cycle lasts.
    with pytest.raises(ValidationError, match="TEMPORAL_RETENTION doit couvrir au moins un cycle"):
        Settings(TEMPORAL_RETENTION="P10D")
    assert Settings(MIGRATION_DATABASE_URL="postgres://schema@db/modif").MIGRATION_DATABASE_URL == (
        "postgresql+asyncpg://schema@db/modif"
    )
