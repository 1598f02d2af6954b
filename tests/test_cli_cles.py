"""`modif-solde cles` (a key pair and the JWKS) and `modif-solde token --cle-privee`: the rotation
procedure of the README, as an operator runs it, checked by the API's own verifier."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from modif_solde.api.auth import JetonInvalide, Role, Verificateur
from modif_solde.config import Settings

# No MODIF_SOLDE_ variable: the default, production.
PRODUCTION = {k: v for k, v in os.environ.items() if not k.startswith("MODIF_SOLDE_")}


def modif_solde(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own command)
        [sys.executable, "-m", "modif_solde.cli", *arguments],
        env={**PRODUCTION, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def jeton(cle: Path, kid: str, *autres: str) -> str:
    resultat = modif_solde("token", "--role", "gestionnaire", "--cle-privee", str(cle), "--kid", kid, *autres)
    assert resultat.returncode == 0, resultat.stderr
    return resultat.stdout.strip()


async def test_generer_signer_tourner_retirer(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    resultat = modif_solde("cles", "generer", "--kid", "2026-11", "--jwks", str(jwks))
    assert resultat.returncode == 0, resultat.stderr
    assert "Clé « 2026-11 » (ES256)" in resultat.stdout
    prive = tmp_path / "2026-11.pem"
    assert stat.S_IMODE(prive.stat().st_mode) == 0o600
    document = json.loads(jwks.read_text())
    assert [(c["kid"], c["alg"], c["use"]) for c in document["keys"]] == [("2026-11", "ES256", "sig")]
    assert "d" not in document["keys"][0]  # the public half only

    verificateur = Verificateur(Settings(JWT_JWKS_FICHIER=jwks, JWT_JWKS_RELECTURE="PT0S"))
    ancien = jeton(prive, "2026-11")
    assert (await verificateur.lire(ancien)).sub == "gestionnaire.cli"

    # The rotation: a new key beside the old one, then the old one withdrawn.
    nouvelle = tmp_path / "secrets" / "2026-12.pem"
    nouvelle.parent.mkdir()
    resultat = modif_solde(
        "cles", "generer", "--kid", "2026-12", "--jwks", str(jwks), "--algorithme", "RS256",
        "--cle-privee", str(nouvelle),
    )  # fmt: skip
    assert resultat.returncode == 0, resultat.stderr
    nouveau = jeton(nouvelle, "2026-12", "--siret", "50961588600025")
    assert (await verificateur.lire(nouveau)).role == Role.GESTIONNAIRE
    assert (await verificateur.lire(ancien)).sub == "gestionnaire.cli"

    resultat = modif_solde("cles", "retirer", "--kid", "2026-11", "--jwks", str(jwks))
    assert resultat.returncode == 0, resultat.stderr
    assert "1 restante(s)" in resultat.stdout
    with pytest.raises(JetonInvalide):
        await verificateur.lire(ancien)
    assert (await verificateur.lire(nouveau)).sub == "gestionnaire.cli"


def test_cles_refuse_d_ecraser_et_dit_pourquoi_en_francais(tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    assert modif_solde("cles", "generer", "--kid", "k1", "--jwks", str(jwks)).returncode == 0
    avant = (jwks.read_text(), (tmp_path / "k1.pem").read_bytes())

    deja = modif_solde("cles", "generer", "--kid", "k1", "--jwks", str(jwks))
    assert deja.returncode == 2
    assert "La clé « k1 » est déjà dans" in deja.stderr
    fichier = modif_solde(
        "cles", "generer", "--kid", "k2", "--jwks", str(jwks), "--cle-privee", str(tmp_path / "k1.pem")
    )
    assert fichier.returncode == 2
    assert "existe déjà : rien n'a été écrit" in fichier.stderr
    absente = modif_solde("cles", "retirer", "--kid", "k9", "--jwks", str(jwks))
    assert absente.returncode == 1
    assert "La clé « k9 » n'est pas dans" in absente.stderr
    assert (jwks.read_text(), (tmp_path / "k1.pem").read_bytes()) == avant


def test_token_refuse_une_cle_illisible_ou_sans_kid(tmp_path: Path) -> None:
    faux = tmp_path / "faux.pem"
    faux.write_text("pas une clé")
    illisible = modif_solde("token", "--role", "gestionnaire", "--cle-privee", str(faux), "--kid", "k")
    assert illisible.returncode == 2
    assert "n'est pas une clé privée PEM lisible" in illisible.stderr
    assert "Traceback" not in illisible.stderr
    sans_kid = modif_solde("token", "--role", "gestionnaire", "--cle-privee", str(faux))
    assert sans_kid.returncode == 2
    assert "--kid" in sans_kid.stderr


async def test_token_hs256_reste_en_developpement() -> None:
    resultat = modif_solde(
        "token", "--role", "gestionnaire", env={"MODIF_SOLDE_ENVIRONNEMENT": "developpement"}
    )
    assert resultat.returncode == 0, resultat.stderr
    verificateur = Verificateur(Settings(ENVIRONNEMENT="developpement"))
    assert (await verificateur.lire(resultat.stdout.strip())).role == Role.GESTIONNAIRE
