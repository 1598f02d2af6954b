"""The service's settings: one object, read from the environment (prefix MODIF_SOLDE_)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(".data")
DEV_JWT_SECRET = "dev-secret-modif-solde-ne-pas-utiliser-en-production"  # noqa: S105
DEV_SESSION_SECRET = "dev-session-modif-solde-ne-pas-utiliser-en-production"  # noqa: S105
DEV_OIDC_CLIENT_SECRET = "dev-client-secret-modif-solde"  # noqa: S105


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODIF_SOLDE_", extra="ignore")

    # Production unless told otherwise: `modif-solde dev` (make run) and the tests say
    # "developpement" explicitly; anything else must bring its own secret.
    ENVIRONNEMENT: Literal["developpement", "production"] = "production"
    DATABASE_URL: str = f"sqlite+aiosqlite:///{DATA_DIR}/modif-solde.db"
    TEMPORAL_ADDRESS: str = "127.0.0.1:7233"
    TEMPORAL_NAMESPACE: str = "default"
    # The Temporal Web UI, for the back-office's link to a modification's workflow.
    TEMPORAL_UI_URL: str = "http://127.0.0.1:8233"
    TASK_QUEUE: str = "modification-solde"
    SMTP_URL: str = "smtp://127.0.0.1:1025"
    MAIL_FROM: str = "Portail Ségur Numérique <ne-pas-repondre@modif-solde.invalid>"
    GESTIONNAIRES_COURRIEL: str = "gestionnaires@modif-solde.invalid"
    PORTAIL_URL: str = "http://127.0.0.1:8000"
    RELANCE_APRES: timedelta = timedelta(days=10)
    EXPIRATION_APRES: timedelta = timedelta(days=20)
    JWT_SECRET: str = DEV_JWT_SECRET
    JWT_DUREE: timedelta = timedelta(hours=12)
    STORAGE_DIR: Path = DATA_DIR / "pieces"
    # Where the documents live: empty or `file:///chemin` → a local folder (STORAGE_DIR when
    # empty); `s3://bucket/prefixe` → an S3-compatible object store (production's choice).
    STORAGE_URL: str = ""
    # The object store: its endpoint (empty → AWS), region and keys; the part size of
    # multipart uploads (S3's minimum is 5 MiB; at most one part is held in memory per upload).
    S3_ENDPOINT_URL: str = ""
    S3_REGION: str = "us-east-1"
    S3_ACCESS_KEY_ID: str = ""
    S3_SECRET_ACCESS_KEY: str = ""
    S3_TAILLE_PART: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    # A PDF of 10 MiB covers scanned supporting documents; larger is refused (413).
    PIECE_TAILLE_MAX: int = Field(default=10 * 1024 * 1024, gt=0)
    # Documents one modification may add: bounds the storage a single draft can take.
    PIECES_MAX_PAR_MODIFICATION: int = Field(default=20, gt=0)
    # How long the API waits for the worker to answer an update before a 503.
    DELAI_REPONSE_WORKFLOW: timedelta = timedelta(seconds=10)
    LOG_FORMAT: Literal["texte", "json"] = "texte"
    # The portal's login (OpenID Connect, ProConnect in production; the local provider of `make run`).
    OIDC_DISCOVERY_URL: str = "http://127.0.0.1:9400/.well-known/openid-configuration"
    OIDC_CLIENT_ID: str = "modif-solde"
    OIDC_CLIENT_SECRET: str = DEV_OIDC_CLIENT_SECRET
    OIDC_SCOPES: str = "openid email given_name usual_name uid siret idp_id"
    OIDC_ACR_VALUES: str = "eidas1"
    SESSION_SECRET: str = DEV_SESSION_SECRET
    # A session ends after this much inactivity, and in any case after SESSION_DUREE_MAX.
    SESSION_INACTIVITE: timedelta = timedelta(minutes=30)
    SESSION_DUREE_MAX: timedelta = timedelta(hours=12)

    @field_validator("DATABASE_URL")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the usual URL forms and pick the async driver the service runs on."""
        if url.startswith(("postgres://", "postgresql://")):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url.split("://", 1)[1]
        return url

    @field_validator("STORAGE_URL")
    @classmethod
    def _storage_url(cls, url: str) -> str:
        if not url:
            return url
        parties = urlsplit(url)
        if parties.scheme == "file" and parties.path and not parties.netloc:
            return url
        if parties.scheme == "s3" and parties.netloc and not parties.query:
            return url
        raise ValueError(
            "adresse du stockage des pièces invalide : vide, file:///chemin/absolu ou s3://bucket/prefixe"
        )

    @model_validator(mode="after")
    def _no_dev_secret_outside_dev(self) -> Settings:
        if self.ENVIRONNEMENT != "developpement":
            if self.JWT_SECRET == DEV_JWT_SECRET or len(self.JWT_SECRET) < 32:
                raise ValueError(
                    "MODIF_SOLDE_JWT_SECRET doit être défini (32 caractères au moins) en production "
                    "(MODIF_SOLDE_ENVIRONNEMENT=production, le réglage par défaut)"
                )
            if self.STORAGE_URL.startswith("s3://") and not (self.S3_ACCESS_KEY_ID and self.S3_SECRET_ACCESS_KEY):
                raise ValueError(
                    "MODIF_SOLDE_S3_ACCESS_KEY_ID et MODIF_SOLDE_S3_SECRET_ACCESS_KEY doivent être définis "
                    "en production quand les pièces sont dans S3 (MODIF_SOLDE_STORAGE_URL=s3://…)"
                )
        if self.RELANCE_APRES >= self.EXPIRATION_APRES:
            raise ValueError("MODIF_SOLDE_RELANCE_APRES doit précéder MODIF_SOLDE_EXPIRATION_APRES")
        return self


def decrire_erreurs(exc: ValidationError) -> list[str]:
    """One French line per refused setting, named by its environment variable."""
    lignes = []
    for err in exc.errors(include_url=False):
        erreur = (err.get("ctx") or {}).get("error")
        message = str(erreur) if erreur is not None else err["msg"]
        if err["loc"]:
            message = f"MODIF_SOLDE_{err['loc'][0]} : {message}"
        lignes.append(message)
    return lignes


@lru_cache
def get_settings() -> Settings:
    return Settings()
