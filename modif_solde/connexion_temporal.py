"""Where and how to reach Temporal: the SDK's environment configuration, the service's two settings
on top of it, and a French explanation of every way the connection can be refused.

Precedence, for the address and the namespace (docs/production.md, « Production : Temporal »):
1. `MODIF_SOLDE_TEMPORAL_ADDRESS` / `MODIF_SOLDE_TEMPORAL_NAMESPACE` when set (the contract's settings);
2. the SDK's variables `TEMPORAL_ADDRESS` / `TEMPORAL_NAMESPACE`;
3. the TOML profile (`TEMPORAL_CONFIG_FILE`, else the SDK's default file; profile `TEMPORAL_PROFILE`,
   else `default`);
4. `127.0.0.1:7233` and `default` (the development server).
TLS, the client certificate and the API key come from 2 and 3 only (`temporalio.envconfig`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS, DataSource
from temporalio.service import TLSConfig

ADRESSE_DEV = "127.0.0.1:7233"
NAMESPACE_DEV = "default"
PREFIXE_SDK = "TEMPORAL_"
_VRAI = frozenset({"true", "1"})
_FAUX = frozenset({"false", "0"})

# What each part of the TLS configuration is called, as an operator sets it (variable, profile key).
_NOMS = {
    "client_cert": "TEMPORAL_TLS_CLIENT_CERT_PATH (client_cert_path du profil)",
    "client_private_key": "TEMPORAL_TLS_CLIENT_KEY_PATH (client_key_path du profil)",
    "server_root_ca_cert": "TEMPORAL_TLS_SERVER_CA_CERT_PATH (server_ca_cert_path du profil)",
}


_ALERTES_CERTIFICAT = (
    "UnknownCA",
    "BadCertificate",
    "CertificateUnknown",
    "CertificateExpired",
    "CertificateRevoked",
)


class ConfigurationTemporalInvalide(ValueError):
    """The connection settings cannot work as written (a file missing, half a client certificate…)."""


class TemporalInjoignable(RuntimeError):
    """The connection failed; the message says why in French and what to set."""


@dataclass(frozen=True)
class CibleTemporal:
    """The frontend to reach and how, resolved once from the settings and the environment."""

    adresse: str
    namespace: str
    api_key: str | None = None
    tls: ClientConfigTLS | None = None
    grpc_meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def tls_actif(self) -> bool:
        """The SDK's rule: TLS with an API key or a TLS section, unless TLS is explicitly disabled."""
        if self.tls is not None:
            return self.tls.disabled is not True
        return self.api_key is not None

    @property
    def certificat_client(self) -> bool:
        return self.tls_actif and self.tls is not None and self.tls.client_cert is not None

    @property
    def nuage(self) -> bool:
        """Temporal Cloud, by its addresses (namespace endpoints and the API-key regional ones)."""
        hote = self.adresse.rsplit(":", 1)[0].lower()
        return hote.endswith((".tmprl.cloud", ".api.temporal.io"))

    def decrire(self) -> str:
        """For logs and messages: never a secret, only what is in use."""
        securite = []
        if self.tls_actif:
            securite.append("TLS")
            if self.certificat_client:
                securite.append("certificat client")
        else:
            securite.append("sans TLS")
        if self.api_key:
            securite.append("clé d'API")
        return f"{self.adresse}, namespace {self.namespace}, {', '.join(securite)}"

    def options(self) -> dict[str, Any]:
        """Keyword arguments of `Client.connect`; the certificate files are read here."""
        options: dict[str, Any] = {"target_host": self.adresse, "namespace": self.namespace}
        if self.api_key:
            options["api_key"] = self.api_key
        options["tls"] = _tls(self.tls) if self.tls is not None else self.api_key is not None
        if self.grpc_meta:
            options["rpc_metadata"] = dict(self.grpc_meta)
        return options


def _tls(tls: ClientConfigTLS) -> bool | TLSConfig:
    if tls.disabled is True:
        return False
    if (tls.client_cert is None) != (tls.client_private_key is None):
        present, absent = (
            ("client_cert", "client_private_key")
            if tls.client_cert is not None
            else ("client_private_key", "client_cert")
        )
        raise ConfigurationTemporalInvalide(
            f"certificat client incomplet : {_NOMS[present]} est défini, mais pas {_NOMS[absent]}"
        )
    return TLSConfig(
        domain=tls.server_name,
        server_root_ca_cert=_lire(tls.server_root_ca_cert, "server_root_ca_cert"),
        client_cert=_lire(tls.client_cert, "client_cert"),
        client_private_key=_lire(tls.client_private_key, "client_private_key"),
    )


def _lire(source: DataSource | None, quoi: str) -> bytes | None:
    if source is None:
        return None
    if isinstance(source, Path):
        try:
            return source.read_bytes()
        except OSError as exc:
            raise ConfigurationTemporalInvalide(
                f"{_NOMS[quoi]} : {source} illisible ({exc.strerror})"
            ) from exc
    return source.encode() if isinstance(source, str) else source


def environnement_sdk(environ: Mapping[str, str]) -> dict[str, str]:
    """The SDK's variables, an empty one counting as unset (the SDK would turn TLS on for an empty
    TEMPORAL_TLS, which a compose file's `${TEMPORAL_TLS:-}` produces)."""
    env = {k: v for k, v in environ.items() if not (k.startswith(PREFIXE_SDK) and not v.strip())}
    tls = env.get("TEMPORAL_TLS")
    if tls is not None and tls.strip().lower() not in _VRAI | _FAUX:
        raise ConfigurationTemporalInvalide(f"TEMPORAL_TLS vaut « {tls} » : true ou false")
    fichier = env.get("TEMPORAL_CONFIG_FILE")
    if fichier and not Path(fichier).exists():
        raise ConfigurationTemporalInvalide(f"TEMPORAL_CONFIG_FILE : le fichier {fichier} est introuvable")
    return env


def cible_temporal(
    adresse: str | None = None, namespace: str | None = None, environ: Mapping[str, str] | None = None
) -> CibleTemporal:
    """`adresse` / `namespace`: the service's own settings, which win when given. `environ`: the
    process's environment unless a test gives its own."""
    env = environnement_sdk(os.environ if environ is None else environ)
    try:
        profil = ClientConfigProfile.load(override_env_vars=env)
    except RuntimeError as exc:  # the SDK's ConfigError: an unreadable TOML, an unknown profile
        raise ConfigurationTemporalInvalide(f"configuration Temporal illisible : {exc}") from exc
    return CibleTemporal(
        adresse=adresse or profil.address or ADRESSE_DEV,
        namespace=namespace or profil.namespace or NAMESPACE_DEV,
        api_key=profil.api_key or None,
        tls=profil.tls,
        grpc_meta=dict(profil.grpc_meta),
    )


def expliquer_echec(cible: CibleTemporal, erreur: BaseException) -> str:
    """A failed connection in French: what the server or the client refused, and which setting to
    look at. The SDK's own words follow in parentheses, for whoever digs further."""
    return f"Temporal injoignable ({cible.decrire()}) : {raison_echec(cible, erreur)}. ({str(erreur).strip()[:400]})"


def raison_echec(cible: CibleTemporal, erreur: BaseException) -> str:
    """The French reason alone (the same for the variants of one refusal the SDK words apart)."""
    brut = str(erreur)
    # TLS 1.3: the server checks the client's certificate after the handshake, and its alert may
    # be lost to a write already under way; a connection cut then means the same refusal.
    coupee = any(mot in brut for mot in ("BrokenPipe", "broken pipe", "ConnectionReset", "connection closed"))
    sans_certificat = (
        f"un certificat client, et aucun n'est configuré : définissez {_NOMS['client_cert']} et "
        f"{_NOMS['client_private_key']}"
    )
    certificat_refuse = (
        "le certificat client (autorité qu'il ne reconnaît pas, certificat expiré ou révoqué) : vérifiez "
        f"{_NOMS['client_cert']}"
    )
    exige = "CertificateRequired" in brut or "certificate required" in brut.lower()
    refuse = any(alerte in brut for alerte in _ALERTES_CERTIFICAT)
    # A connection cut during TLS with no API key in play: the same refusal, its alert lost.
    coupee_tls = cible.tls_actif and coupee and not cible.api_key
    if not cible.certificat_client and (exige or coupee_tls):
        raison = f"le serveur Temporal exige {sans_certificat}"
    elif cible.certificat_client and (exige or refuse or coupee_tls):
        raison = f"le serveur Temporal refuse {certificat_refuse}"
    elif "UnknownIssuer" in brut:
        raison = (
            "le certificat du serveur Temporal est signé par une autorité inconnue : donnez-la dans "
            f"{_NOMS['server_root_ca_cert']}"
        )
    elif "NotValidForName" in brut:
        raison = (
            "le certificat du serveur Temporal ne porte pas le nom attendu : TEMPORAL_TLS_SERVER_NAME "
            "(server_name du profil) doit être l'un des noms du certificat"
        )
    elif "Expired" in brut or "NotValidYet" in brut:
        raison = "le certificat du serveur Temporal est expiré ou pas encore valide"
    elif "InvalidContentType" in brut or "InvalidMessage" in brut:
        raison = (
            "le serveur ne répond pas en TLS : retirez TEMPORAL_TLS (ou mettez-le à false) pour ce serveur"
        )
    elif "H2NotNegotiated" in brut:
        raison = "le terminateur TLS devant Temporal ne négocie pas HTTP/2 (ALPN « h2 ») : gRPC en a besoin"
    elif any(
        mot in brut
        for mot in ("Unauthenticated", "PermissionDenied", "Request unauthorized", "401 Unauthorized")
    ):
        if cible.api_key:
            raison = (
                f"Temporal refuse la clé d'API (TEMPORAL_API_KEY) ou son accès au namespace {cible.namespace}"
            )
        else:
            raison = (
                "Temporal demande une authentification : définissez TEMPORAL_API_KEY ou un certificat client"
            )
    elif not cible.tls_actif and coupee:
        raison = "le serveur a coupé la connexion : attend-il TLS ? (TEMPORAL_TLS=true)"
    elif "Connection refused" in brut or "ConnectionRefused" in brut:
        raison = "aucun serveur n'écoute à cette adresse"
    elif "dns error" in brut or "failed to lookup address" in brut:
        raison = "nom d'hôte introuvable"
    elif "Namespace" in brut and "not found" in brut:
        raison = f"le namespace {cible.namespace} n'existe pas sur ce serveur (TEMPORAL_NAMESPACE)"
    else:
        raison = "connexion impossible"
    return raison
