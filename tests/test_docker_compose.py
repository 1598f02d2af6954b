"""docker-compose.yml, Dockerfile and .dockerignore: checked as files, since no Docker engine runs the tests."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from modif_solde.config import ReglagesInvalides, Settings, verifier_reglages

RACINE = Path(__file__).resolve().parents[1]
COMPOSE = RACINE / "docker-compose.yml"
DOCKERFILE = RACINE / "Dockerfile"
DOCKERIGNORE = RACINE / ".dockerignore"
PREFIXE = "MODIF_SOLDE_"

SERVICES = {
    "postgresql",
    "temporal-admin-tools",
    "temporal",
    "temporal-create-namespace",
    "temporal-ui",
    "mailpit",
    "minio",
    "minio-init",
    "migrate",
    "api",
    "worker",
    "prometheus",
}
# What a compose user must set: nothing else is required, and these have no default.
VARIABLES_REQUISES = {
    "MODIF_SOLDE_JWT_JWKS_URL",
    "POSTGRES_PASSWORD",
    "MODIF_SOLDE_SESSION_SECRET",
    "MODIF_SOLDE_OIDC_DISCOVERY_URL",
    "MODIF_SOLDE_OIDC_CLIENT_ID",
    "MODIF_SOLDE_OIDC_CLIENT_SECRET",
    "MODIF_SOLDE_S3_ACCESS_KEY_ID",
    "MODIF_SOLDE_S3_SECRET_ACCESS_KEY",
    "MODIF_SOLDE_METRIQUES_JETON",
    "MODIF_SOLDE_PORTAIL_URL",
    "MODIF_SOLDE_MAIL_FROM",
    "MODIF_SOLDE_GESTIONNAIRES_COURRIEL",
}
VARIABLES_UTILISATEUR = {
    "MODIF_SOLDE_JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json",
    "POSTGRES_PASSWORD": "mot-de-passe-de-test",
    "MODIF_SOLDE_SESSION_SECRET": "un-secret-de-session-de-plus-de-32-caracteres",
    "MODIF_SOLDE_OIDC_DISCOVERY_URL": "https://fca.example/api/v2/.well-known/openid-configuration",
    "MODIF_SOLDE_OIDC_CLIENT_ID": "modif-solde",
    "MODIF_SOLDE_OIDC_CLIENT_SECRET": "un-secret-client-fourni-par-le-fournisseur",
    "MODIF_SOLDE_S3_ACCESS_KEY_ID": "modif-solde",
    "MODIF_SOLDE_S3_SECRET_ACCESS_KEY": "un-secret-de-stockage-de-test",
    "MODIF_SOLDE_METRIQUES_JETON": "un-jeton-de-metriques-de-plus-de-32-caracteres",
    "MODIF_SOLDE_PORTAIL_URL": "https://portail.sante.example.fr",
    "MODIF_SOLDE_MAIL_FROM": "Portail Ségur Numérique <ne-pas-repondre@portail.sante.example.fr>",
    "MODIF_SOLDE_GESTIONNAIRES_COURRIEL": "gestionnaires@asp.example.fr",
}
ATTRIBUTS_DE_RECHERCHE = {
    "DemandeNumero": "Keyword",
    "OperateurSiret": "Keyword",
    "ModificationStatut": "Keyword",
    "ExpireLe": "Datetime",
}
UI_VERSION_MIN = (2, 34, 4)

# Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}.
_INTERPOLATION = re.compile(
    r"\$(?:(?P<dollar>\$)|(?P<nu>[A-Za-z_]\w*)|\{(?P<nom>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


class VariableManquante(Exception):
    pass


def interpoler(valeur: Any, variables: Mapping[str, str]) -> Any:
    """Resolve the file as `docker compose config` would, with `variables` as the environment."""
    if isinstance(valeur, dict):
        return {cle: interpoler(v, variables) for cle, v in valeur.items()}
    if isinstance(valeur, list):
        return [interpoler(v, variables) for v in valeur]
    if not isinstance(valeur, str):
        return valeur

    def remplacer(m: re.Match[str]) -> str:
        if m["dollar"]:
            return "$"
        nom = m["nu"] or m["nom"]
        op, arg = m["op"], m["arg"]
        present = nom in variables
        vide = not variables.get(nom)
        manque = vide if op and op.startswith(":") else not present
        if op in (":-", "-") and manque:
            return str(arg)
        if op in (":?", "?") and manque:
            raise VariableManquante(f"{nom}: {arg}")
        return variables.get(nom, "")

    return _INTERPOLATION.sub(remplacer, valeur)


def _environnement(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(ligne.split("=", 1) for ligne in env)
    return {cle: str(v) for cle, v in env.items()}


def _environnements(noeud: Any) -> Iterator[dict[str, str]]:
    """Every `environment` block of the file, x- extensions included."""
    if isinstance(noeud, dict):
        for cle, v in noeud.items():
            if cle == "environment" and isinstance(v, dict | list):
                yield _environnement(noeud)
            else:
                yield from _environnements(v)
    elif isinstance(noeud, list):
        for v in noeud:
            yield from _environnements(v)


def _commande(service: Mapping[str, Any]) -> str:
    """Entrypoint and command as one text, whichever form (string or list) each is written in."""
    parties = [service.get("entrypoint") or [], service.get("command") or []]
    return "\n".join(p if isinstance(p, str) else "\n".join(p) for p in parties)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def resolu(compose: dict[str, Any]) -> dict[str, Any]:
    return interpoler(compose, VARIABLES_UTILISATEUR)


@pytest.fixture
def sans_env_modif_solde(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings also reads the process environment: only what the test passes must count."""
    for nom in list(os.environ):
        if nom.startswith(PREFIXE):
            monkeypatch.delenv(nom)


def test_every_service_of_the_stack_is_there(services: dict[str, Any]) -> None:
    assert set(services) >= SERVICES


def test_no_service_uses_the_deprecated_auto_setup_image(services: dict[str, Any]) -> None:
    images = {nom: s.get("image", "") for nom, s in services.items()}
    assert not [nom for nom, image in images.items() if "temporalio/auto-setup" in image]
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-admin-tools"].startswith("temporalio/admin-tools:")
    assert images["temporal-create-namespace"].startswith("temporalio/admin-tools:")


def test_every_image_is_pinned(services: dict[str, Any]) -> None:
    for nom, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), nom


def test_temporal_server_and_admin_tools_share_one_version(services: dict[str, Any]) -> None:
    versions = {services[nom]["image"].split(":", 1)[1] for nom in ("temporal", "temporal-admin-tools")}
    versions.add(services["temporal-create-namespace"]["image"].split(":", 1)[1])
    assert len(versions) == 1


def test_ui_image_is_at_least_2_34_4(services: dict[str, Any]) -> None:
    image = services["temporal-ui"]["image"]
    assert image.startswith("temporalio/ui:")
    version = tuple(int(n) for n in image.split(":", 1)[1].removeprefix("v").split("."))
    assert version >= UI_VERSION_MIN
    assert any(str(p).endswith("8233:8080") for p in services["temporal-ui"]["ports"])


def test_every_modif_solde_variable_is_a_setting(compose: dict[str, Any]) -> None:
    noms = {nom for env in _environnements(compose) for nom in env if nom.startswith(PREFIXE)}
    noms |= set(re.findall(r"\b(MODIF_SOLDE_\w+)=", DOCKERFILE.read_text(encoding="utf-8")))
    assert noms
    inconnus = {nom for nom in noms if nom.removeprefix(PREFIXE) not in Settings.model_fields}
    assert not inconnus


def test_the_jwks_and_the_password_have_no_default(compose: dict[str, Any]) -> None:
    requises = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text(encoding="utf-8")))
    assert requises == VARIABLES_REQUISES
    for env in _environnements(compose):
        # Production tokens are checked against the JWKS; the HS256 secret is for development.
        assert "MODIF_SOLDE_JWT_SECRET" not in env
        if "MODIF_SOLDE_JWT_JWKS_URL" in env:
            assert env["MODIF_SOLDE_JWT_JWKS_URL"].startswith("${MODIF_SOLDE_JWT_JWKS_URL:?")
    for nom in VARIABLES_REQUISES:
        with pytest.raises(VariableManquante, match=nom):
            interpoler(compose, {k: v for k, v in VARIABLES_UTILISATEUR.items() if k != nom})


def test_the_app_services_share_one_environment(services: dict[str, Any]) -> None:
    envs = [_environnement(services[nom]) for nom in ("migrate", "api", "worker")]
    assert envs[0] == envs[1] == envs[2]
    assert envs[0]["MODIF_SOLDE_ENVIRONNEMENT"] == "production"


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_production_settings_validate_with_what_a_user_sets(resolu: dict[str, Any]) -> None:
    env = _environnement(resolu["services"]["api"])
    reglages = Settings(**{nom.removeprefix(PREFIXE): v for nom, v in env.items()})

    assert reglages.ENVIRONNEMENT == "production"
    assert reglages.DATABASE_URL.startswith("postgresql+asyncpg://")
    assert reglages.TEMPORAL_ADDRESS == "temporal:7233"
    assert reglages.SMTP_URL == "smtp://mailpit:1025"
    assert reglages.JWT_JWKS_URL == VARIABLES_UTILISATEUR["MODIF_SOLDE_JWT_JWKS_URL"]
    assert reglages.STORAGE_URL == "s3://modif-solde/pieces"
    assert reglages.S3_ENDPOINT_URL == "http://minio:9000"
    assert reglages.S3_ACCESS_KEY_ID == VARIABLES_UTILISATEUR["MODIF_SOLDE_S3_ACCESS_KEY_ID"]
    assert reglages.S3_SECRET_ACCESS_KEY == VARIABLES_UTILISATEUR["MODIF_SOLDE_S3_SECRET_ACCESS_KEY"]
    # The tokens, the login, the portal's address and the e-mail addresses pass each process's
    # production check.
    verifier_reglages(reglages, "api")
    verifier_reglages(reglages, "worker")
    assert reglages.OIDC_DISCOVERY_URL == VARIABLES_UTILISATEUR["MODIF_SOLDE_OIDC_DISCOVERY_URL"]


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_production_settings_refuse_a_missing_jwks(resolu: dict[str, Any]) -> None:
    env = _environnement(resolu["services"]["api"])
    sans_jwks = {nom.removeprefix(PREFIXE): v for nom, v in env.items() if nom != "MODIF_SOLDE_JWT_JWKS_URL"}
    with pytest.raises(ReglagesInvalides, match="MODIF_SOLDE_JWT_JWKS_URL ou MODIF_SOLDE_JWT_JWKS_FICHIER"):
        verifier_reglages(Settings(**sans_jwks), "api")
    with pytest.raises(ValidationError, match="https://"):
        Settings(**{**sans_jwks, "JWT_JWKS_URL": "http://idp.example/jwks.json"})


def test_docker_waits_for_the_api_s_graceful_shutdown(services: dict[str, Any]) -> None:
    """Docker's SIGKILL must not come before the readiness delay and the grace are over."""
    reglages = Settings.model_fields
    attente = reglages["ARRET_DELAI"].default + reglages["ARRET_GRACE"].default
    grace = services["api"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > attente.total_seconds()


def test_the_database_credentials_agree_everywhere(resolu: dict[str, Any]) -> None:
    services = resolu["services"]
    postgres = _environnement(services["postgresql"])
    url = make_url(_environnement(services["api"])["MODIF_SOLDE_DATABASE_URL"])
    temporal = _environnement(services["temporal"])
    outils = _environnement(services["temporal-admin-tools"])

    assert (url.host, url.port, url.database) == ("postgresql", 5432, postgres["POSTGRES_DB"])
    assert url.username == postgres["POSTGRES_USER"] == temporal["POSTGRES_USER"] == outils["POSTGRES_USER"]
    assert url.password == VARIABLES_UTILISATEUR["POSTGRES_PASSWORD"]
    assert postgres["POSTGRES_PASSWORD"] == temporal["POSTGRES_PWD"] == outils["SQL_PASSWORD"] == url.password


def test_admin_tools_set_up_both_temporal_databases(services: dict[str, Any]) -> None:
    service = services["temporal-admin-tools"]
    script = _commande(service)
    assert "postgres12" in script
    assert set(re.findall(r"--db (\w+) create", script)) == {"temporal", "temporal_visibility"}
    assert "/temporal/versioned" in script and "/visibility/versioned" in script
    assert "/etc/temporal/schema/postgresql/v12" in script
    assert service["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert _environnement(services["temporal"])["DB"] == "postgres12"
    assert services["temporal"]["depends_on"]["temporal-admin-tools"]["condition"] == (
        "service_completed_successfully"
    )


def test_search_attributes_are_exactly_those_of_the_contract(services: dict[str, Any]) -> None:
    script = _commande(services["temporal-create-namespace"])
    creation = script[script.index("search-attribute create") :]
    creation = creation[: creation.index("\n", creation.rindex("--type"))]
    paires = re.findall(r"--name\s+(\S+)\s+--type\s+(\S+)", creation)
    assert dict(paires) == ATTRIBUTS_DE_RECHERCHE
    assert len(paires) == len(ATTRIBUTS_DE_RECHERCHE)
    assert "--address temporal:7233" in creation
    assert "--namespace default" in creation


def test_api_and_worker_start_after_migrations_and_search_attributes(services: dict[str, Any]) -> None:
    for nom in ("api", "worker"):
        dependances = services[nom]["depends_on"]
        for prealable in ("migrate", "temporal-create-namespace"):
            assert dependances[prealable]["condition"] == "service_completed_successfully", (nom, prealable)
    assert services["migrate"]["command"] == ["migrate"]
    assert services["api"]["command"] == ["api"]
    assert services["worker"]["command"] == ["worker"]


@pytest.mark.usefixtures("sans_env_modif_solde")
def test_production_settings_refuse_missing_object_store_keys(resolu: dict[str, Any]) -> None:
    env = _environnement(resolu["services"]["api"])
    for manquante in ("MODIF_SOLDE_S3_ACCESS_KEY_ID", "MODIF_SOLDE_S3_SECRET_ACCESS_KEY"):
        sans_cle = {nom.removeprefix(PREFIXE): v for nom, v in env.items() if nom != manquante}
        with pytest.raises(ValidationError, match=manquante):
            Settings(**sans_cle)


def test_api_and_worker_keep_the_documents_in_the_stack_object_store(resolu: dict[str, Any]) -> None:
    services = resolu["services"]
    app = _environnement(services["api"])
    minio = _environnement(services["minio"])
    init = services["minio-init"]
    bucket = urlsplit(app["MODIF_SOLDE_STORAGE_URL"]).netloc

    assert urlsplit(app["MODIF_SOLDE_S3_ENDPOINT_URL"]).hostname == "minio"
    assert app["MODIF_SOLDE_S3_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert app["MODIF_SOLDE_S3_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    assert _environnement(init) == minio
    assert f"mc mb --ignore-existing stockage/{bucket}" in _commande(init)
    assert "http://minio:9000" in _commande(init)
    for nom in ("api", "worker"):
        assert services[nom]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert services["minio"]["volumes"][0].split(":")[0] in resolu["volumes"]


def test_only_the_api_keeps_the_image_healthcheck(services: dict[str, Any]) -> None:
    assert "healthcheck" not in services["api"]
    assert services["worker"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}


def test_dockerfile_runs_the_console_command_as_a_non_root_user() -> None:
    texte = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim\b", texte, re.MULTILINE)
    utilisateurs = re.findall(r"^USER\s+(\S+)", texte, re.MULTILINE)
    assert utilisateurs and utilisateurs[-1] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["modif-solde"\]$', texte, re.MULTILINE)
    assert re.search(r'^CMD \["api"\]$', texte, re.MULTILINE)
    assert re.search(r"^EXPOSE 8000$", texte, re.MULTILINE)
    assert "/healthz" in texte


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    lignes = {ligne.strip() for ligne in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert {".venv", ".data", ".git", "tests", "bench/results", ".env"} <= lignes


def test_the_image_runs_in_production_by_default() -> None:
    """The image sets production itself: run without compose, it still refuses the development key."""
    assert re.search(r"\bMODIF_SOLDE_ENVIRONNEMENT=production\b", DOCKERFILE.read_text(encoding="utf-8"))


def test_prometheus_scrapes_the_api_and_the_worker_with_the_metrics_token(compose: dict[str, Any]) -> None:
    services = compose["services"]
    prometheus = services["prometheus"]
    montages = {m.split(":")[0]: m.split(":")[1] for m in prometheus["volumes"]}
    dossier = RACINE / "deploiement" / "prometheus"
    config_hote = next(h for h, c in montages.items() if c == "/etc/prometheus/prometheus.yml")
    assert (RACINE / config_hote).resolve() == dossier / "prometheus.yml"
    config = yaml.safe_load((dossier / "prometheus.yml").read_text(encoding="utf-8"))
    # Each rule file it names is mounted beside it.
    for fichier in config["rule_files"]:
        assert montages[f"./deploiement/prometheus/{fichier}"] == f"/etc/prometheus/{fichier}"
    assert f"--config.file={montages[config_hote]}" in prometheus["command"]

    # The token is the secret made of the variable the API and the worker read.
    assert compose["secrets"]["jeton-metriques"] == {"environment": "MODIF_SOLDE_METRIQUES_JETON"}
    assert prometheus["secrets"] == ["jeton-metriques"]
    env = _environnement(services["worker"])
    assert env["MODIF_SOLDE_METRIQUES_JETON"].startswith("${MODIF_SOLDE_METRIQUES_JETON:?")
    cibles = {}
    for job in config["scrape_configs"]:
        assert job["authorization"] == {"credentials_file": "/run/secrets/jeton-metriques"}
        (dns,) = job["dns_sd_configs"]
        cibles[job["job_name"]] = (dns["names"], dns["port"])
    assert cibles == {
        "modif-solde-api": (["api"], 8000),
        "modif-solde-worker": (["worker"], int(env["MODIF_SOLDE_METRIQUES_PORT"])),
    }
    # The worker's metrics listen beyond its loopback (Prometheus is another container); its port
    # is not published, and Prometheus' own UI is for this host only.
    assert env["MODIF_SOLDE_METRIQUES_ADRESSE"] == "0.0.0.0"  # noqa: S104
    assert "ports" not in services["worker"]
    assert all(str(p).startswith("127.0.0.1:") for p in prometheus["ports"])
    assert "prometheus-data" in compose["volumes"]
