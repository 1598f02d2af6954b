"""The kustomize base (deploiement/kubernetes/), rendered by Debian's `kubectl kustomize` (no
cluster needed), and checkov (PyPI, `make checkov`) on the rendered manifests, the Dockerfile
and compose: no failed check, each skip justified where it is made. No cluster runs here: what
a cluster would do with these objects (scheduling, probes, policies) is not tested."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from modif_solde.config import Settings

RACINE = Path(__file__).resolve().parents[1]
BASE = RACINE / "deploiement" / "kubernetes"
CHECKOV = RACINE / ".outils" / "checkov" / "bin" / "checkov"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def _executer(*commande: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(commande, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603


@pytest.fixture(scope="module")
def rendu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    resultat = _executer(KUBECTL, "kustomize", str(BASE))
    assert resultat.returncode == 0, resultat.stderr
    fichier = tmp_path_factory.mktemp("kustomize") / "modif-solde.yaml"
    fichier.write_text(resultat.stdout, encoding="utf-8")
    return fichier


@pytest.fixture(scope="module")
def objets(rendu: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(rendu.read_text(encoding="utf-8"))
    }


def _checkov(*arguments: str) -> dict[str, Any]:
    assert CHECKOV.exists(), "checkov manque : make checkov"
    # --skip-download: offline, nothing asked of Prisma Cloud.
    resultat = _executer(str(CHECKOV), *arguments, "--skip-download", "-o", "json")
    assert resultat.returncode in (0, 1), resultat.stderr[-2000:]
    sortie: dict[str, Any] = json.loads(resultat.stdout)
    if "summary" not in sortie:  # nothing to check in the files: the summary alone
        sortie = {"summary": sortie, "results": {"failed_checks": [], "skipped_checks": []}}
    return sortie


def _conteneur(objet: dict[str, Any]) -> dict[str, Any]:
    (conteneur,) = objet["spec"]["template"]["spec"]["containers"]
    return conteneur


def test_la_base_rend_les_objets_attendus(objets: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert set(objets) == {
        ("ServiceAccount", "modif-solde"),
        ("ConfigMap", next(n for k, n in objets if k == "ConfigMap")),
        ("Service", "modif-solde-api"),
        ("Deployment", "modif-solde-api"),
        ("Deployment", "modif-solde-worker"),
        ("Job", "modif-solde-migrer"),
        ("Job", "modif-solde-temporal-preparer"),
        ("PodDisruptionBudget", "modif-solde-api"),
        ("PodDisruptionBudget", "modif-solde-worker"),
        ("NetworkPolicy", "modif-solde-par-defaut"),
        ("NetworkPolicy", "modif-solde-api-entree"),
        ("NetworkPolicy", "modif-solde-worker-entree"),
        ("NetworkPolicy", "modif-solde-sortie"),
    }
    # Secrets by reference only: none in the repository.
    assert not [cle for cle in objets if cle[0] == "Secret"]
    assert all(
        o["metadata"]["namespace"] == "modif-solde" for o in objets.values() if o["kind"] != "Namespace"
    )


def test_api_et_worker_deux_replicas_sondes_et_delais_d_arret(
    objets: dict[tuple[str, str], dict[str, Any]],
) -> None:
    api, worker = objets["Deployment", "modif-solde-api"], objets["Deployment", "modif-solde-worker"]
    assert api["spec"]["replicas"] == worker["spec"]["replicas"] == 2
    c_api, c_worker = _conteneur(api), _conteneur(worker)
    assert c_api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c_api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c_worker["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metriques"}
    assert c_worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metriques"}
    (port,) = c_worker["ports"]
    config = next(o for (k, _), o in objets.items() if k == "ConfigMap")["data"]
    assert port == {"name": "metriques", "containerPort": int(config["MODIF_SOLDE_METRIQUES_PORT"])}
    assert c_api["args"] == ["api", "--port", "8000"] and c_worker["args"] == ["worker"]
    reglages = Settings.model_fields
    arret_api = (reglages["ARRET_DELAI"].default + reglages["ARRET_GRACE"].default).total_seconds()
    assert api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > arret_api
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    for nom in ("modif-solde-api", "modif-solde-worker"):
        pdb = objets["PodDisruptionBudget", nom]
        assert pdb["spec"]["minAvailable"] == 1
        assert (
            pdb["spec"]["selector"]["matchLabels"]
            == objets["Deployment", nom]["spec"]["selector"]["matchLabels"]
        )


def test_chaque_pod_non_root_en_lecture_seule_borne_et_ses_secrets_en_fichiers(
    objets: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for (genre, nom), objet in objets.items():
        if genre not in ("Deployment", "Job"):
            continue
        pod = objet["spec"]["template"]["spec"]
        assert (
            pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        ), nom
        assert pod["automountServiceAccountToken"] is False, nom
        conteneur = _conteneur(objet)
        securite = conteneur["securityContext"]
        assert securite["readOnlyRootFilesystem"] is True and securite["allowPrivilegeEscalation"] is False, (
            nom
        )
        assert securite["capabilities"]["drop"] == ["ALL"], nom
        assert set(conteneur["resources"]) == {"requests", "limits"}, nom
        assert {"mountPath": "/tmp", "name": "tmp"} in conteneur["volumeMounts"], nom
        # Secrets as files (MODIF_SOLDE_X_FILE), from Secrets referenced by name.
        assert not [e for e in conteneur.get("env", []) if "valueFrom" in e], nom
        volumes = {v["name"]: v for v in pod["volumes"]}
        montes = {m["mountPath"]: m["name"] for m in conteneur["volumeMounts"]}
        for variable in conteneur["env"]:
            assert variable["name"].endswith("_FILE"), (nom, variable)
            dossier = variable["value"].rsplit("/", 1)[0]
            assert "secret" in volumes[montes[dossier]], (nom, variable)
    migration = _conteneur(objets["Job", "modif-solde-migrer"])
    assert migration["args"] == ["migrer"]
    assert "MODIF_SOLDE_MIGRATION_DATABASE_URL_FILE" in {e["name"] for e in migration["env"]}
    for nom in ("Deployment", "modif-solde-api"), ("Deployment", "modif-solde-worker"):
        assert "MODIF_SOLDE_MIGRATION_DATABASE_URL_FILE" not in {
            e["name"] for e in _conteneur(objets[nom])["env"]
        }
    assert _conteneur(objets["Job", "modif-solde-temporal-preparer"])["args"] == ["temporal", "preparer"]


def test_reseau_tout_ferme_sauf_le_necessaire(objets: dict[tuple[str, str], dict[str, Any]]) -> None:
    defaut = objets["NetworkPolicy", "modif-solde-par-defaut"]["spec"]
    assert defaut == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    sortie = objets["NetworkPolicy", "modif-solde-sortie"]["spec"]
    ports = {p["port"] for regle in sortie["egress"] for p in regle["ports"]}
    assert ports == {53, 5432, 7233, 587, 465, 443}
    # The egress policy's selector matches the pods (the label kustomize puts on every template).
    for genre, nom in (
        ("Deployment", "modif-solde-api"),
        ("Deployment", "modif-solde-worker"),
        ("Job", "modif-solde-migrer"),
    ):
        etiquettes = objets[genre, nom]["spec"]["template"]["metadata"]["labels"]
        assert sortie["podSelector"]["matchLabels"].items() <= etiquettes.items(), nom
    entree = objets["NetworkPolicy", "modif-solde-api-entree"]["spec"]
    assert {p["port"] for regle in entree["ingress"] for p in regle["ports"]} == {8000}


def test_checkov_passe_sur_les_manifestes_et_chaque_exception_est_justifiee(rendu: Path) -> None:
    resultat = _checkov("-f", str(rendu), "--framework", "kubernetes")
    assert resultat["summary"]["failed"] == 0, [
        (c["check_id"], c["resource"], c["check_name"]) for c in resultat["results"]["failed_checks"]
    ]
    assert resultat["summary"]["passed"] > 100
    for objet in yaml.safe_load_all(rendu.read_text(encoding="utf-8")):
        for cle, valeur in (objet["metadata"].get("annotations") or {}).items():
            if cle.startswith("checkov.io/skip"):
                regle, _, raison = valeur.partition("=")
                assert regle.startswith("CKV") and len(raison) > 30, (objet["metadata"]["name"], valeur)
    sautees = {c["check_id"] for c in resultat["results"]["skipped_checks"]}
    assert sautees == {"CKV_K8S_43"}


def test_checkov_passe_sur_le_dockerfile() -> None:
    resultat = _checkov("-f", str(RACINE / "Dockerfile"), "--framework", "dockerfile")
    assert resultat["summary"]["failed"] == 0, resultat["results"]["failed_checks"]
    assert resultat["summary"]["skipped"] == 0 and resultat["summary"]["passed"] > 10


def test_checkov_ne_trouve_aucun_secret_dans_compose_ni_env_exemple(tmp_path: Path) -> None:
    fichiers = [RACINE / "docker-compose.yml", RACINE / ".env.example"]
    arguments = ["--framework", "secrets", "--enable-secret-scan-all-files"]
    resultat = _checkov(*[a for f in fichiers for a in ("-f", str(f))], *arguments)
    assert resultat["summary"]["failed"] == 0, resultat["results"]["failed_checks"]
    # The scan sees secrets in such files: an AWS key put into a copy is found.
    copie = tmp_path / "docker-compose.yml"
    copie.write_text(
        (RACINE / "docker-compose.yml").read_text(encoding="utf-8")
        + '\nx-fuite:\n  cle: "AKIAIOSFODNN7EXAMPLE"\n  secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n',
        encoding="utf-8",
    )
    assert _checkov("-f", str(copie), *arguments)["summary"]["failed"] > 0
