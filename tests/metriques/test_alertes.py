"""The alert rules and Prometheus' configuration, checked and unit-tested by promtool (Debian's
`prometheus` package, installed by `make prometheus`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.test_liens_documentation import ancres_github

RACINE = Path(__file__).resolve().parents[2]
DOSSIER = RACINE / "deploiement" / "prometheus"
# Where each alert's runbook lives (« Quand une alerte sonne »).
EXPLOITATION = RACINE / "docs" / "exploitation.md"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def promtool(*arguments: str, dossier: Path = DOSSIER) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (fixed command of the test)
        [PROMTOOL, *arguments], cwd=dossier, capture_output=True, text=True, check=False
    )


def test_les_regles_sont_valides() -> None:
    resultat = promtool("check", "rules", "alertes.yml")
    assert resultat.returncode == 0, resultat.stdout + resultat.stderr
    assert "SUCCESS: 18 rules found" in resultat.stdout


def test_chaque_regle_se_declenche_et_se_tait_comme_prevu() -> None:
    resultat = promtool("test", "rules", "alertes_test.yml")
    assert resultat.returncode == 0, resultat.stdout + resultat.stderr
    assert "SUCCESS" in resultat.stdout


def test_chaque_regle_a_son_test_et_ses_annotations_en_francais() -> None:
    groupes = yaml.safe_load((DOSSIER / "alertes.yml").read_text(encoding="utf-8"))["groups"]
    regles = [r for g in groupes for r in g["rules"] if "alert" in r]
    assert len(regles) == 14
    tests = yaml.safe_load((DOSSIER / "alertes_test.yml").read_text(encoding="utf-8"))["tests"]
    testees = [a for t in tests for a in t["alert_rule_test"]]
    for regle in regles:
        nom = regle["alert"]
        # Each rule: one evaluation where it fires, one where it does not.
        assert any(a["alertname"] == nom and a["exp_alerts"] for a in testees), nom
        assert any(a["alertname"] == nom and not a["exp_alerts"] for a in testees), nom
        assert regle["annotations"]["summary"] and regle["annotations"]["description"], nom
        assert regle["labels"]["severity"] in {"critique", "avertissement"}, nom
    guide = EXPLOITATION.read_text(encoding="utf-8")
    for regle in regles:
        assert f"`{regle['alert']}`" in guide, f"{regle['alert']} n'est pas décrite dans docs/exploitation.md"


def test_la_configuration_de_docker_compose_est_valide(tmp_path: Path) -> None:
    """Its token file exists only in the container: the check runs on a copy pointing at one here."""
    jeton = tmp_path / "jeton-metriques"
    jeton.write_text("x" * 32)
    texte = (DOSSIER / "prometheus.yml").read_text(encoding="utf-8")
    assert texte.count("/run/secrets/jeton-metriques") == 2
    (tmp_path / "prometheus.yml").write_text(texte.replace("/run/secrets/jeton-metriques", str(jeton)))
    shutil.copy(DOSSIER / "alertes.yml", tmp_path / "alertes.yml")
    resultat = promtool("check", "config", "prometheus.yml", dossier=tmp_path)
    assert resultat.returncode == 0, resultat.stdout + resultat.stderr
    assert re.search(r"SUCCESS: 18 rules found", resultat.stdout)


def test_chaque_alerte_mene_a_sa_section_du_guide_d_exploitation() -> None:
    groupes = yaml.safe_load((DOSSIER / "alertes.yml").read_text(encoding="utf-8"))["groups"]
    ancres = ancres_github(EXPLOITATION.read_text(encoding="utf-8"))
    for regle in (r for g in groupes for r in g["rules"] if "alert" in r):
        url = regle["annotations"]["runbook_url"]
        assert url.startswith("https://") and "/docs/exploitation.md#" in url, regle["alert"]
        assert url.rsplit("#", 1)[1] in ancres, (
            f"{regle['alert']} : ancre {url} absente de docs/exploitation.md"
        )


def test_la_configuration_d_alertmanager_est_valide() -> None:
    """Checked by amtool (Debian's prometheus-alertmanager, `make alertmanager`): routes by
    severity to e-mail receivers."""
    amtool = shutil.which("amtool") or "/usr/bin/amtool"
    fichier = RACINE / "deploiement" / "alertmanager" / "alertmanager.yml"
    resultat = subprocess.run(  # noqa: S603
        [amtool, "check-config", str(fichier)], capture_output=True, text=True, check=False
    )
    assert resultat.returncode == 0, resultat.stdout + resultat.stderr
    config = yaml.safe_load(fichier.read_text(encoding="utf-8"))
    routes = {tuple(r["matchers"]): r["receiver"] for r in config["route"]["routes"]}
    assert routes[('severity="critique"',)] == "astreinte"
    assert routes[('severity="avertissement"',)] == "exploitation"
    recepteurs = {r["name"]: r for r in config["receivers"]}
    for nom in ("astreinte", "exploitation"):
        assert recepteurs[nom]["email_configs"], nom
    # Which route each alert of the rules takes, by amtool itself.
    for severite, attendu in (("critique", "astreinte"), ("avertissement", "exploitation")):
        resultat = subprocess.run(  # noqa: S603
            [amtool, "config", "routes", "test", f"--config.file={fichier}", f"severity={severite}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert resultat.stdout.strip() == attendu, resultat.stdout + resultat.stderr
