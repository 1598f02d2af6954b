"""A real Prometheus (Debian's, `make prometheus`) on loopback scrapes a real API process and a
real worker process with the metrics token, and evaluates the alert rules of the repository."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

from modif_solde.api.auth import Role, emettre_jeton
from tests.fautes import conftest as fautes
from tests.fautes.conftest import SECRET, SIRET, Pile, attendre
from tests.processus import Processus, commande_modif_solde, port_libre

# The fault suite's stack: a real SMTP server, the service's database (the Temporal dev server
# is the root conftest's `temporal`).
pile = fautes.pile
smtp = fautes.smtp

RACINE = Path(__file__).resolve().parents[2]
ALERTES = RACINE / "deploiement" / "prometheus" / "alertes.yml"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
JETON = "jeton-des-metriques-0123456789-abcdef"
NUMERO = "FINMSS000001"


def configuration(dossier: Path, api: int, worker: int) -> Path:
    """The repository's rules, the two targets on loopback, scraped and evaluated every second."""
    jeton = dossier / "jeton-metriques"
    jeton.write_text(JETON)
    autorisation = {"credentials_file": str(jeton)}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTES)],
        "scrape_configs": [
            {
                "job_name": "modif-solde-api",
                "authorization": autorisation,
                "static_configs": [{"targets": [f"127.0.0.1:{api}"]}],
            },
            {
                "job_name": "modif-solde-worker",
                "authorization": autorisation,
                "static_configs": [{"targets": [f"127.0.0.1:{worker}"]}],
            },
        ],
    }
    chemin = dossier / "prometheus.yml"
    chemin.write_text(yaml.safe_dump(config))
    return chemin


async def requete(prometheus: httpx.AsyncClient, expression: str) -> list[dict[str, Any]]:
    r = await prometheus.get("/api/v1/query", params={"query": expression})
    assert r.status_code == 200, r.text
    return list(r.json()["data"]["result"])


async def test_prometheus_collecte_l_api_et_le_worker_et_evalue_les_alertes(
    pile: Pile, donnees: dict[str, Any], tmp_path: Path
) -> None:
    await pile.importer(donnees, NUMERO)
    port_api, port_worker, port_prometheus = port_libre(), port_libre(), port_libre()
    env = pile.env(MODIF_SOLDE_METRIQUES_JETON=JETON, MODIF_SOLDE_METRIQUES_PORT=str(port_worker))
    worker = Processus("worker", commande_modif_solde("worker"), tmp_path / "worker.log", env)
    api = Processus(
        "api",
        commande_modif_solde("api", "--host", "127.0.0.1", "--port", str(port_api)),
        tmp_path / "api.log",
        env,
    )
    dossier = tmp_path / "prometheus"
    (dossier / "tsdb").mkdir(parents=True)
    prometheus = Processus(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={configuration(dossier, port_api, port_worker)}",
            f"--storage.tsdb.path={dossier / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port_prometheus}",
        ],
        tmp_path / "prometheus.log",
    )
    for processus in (worker, api, prometheus):
        processus.demarrer()
        pile.processus.append(processus)

    await pile.ouvrir(NUMERO, timedelta(days=10), timedelta(days=20))
    jeton = emettre_jeton(SECRET, "operateur.test", Role.OPERATEUR, SIRET)
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_api}") as http,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_prometheus}") as client,
    ):

        async def api_pret() -> bool:
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await attendre(api_pret, 60, f"l'API répond : {api.sortie()}")
        # A refused confirmation (the draft changed since its reading): an activity fails.
        r = await http.post(
            f"/api/v1/modifications/{NUMERO}M1/confirmer",
            headers={"Authorization": f"Bearer {jeton}", "If-Match": '"999"'},
        )
        assert r.status_code == 412, r.text

        async def cibles_en_service() -> bool:
            try:
                resultats = await requete(client, "up")
            except httpx.TransportError:
                return False
            return {(e["metric"]["job"], e["value"][1]) for e in resultats} == {
                ("modif-solde-api", "1"),
                ("modif-solde-worker", "1"),
            }

        await attendre(cibles_en_service, 90, f"Prometheus collecte les deux cibles : {prometheus.sortie()}")

        async def ouverture_collectee() -> bool:
            ouvertes = await requete(client, 'modif_solde_modifications_total{evenement="ouverte"}')
            invitations = await requete(
                client, 'modif_solde_courriels_total{type="invitation", resultat="envoye"}'
            )
            echecs = await requete(client, "temporal_activity_execution_failed_total")
            return (
                [e["value"][1] for e in ouvertes] == ["1"]
                and [e["value"][1] for e in invitations] == ["1"]
                and bool(echecs)
            )

        await attendre(ouverture_collectee, 90, "Prometheus voit l'ouverture, l'invitation et l'échec")
        (ouvertes,) = await requete(client, "modif_solde_modifications_ouvertes")
        assert ouvertes["metric"]["job"] == "modif-solde-api" and ouvertes["value"][1] == "1"
        # The SDK's metrics the alert rules read, under the names the rules use.
        echecs = await requete(client, "temporal_activity_execution_failed_total")
        assert {e["metric"]["activity_type"] for e in echecs} == {"confirmer_modification"}
        assert {e["metric"]["job"] for e in echecs} == {"modif-solde-worker"}
        assert await requete(client, 'temporal_num_pollers{job="modif-solde-worker"}')

        async def regles_evaluees() -> list[dict[str, Any]] | None:
            r = await client.get("/api/v1/rules")
            assert r.status_code == 200, r.text
            regles = [regle for groupe in r.json()["data"]["groups"] for regle in groupe["rules"]]
            evaluees = all(regle["lastEvaluation"] > "2000" for regle in regles)
            return regles if evaluees else None

        await attendre(regles_evaluees, 60, "les règles sont évaluées")
        regles = await regles_evaluees()
        assert regles is not None
        groupes = yaml.safe_load(ALERTES.read_text(encoding="utf-8"))["groups"]
        attendues = [r.get("alert") or r["record"] for g in groupes for r in g["rules"]]
        assert [regle["name"] for regle in regles] == attendues
        assert [(regle["name"], regle["health"]) for regle in regles] == [(nom, "ok") for nom in attendues]
        # Everything runs: nothing fires (ModifSoldeActivitesEnEchecDepuisUneHeure waits an hour).
        assert await requete(client, 'ALERTS{alertstate="firing"}') == []
