"""The Grafana dashboard (deploiement/grafana/tableaux/): every panel's query names metrics that
really exist, read from a real API, a real worker (with the Temporal SDK's metrics) and a real
`temporal server start-dev --metrics-port …`, after a cycle has run through them (an opening,
its invitation, a refused confirmation: what the panels plot)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from modif_solde.api.auth import Role, emettre_jeton
from tests.fautes import conftest as fautes
from tests.fautes.conftest import SECRET, SIRET, Pile, attendre
from tests.processus import Processus, commande_modif_solde, port_libre

pile = fautes.pile
smtp = fautes.smtp

RACINE = Path(__file__).resolve().parents[2]
TABLEAU = RACINE / "deploiement" / "grafana" / "tableaux" / "modif-solde.json"
JETON = "jeton-des-metriques-0123456789-abcdef"
NUMERO = "FINMSS000007"

# PromQL's words that are not metric names.
_MOTS_PROMQL = {
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "by",
    "without",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "abs",
    "absent",
    "clamp_min",
    "clamp_max",
    "topk",
    "bottomk",
    "le",
}


def metriques_nommees(expression: str) -> set[str]:
    """The metric names of a PromQL expression: label matchers, grouping clauses, strings,
    durations and numbers taken out, what remains are functions, operators and metrics."""
    texte = re.sub(r'"[^"]*"', "", expression)
    texte = re.sub(r"\{[^}]*\}", "", texte)
    texte = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", texte)
    texte = re.sub(r"\[[^\]]*\]", "", texte)
    jetons = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", texte)
    return {j for j in jetons if j not in _MOTS_PROMQL}


def noms_exposes(texte: str) -> set[str]:
    """The series names as Prometheus stores them: each sample line's name, as written (the
    parser of prometheus_client would add `_total` to the server's counters)."""
    assert list(text_string_to_metric_families(texte))  # well-formed exposition text
    return set(re.findall(r"^([A-Za-z_:][A-Za-z0-9_:]*)[{ ]", texte, re.MULTILINE))


def requetes_du_tableau() -> list[tuple[str, str]]:
    tableau: dict[str, Any] = json.loads(TABLEAU.read_text(encoding="utf-8"))
    return [
        (panneau["title"], cible["expr"])
        for panneau in tableau["panels"]
        if panneau["type"] != "row"
        for cible in panneau["targets"]
    ]


def test_les_requetes_sont_lues_comme_il_faut() -> None:
    assert metriques_nommees(
        'histogram_quantile(0.95, sum by (le, operation) (rate(service_latency_bucket{service_name="frontend"}[5m])))'
    ) == {"service_latency_bucket"}
    assert metriques_nommees('1 - sum(rate(a_bucket{le="1"}[1h])) / sum(rate(a_count[1h]))') == {
        "a_bucket",
        "a_count",
    }


async def test_chaque_panneau_interroge_des_metriques_reellement_exportees(
    pile: Pile, donnees: dict[str, Any], tmp_path: Path
) -> None:
    requetes = requetes_du_tableau()
    assert len(requetes) >= 15 and all(metriques_nommees(expr) for _, expr in requetes)

    await pile.importer(donnees, NUMERO)
    port_api, port_worker = port_libre(), port_libre()
    env = pile.env(MODIF_SOLDE_METRIQUES_JETON=JETON, MODIF_SOLDE_METRIQUES_PORT=str(port_worker))
    worker = Processus("worker", commande_modif_solde("worker"), tmp_path / "worker.log", env)
    api = Processus(
        "api",
        commande_modif_solde("api", "--host", "127.0.0.1", "--port", str(port_api)),
        tmp_path / "api.log",
        env,
    )
    for processus in (worker, api):
        processus.demarrer()
        pile.processus.append(processus)
    entetes = {"Authorization": f"Bearer {JETON}"}
    async with httpx.AsyncClient(timeout=30) as http:

        async def api_prete() -> bool:
            try:
                return (await http.get(f"http://127.0.0.1:{port_api}/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await attendre(api_prete, 60, f"l'API répond : {api.sortie()}")
        await pile.ouvrir(NUMERO, timedelta(days=10), timedelta(days=20))
        await attendre(lambda: pile.boite.types(f"{NUMERO}M1") == ["invitation"], 60, "l'invitation part")
        operateur = emettre_jeton(SECRET, "operateur.test", Role.OPERATEUR, SIRET)
        r = await http.post(
            f"http://127.0.0.1:{port_api}/api/v1/modifications/{NUMERO}M1/confirmer",
            headers={"Authorization": f"Bearer {operateur}", "If-Match": '"999"'},
        )
        assert r.status_code == 412, r.text

        async def exportes() -> set[str]:
            noms: set[str] = set()
            for url, avec_jeton in (
                (f"http://127.0.0.1:{port_api}/metrics", True),
                (f"http://127.0.0.1:{port_worker}/metrics", True),
                (f"http://127.0.0.1:{pile.temporal.port_metriques}/metrics", False),
            ):
                reponse = await http.get(url, headers=entetes if avec_jeton else {})
                assert reponse.status_code == 200, url
                noms |= noms_exposes(reponse.text)
            return noms

        attendues = set().union(*(metriques_nommees(expr) for _, expr in requetes))
        noms: set[str] = set()

        async def toutes_exportees() -> bool:
            nonlocal noms
            noms = await exportes()
            return attendues <= noms

        try:
            await attendre(toutes_exportees, 60, "chaque métrique du tableau est exportée")
        except AssertionError:
            pass
    manquantes = {
        titre: sorted(metriques_nommees(expr) - noms)
        for titre, expr in requetes
        if metriques_nommees(expr) - noms
    }
    assert not manquantes, f"métriques absentes de l'API, du worker et du serveur Temporal : {manquantes}"
