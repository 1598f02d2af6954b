"""The service's settings: one object, read from the environment (prefix MODIF_SOLDE_)."""

from __future__ import annotations

import ipaddress
import os
from datetime import date, time, timedelta
from email.utils import parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DATA_DIR = Path(".data")
DEV_JWT_SECRET = "dev-secret-modif-solde-ne-pas-utiliser-en-production"  # noqa: S105
DEV_SESSION_SECRET = "dev-session-modif-solde-ne-pas-utiliser-en-production"  # noqa: S105
DEV_OIDC_CLIENT_SECRET = "dev-client-secret-modif-solde"  # noqa: S105
PREFIXE = "MODIF_SOLDE_"
SUFFIXE_FICHIER = "_FILE"


class ReglagesInvalides(ValueError):
    """Settings refused at start: one French line per refused setting, each opening with its
    environment variable. Every refusal of the settings (the model's own checks and each
    process's) is this one exception, printed by the CLI as « Réglages invalides : »."""

    def __init__(self, lignes: list[str]) -> None:
        super().__init__("\n".join(lignes))
        self.lignes = lignes


class SecretsEnFichiers(PydanticBaseSettingsSource):
    """`MODIF_SOLDE_X_FILE=/chemin`: the value of `MODIF_SOLDE_X` read from that file, the way
    Docker secrets (/run/secrets/…) and Kubernetes Secret volumes hand secrets to a process, and
    the convention of the official images (POSTGRES_PASSWORD_FILE). One trailing line break is
    dropped (`echo` and most editors add one). Setting both the variable and its file is refused:
    which one wins would be a guess."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{PREFIXE}{field_name}"
        chemin = os.environ.get(variable + SUFFIXE_FICHIER)
        if chemin is None:
            return None, field_name, False
        if variable in os.environ:
            raise ReglagesInvalides(
                [f"{variable} et {variable}{SUFFIXE_FICHIER} sont tous deux définis : gardez l'un ou l'autre"]
            )
        try:
            contenu = Path(chemin).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raison = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ReglagesInvalides(
                [f"{variable}{SUFFIXE_FICHIER} : impossible de lire {chemin} ({raison})"]
            ) from None
        return contenu.removesuffix("\n").removesuffix("\r"), field_name, False

    def __call__(self) -> dict[str, Any]:
        valeurs: dict[str, Any] = {}
        for nom, champ in self.settings_cls.model_fields.items():
            valeur, cle, _ = self.get_field_value(champ, nom)
            if valeur is not None:
                valeurs[cle] = valeur
        return valeurs


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIXE, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments first, then the environment, then MODIF_SOLDE_X_FILE (both at once: refused).
        return (
            init_settings,
            env_settings,
            SecretsEnFichiers(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    # Production unless told otherwise: `modif-solde dev` (make run) and the tests say
    # "developpement" explicitly; anything else must bring its own secret.
    ENVIRONNEMENT: Literal["developpement", "production"] = "production"
    DATABASE_URL: str = f"sqlite+aiosqlite:///{DATA_DIR}/modif-solde.db"
    # What `modif-solde migrer` connects with: the role that owns the schema (DATABASE_URL when
    # unset). When it names another PostgreSQL role, `migrer` grants DATABASE_URL's role read and
    # write on the tables, never schema changes (docs/production.md, « Production : la base de données »).
    MIGRATION_DATABASE_URL: str | None = None
    # The Temporal frontend is found by the SDK's environment configuration (TEMPORAL_ADDRESS,
    # TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE);
    # these two, when set, take precedence over it; unset everywhere: 127.0.0.1:7233 and `default`
    # (modif_solde/connexion_temporal.py, docs/production.md, « Production : Temporal »).
    TEMPORAL_ADDRESS: str | None = None
    TEMPORAL_NAMESPACE: str | None = None
    # How long Temporal keeps a closed cycle's history, set on the namespace by `modif-solde
    # temporal preparer`: 60 days keeps the last rounds readable in the Web UI while the next runs.
    TEMPORAL_RETENTION: timedelta = Field(default=timedelta(days=60), ge=timedelta(days=1))
    # The daily maintenance (a Temporal Schedule: `verifier` then `purger`), at this time of day, Paris time.
    ENTRETIEN_HEURE: time = time(3, 0)
    # On SIGTERM the worker stops polling and gives the activities under way this long to finish
    # (their transaction, their e-mail) before cancelling them; the container needs longer than this.
    WORKER_ARRET_GRACE: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    # RGPD: how long after a request's last closing its personal data, e-mail bodies and documents
    # are kept (`modif-solde purger`); required outside development, where nothing is purged without it.
    DUREE_CONSERVATION: timedelta | None = None
    # The pages the law asks of a French public site (/mentions-legales, /donnees-personnelles,
    # /accessibilite): what depends on the deployer. Development shows demonstration values
    # (pages/informations.py); production requires each one (verifier_reglages, the API).
    EDITEUR: str | None = None
    DIRECTEUR_PUBLICATION: str | None = None
    HEBERGEUR: str | None = None
    CONTACT_COURRIEL: str | None = None
    DPO_CONTACT: str | None = None
    ACCESSIBILITE_STATUT: Literal["totalement conforme", "partiellement conforme", "non conforme"] | None = (
        None
    )
    # The RGAA audit behind the status (not needed when the site declares itself « non conforme »).
    ACCESSIBILITE_AUDIT_DATE: date | None = None
    ACCESSIBILITE_AUDIT_PAR: str | None = None
    # The Temporal Web UI, for the back-office's link to a modification's workflow.
    TEMPORAL_UI_URL: str = "http://127.0.0.1:8233"
    TASK_QUEUE: str = "modification-solde"
    SMTP_URL: str = "smtp://127.0.0.1:1025"
    MAIL_FROM: str = "Portail Ségur Numérique <ne-pas-repondre@modif-solde.invalid>"
    GESTIONNAIRES_COURRIEL: str = "gestionnaires@modif-solde.invalid"
    PORTAIL_URL: str = "http://127.0.0.1:8000"
    RELANCE_APRES: timedelta = timedelta(days=10)
    EXPIRATION_APRES: timedelta = timedelta(days=20)
    # HS256 with this secret: development only (production refuses HS256 tokens).
    JWT_SECRET: str = DEV_JWT_SECRET
    JWT_DUREE: timedelta = timedelta(hours=12)
    # Production: the public keys (RS256, ES256) as a JWKS, at a URL or in a file; one of them.
    JWT_JWKS_URL: str | None = None
    JWT_JWKS_FICHIER: Path | None = None
    # An unknown `kid` reads the JWKS again at most this often; a URL's JWKS is kept JWT_JWKS_CACHE.
    JWT_JWKS_RELECTURE: timedelta = Field(default=timedelta(seconds=30), ge=timedelta(0))
    JWT_JWKS_CACHE: timedelta = Field(default=timedelta(minutes=5), gt=timedelta(0))
    JWT_EMETTEUR: str = Field(default="modif-solde", min_length=1)
    JWT_AUDIENCE: str = Field(default="modif-solde-api", min_length=1)
    # On SIGTERM the API answers 503 on /readyz for ARRET_DELAI while it keeps serving (the load
    # balancer notices), then stops accepting and gives in-flight requests ARRET_GRACE to finish.
    ARRET_DELAI: timedelta = Field(default=timedelta(seconds=5), ge=timedelta(0))
    ARRET_GRACE: timedelta = Field(default=timedelta(seconds=20), gt=timedelta(0))
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
    # An import (JSON, its documents in base64: a third larger than the files) is read whole
    # before it is checked: 64 MiB holds a request with several full-size documents; past it, 413.
    IMPORT_TAILLE_MAX: int = Field(default=64 * 1024 * 1024, gt=0)
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
    # Metrics (docs/exploitation.md): the bearer token Prometheus sends to /metrics (API and
    # worker); without it, /metrics is open in development and refused in production.
    METRIQUES_JETON: str | None = None
    # The worker's /metrics (its counters and the Temporal SDK's): off unless a port is given.
    METRIQUES_PORT: int | None = Field(default=None, ge=1, le=65535)
    METRIQUES_ADRESSE: str = "127.0.0.1"

    @field_validator("DATABASE_URL", "MIGRATION_DATABASE_URL")
    @classmethod
    def _async_driver(cls, url: str | None) -> str | None:
        """Accept the usual URL forms and pick the async driver the service runs on."""
        if not url:
            return url
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

    @field_validator("METRIQUES_JETON")
    @classmethod
    def _jeton_metriques(cls, jeton: str | None) -> str | None:
        if jeton is not None and len(jeton) < 32:
            raise ValueError("le jeton des métriques doit compter 32 caractères au moins")
        return jeton

    @model_validator(mode="after")
    def _no_dev_secret_outside_dev(self) -> Settings:
        # Every refusal at once: an operator fixes them all in one go, not one per restart.
        lignes: list[str] = []
        if self.JWT_JWKS_URL and self.JWT_JWKS_FICHIER is not None:
            lignes.append(
                "MODIF_SOLDE_JWT_JWKS_URL et MODIF_SOLDE_JWT_JWKS_FICHIER : l'un ou l'autre, pas les deux"
            )
        elif self.JWT_JWKS_URL and not self.JWT_JWKS_URL.startswith(
            ("https://", "http://") if self.ENVIRONNEMENT == "developpement" else "https://"
        ):
            lignes.append("MODIF_SOLDE_JWT_JWKS_URL doit être une URL https://")
        if self.ENVIRONNEMENT != "developpement":
            if self.STORAGE_URL.startswith("s3://") and not (
                self.S3_ACCESS_KEY_ID and self.S3_SECRET_ACCESS_KEY
            ):
                lignes.append(
                    "MODIF_SOLDE_S3_ACCESS_KEY_ID et MODIF_SOLDE_S3_SECRET_ACCESS_KEY doivent être définis "
                    "en production quand les pièces sont dans S3 (MODIF_SOLDE_STORAGE_URL=s3://…)"
                )
            if self.METRIQUES_PORT is not None and self.METRIQUES_JETON is None:
                lignes.append(
                    "MODIF_SOLDE_METRIQUES_JETON doit être défini (32 caractères au moins) quand "
                    "MODIF_SOLDE_METRIQUES_PORT ouvre les métriques du worker en production"
                )
        if self.RELANCE_APRES >= self.EXPIRATION_APRES:
            lignes.append("MODIF_SOLDE_RELANCE_APRES doit précéder MODIF_SOLDE_EXPIRATION_APRES")
        if self.TEMPORAL_RETENTION < self.EXPIRATION_APRES:
            lignes.append(
                "MODIF_SOLDE_TEMPORAL_RETENTION doit couvrir au moins un cycle (MODIF_SOLDE_EXPIRATION_APRES) : "
                "l'historique d'une modification close reste lisible pendant le tour suivant"
            )
        if self.DUREE_CONSERVATION is not None:
            if self.DUREE_CONSERVATION <= timedelta(0):
                lignes.append(
                    "MODIF_SOLDE_DUREE_CONSERVATION doit être une durée positive (ISO 8601, ex. P5Y)"
                )
            if self.ENVIRONNEMENT != "developpement" and self.DUREE_CONSERVATION < timedelta(days=1):
                lignes.append(
                    "MODIF_SOLDE_DUREE_CONSERVATION : au moins un jour en production (PT30S est une durée de "
                    "démonstration ; P5Y se compte en années)"
                )
            if self.TEMPORAL_RETENTION > self.DUREE_CONSERVATION:
                lignes.append(
                    "MODIF_SOLDE_TEMPORAL_RETENTION ne peut dépasser MODIF_SOLDE_DUREE_CONSERVATION : les historiques "
                    "Temporal portent les mêmes données personnelles que la base"
                )
        if lignes:
            raise ReglagesInvalides(lignes)
        return self


# Names that are never a real mailbox or site: RFC 2606 and 6761 (invalid, test, example,
# localhost), mDNS's local, and the three example second-level domains.
_TLD_RESERVES = frozenset({"invalid", "test", "example", "localhost", "local"})
_DOMAINES_EXEMPLE = ("example.com", "example.net", "example.org")


def _domaine_reserve(domaine: str) -> bool:
    domaine = domaine.lower().rstrip(".")
    if domaine.rsplit(".", 1)[-1] in _TLD_RESERVES:
        return True
    return any(domaine == d or domaine.endswith("." + d) for d in _DOMAINES_EXEMPLE)


def _refus_adresse(nom: str, valeur: str) -> str | None:
    """Why an address setting cannot be a production mailbox (None when it can)."""
    _, adresse = parseaddr(valeur)
    try:
        domaine = validate_email(adresse, check_deliverability=False).domain
    except EmailNotValidError:
        return f"MODIF_SOLDE_{nom} : « {valeur} » n'est pas une adresse électronique valide"
    if _domaine_reserve(domaine):
        return (
            f"MODIF_SOLDE_{nom} : « {adresse} » est une adresse de substitution (domaine réservé "
            f"{domaine}) ; donnez l'adresse réelle du service"
        )
    return None


def _refus_url_portail(url: str) -> str | None:
    """The portal's public address: https, and a host that people's browsers can reach."""
    parties = urlsplit(url)
    hote = parties.hostname or ""
    try:
        bouclage = ipaddress.ip_address(hote).is_loopback
    except ValueError:
        bouclage = hote == "localhost"
    if parties.scheme != "https" or not hote or bouclage or _domaine_reserve(hote):
        return (
            f"MODIF_SOLDE_PORTAIL_URL : « {url} » doit être l'adresse publique https:// du portail "
            "(les liens des courriels et le retour de la connexion y mènent)"
        )
    return None


def verifier_reglages(settings: Settings, processus: Literal["api", "worker"]) -> None:
    """What a process of the service needs outside development, every refused setting named at
    once (ReglagesInvalides). The API checks tokens and logs people in; the worker sends the
    e-mails; both write the portal's address (links, the login's return). Other commands
    (migrate, verifier, import…) need none of this."""
    if settings.ENVIRONNEMENT == "developpement":
        return
    lignes: list[str] = []
    if processus == "api":
        if not (settings.JWT_JWKS_URL or settings.JWT_JWKS_FICHIER):
            lignes.append(
                "MODIF_SOLDE_JWT_JWKS_URL ou MODIF_SOLDE_JWT_JWKS_FICHIER doit être défini en production "
                "(les clés publiques des jetons ; HS256 et MODIF_SOLDE_JWT_SECRET ne servent qu'en développement)"
            )
        if settings.SESSION_SECRET == DEV_SESSION_SECRET or len(settings.SESSION_SECRET) < 32:
            lignes.append(
                "MODIF_SOLDE_SESSION_SECRET doit être défini (32 caractères au moins) hors développement"
            )
        if settings.OIDC_CLIENT_SECRET == DEV_OIDC_CLIENT_SECRET:
            lignes.append("MODIF_SOLDE_OIDC_CLIENT_SECRET doit être défini hors développement")
        if not settings.OIDC_DISCOVERY_URL.startswith("https://"):
            lignes.append("MODIF_SOLDE_OIDC_DISCOVERY_URL doit être en https hors développement")
        lignes.extend(_refus_informations_legales(settings))
    if (refus := _refus_url_portail(settings.PORTAIL_URL)) is not None:
        lignes.append(refus)
    if processus == "worker":
        for nom in ("MAIL_FROM", "GESTIONNAIRES_COURRIEL"):
            if (refus := _refus_adresse(nom, getattr(settings, nom))) is not None:
                lignes.append(refus)
        # The worker runs the daily purge.
        if (refus := _refus_conservation(settings)) is not None:
            lignes.append(refus)
    if lignes:
        raise ReglagesInvalides(lignes)


# The legal pages' settings, each with what it is for (the refusal names it).
INFORMATIONS_LEGALES = {
    "EDITEUR": "l'éditeur du site (nom et adresse), en mentions légales",
    "DIRECTEUR_PUBLICATION": "le directeur de la publication, en mentions légales",
    "HEBERGEUR": "l'hébergeur (nom, adresse, téléphone), en mentions légales",
    "CONTACT_COURRIEL": "l'adresse de contact du service (accessibilité, données personnelles)",
    "DPO_CONTACT": "le contact du délégué à la protection des données, en données personnelles",
    "ACCESSIBILITE_STATUT": "l'état de conformité au RGAA (totalement conforme, partiellement conforme, non conforme)",
}


def _refus_informations_legales(settings: Settings) -> list[str]:
    """The footer's pages (mentions légales, données personnelles, accessibilité) state who
    publishes, hosts and answers: outside development each value comes from the deployer."""
    lignes = [
        f"MODIF_SOLDE_{nom} doit être défini en production : {role}"
        for nom, role in INFORMATIONS_LEGALES.items()
        if not (getattr(settings, nom) or "").strip()
    ]
    if settings.CONTACT_COURRIEL and (refus := _refus_adresse("CONTACT_COURRIEL", settings.CONTACT_COURRIEL)):
        lignes.append(refus)
    if settings.ACCESSIBILITE_STATUT not in (None, "non conforme"):
        for nom, role in (("ACCESSIBILITE_AUDIT_DATE", "la date"), ("ACCESSIBILITE_AUDIT_PAR", "l'auteur")):
            if getattr(settings, nom) is None:
                lignes.append(
                    f"MODIF_SOLDE_{nom} doit être défini en production : {role} de l'audit RGAA sur lequel "
                    f"repose l'état « {settings.ACCESSIBILITE_STATUT} » (sans audit, l'état est « non conforme »)"
                )
    # The personal data page states how long a closed request's data are kept.
    if (refus := _refus_conservation(settings)) is not None:
        lignes.append(refus)
    return lignes


def verifier_reglages_conservation(settings: Settings) -> None:
    """What the commands that purge need (the worker, which runs the daily purge, `purger` and
    `temporal preparer`): outside development, a retention period chosen by the deployer."""
    if (refus := _refus_conservation(settings)) is not None:
        raise ReglagesInvalides([refus])


def _refus_conservation(settings: Settings) -> str | None:
    if settings.ENVIRONNEMENT != "developpement" and settings.DUREE_CONSERVATION is None:
        return (
            "MODIF_SOLDE_DUREE_CONSERVATION doit être défini en production : la durée de conservation des "
            "données d'une demande close (ISO 8601, ex. P5Y), fixée par le responsable de traitement "
            "(docs/production.md, « Conservation des données (RGPD) »)"
        )
    return None


def decrire_erreurs(exc: ValidationError) -> list[str]:
    """One French line per refused setting, named by its environment variable."""
    lignes: list[str] = []
    for err in exc.errors(include_url=False):
        erreur = (err.get("ctx") or {}).get("error")
        if isinstance(erreur, ReglagesInvalides):
            lignes.extend(erreur.lignes)
            continue
        message = str(erreur) if erreur is not None else err["msg"]
        if err["loc"]:
            message = f"MODIF_SOLDE_{err['loc'][0]} : {message}"
        lignes.append(message)
    return lignes


@lru_cache
def get_settings() -> Settings:
    return Settings()
