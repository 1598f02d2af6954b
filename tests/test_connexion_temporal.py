"""Where the service looks for Temporal: its two settings first, then the SDK's variables, then
the SDK's TOML profile, then the development server; settings that cannot work are refused in
French before any connection is tried."""

from __future__ import annotations

from pathlib import Path

import pytest

from modif_solde.config import Settings
from modif_solde.connexion_temporal import ConfigurationTemporalInvalide, cible_temporal, expliquer_echec
from modif_solde.temporal import cible


def _profil(dossier: Path) -> Path:
    fichier = dossier / "temporal.toml"
    fichier.write_text(
        """[profile.default]
address = "profil-defaut:7233"
namespace = "ns-profil"

[profile.cloud]
address = "modif-solde.a1b2c.tmprl.cloud:7233"
namespace = "modif-solde.a1b2c"
api_key = "cle-du-profil"
""",
        encoding="utf-8",
    )
    return fichier


def test_ordre_de_priorite(tmp_path: Path) -> None:
    fichier = str(_profil(tmp_path))
    assert (cible_temporal(environ={}).adresse, cible_temporal(environ={}).namespace) == (
        "127.0.0.1:7233",
        "default",
    )
    profil = cible_temporal(environ={"TEMPORAL_CONFIG_FILE": fichier})
    assert (profil.adresse, profil.namespace) == ("profil-defaut:7233", "ns-profil")
    variables = cible_temporal(
        environ={
            "TEMPORAL_CONFIG_FILE": fichier,
            "TEMPORAL_ADDRESS": "variable:7233",
            "TEMPORAL_NAMESPACE": "ns-var",
        }
    )
    assert (variables.adresse, variables.namespace) == ("variable:7233", "ns-var")
    reglages = cible_temporal(
        "reglage:7233",
        "ns-reglage",
        environ={"TEMPORAL_CONFIG_FILE": fichier, "TEMPORAL_ADDRESS": "variable:7233"},
    )
    assert (reglages.adresse, reglages.namespace) == ("reglage:7233", "ns-reglage")
    # The service's settings reach it through Settings, as MODIF_SOLDE_TEMPORAL_ADDRESS sets them.
    assert (
        cible(Settings(TEMPORAL_ADDRESS="reglage:7233"), environ={"TEMPORAL_ADDRESS": "autre:1"}).adresse
        == "reglage:7233"
    )


def test_un_profil_nomme_et_sa_cle_d_api_activent_tls_sans_montrer_la_cle(tmp_path: Path) -> None:
    nuage = cible_temporal(
        environ={"TEMPORAL_CONFIG_FILE": str(_profil(tmp_path)), "TEMPORAL_PROFILE": "cloud"}
    )
    assert nuage.api_key == "cle-du-profil" and nuage.tls_actif and nuage.nuage
    assert nuage.options()["tls"] is True and nuage.options()["api_key"] == "cle-du-profil"
    assert "cle-du-profil" not in nuage.decrire()
    assert (
        nuage.decrire() == "modif-solde.a1b2c.tmprl.cloud:7233, namespace modif-solde.a1b2c, TLS, clé d'API"
    )


def test_une_variable_vide_compte_comme_absente() -> None:
    """The SDK alone would turn TLS on for an empty TEMPORAL_TLS (a compose file's `${X:-}`)."""
    vide = cible_temporal(environ={"TEMPORAL_TLS": "", "TEMPORAL_API_KEY": " ", "TEMPORAL_ADDRESS": ""})
    assert not vide.tls_actif and vide.api_key is None and vide.adresse == "127.0.0.1:7233"
    assert vide.options()["tls"] is False
    assert cible_temporal(environ={"TEMPORAL_TLS": "true"}).tls_actif
    assert not cible_temporal(environ={"TEMPORAL_TLS": "false", "TEMPORAL_API_KEY": "k"}).tls_actif


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TEMPORAL_TLS": "oui"}, "TEMPORAL_TLS vaut « oui » : true ou false"),
        (
            {"TEMPORAL_CONFIG_FILE": "/nulle/part.toml"},
            "TEMPORAL_CONFIG_FILE : le fichier /nulle/part.toml est introuvable",
        ),
        ({"TEMPORAL_PROFILE": "inconnu"}, "configuration Temporal illisible : Profile 'inconnu' not found"),
    ],
)
def test_des_reglages_impossibles_sont_refuses_en_francais(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationTemporalInvalide, match=message):
        cible_temporal(environ=environ)


def test_un_certificat_client_sans_sa_cle_ou_illisible_est_nomme(tmp_path: Path) -> None:
    certificat = tmp_path / "client.pem"
    certificat.write_text("-----BEGIN CERTIFICATE-----\n")
    sans_cle = cible_temporal(environ={"TEMPORAL_TLS_CLIENT_CERT_PATH": str(certificat)})
    with pytest.raises(ConfigurationTemporalInvalide, match="mais pas TEMPORAL_TLS_CLIENT_KEY_PATH"):
        sans_cle.options()
    absent = cible_temporal(
        environ={
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "x.pem"),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certificat),
        }
    )
    with pytest.raises(
        ConfigurationTemporalInvalide, match=r"TEMPORAL_TLS_CLIENT_CERT_PATH .*/x\.pem illisible"
    ):
        absent.options()


def test_l_explication_d_un_echec_nomme_le_reglage_en_cause() -> None:
    local = cible_temporal(environ={})
    assert "aucun serveur n'écoute" in expliquer_echec(
        local, RuntimeError("tcp connect error: Connection refused")
    )
    assert "namespace default n'existe pas" in expliquer_echec(
        local, RuntimeError("Namespace default is not found.")
    )
    en_clair = expliquer_echec(local, RuntimeError("hyper::Error(Io, Kind(ConnectionReset))"))
    assert "attend-il TLS ? (TEMPORAL_TLS=true)" in en_clair
