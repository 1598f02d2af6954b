"""The results: the printed table, the JSON file and the latency plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
import numpy as np

from bench import file, portail

# (key, label, target text, test) — the four targets of the brief.
OBJECTIFS: list[tuple[str, str, str, Any]] = [
    ("ratio_opens_vs_baseline", "ouvertures / démarrages bruts", "≥ 0.5", lambda v: v >= 0.5),
    ("open_to_invitation_p99_s", "ouverture → invitation p99", "< 1 s", lambda v: v < 1.0),
    ("ratio_api_vs_baseline", "lectures API / FastAPI nue", "≥ 0.5", lambda v: v >= 0.5),
    ("worker_rss_growth_mb_1k_10k", "mémoire worker 1k → 10k", "< 50 Mo", lambda v: v < 50.0),
]

LIGNES: list[tuple[str, str]] = [
    ("import_per_s", "Import (service) /s"),
    ("opens_per_s", "Ouvertures par l'API /s"),
    ("opens_errors", "  ouvertures en erreur"),
    ("baseline_starts_per_s", "Démarrages bruts (no-op) /s"),
    ("baseline_all_completed_s", "  no-op : tous finis en (s)"),
    ("baseline_completed_per_s", "  no-op finis /s"),
    ("ratio_opens_vs_baseline", "Ratio ouvertures / bruts"),
    ("ratio_opens_vs_baseline_completed", "  ratio ouvertures / no-op finis"),
    ("open_http_p50_s", "POST ouverture p50 (s)"),
    ("open_http_p99_s", "POST ouverture p99 (s)"),
    ("open_to_invitation_p50_s", "Ouverture → invitation p50 (s)"),
    ("open_to_invitation_p95_s", "Ouverture → invitation p95 (s)"),
    ("open_to_invitation_p99_s", "Ouverture → invitation p99 (s)"),
    ("invitations_missing", "  invitations manquantes"),
    ("unloaded_open_http_p50_s", "À vide (1 à la fois) : POST p50 (s)"),
    ("unloaded_open_to_invitation_p50_s", "À vide : ouverture → invitation p50 (s)"),
    ("unloaded_open_to_invitation_max_s", "À vide : ouverture → invitation max (s)"),
    ("api_get_p50_ms", "GET page p50 (ms)"),
    ("api_get_p99_ms", "GET page p99 (ms)"),
    ("api_get_rps", "GET page req/s"),
    ("baseline_api_rps", "FastAPI nue req/s"),
    ("baseline_api_p99_ms", "FastAPI nue p99 (ms)"),
    ("ratio_api_vs_baseline", "Ratio GET / nue"),
    ("worker_rss_mb_idle", "RSS worker au repos (Mo)"),
    ("worker_rss_mb_1k", "RSS worker, 1k en attente (Mo)"),
    ("direct_opens_per_s", "Ouvertures directes (9k) /s"),
    ("worker_rss_mb_10k", "RSS worker, 10k en attente (Mo)"),
    ("worker_rss_growth_mb_1k_10k", "Croissance RSS 1k → 10k (Mo)"),
    ("restart_poller_s", "Redémarrage : worker à l'écoute (s)"),
    ("restart_first_query_s", "Redémarrage : 1re requête etat (s)"),
    ("restart_sample_all_answered_s", "Redémarrage : échantillon répondu (s)"),
    ("worker_rss_mb_after_restart", "RSS worker après reprise (Mo)"),
]


def _fmt(valeur: Any) -> str:
    if valeur is None:
        return "—"
    if isinstance(valeur, bool):
        return "oui" if valeur else "non"
    if isinstance(valeur, float):
        return f"{valeur:.3f}" if abs(valeur) < 10 else f"{valeur:.1f}"
    return str(valeur)


def evaluer(mesures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    resultat = {}
    for cle, libelle, cible, test in OBJECTIFS:
        valeur = mesures.get(cle)
        resultat[cle] = {
            "libelle": libelle,
            "cible": cible,
            "valeur": valeur,
            "atteint": None if valeur is None else bool(test(valeur)),
        }
    return resultat


def tableau(resultats: dict[str, Any]) -> str:
    bases = list(resultats["par_base"])
    cibles = {cle: cible for cle, _, cible, _ in OBJECTIFS}
    largeur = 40
    entete = f"{'Mesure':<{largeur}}" + "".join(f"{b:>14}" for b in bases) + f"  {'cible':<10} atteinte"
    lignes = [entete, "-" * len(entete)]
    for cle, libelle in LIGNES:
        valeurs = [resultats["par_base"][b].get(cle) for b in bases]
        if all(v is None for v in valeurs):
            continue
        ligne = f"{libelle:<{largeur}}" + "".join(f"{_fmt(v):>14}" for v in valeurs)
        if cle in cibles:
            atteintes = [
                resultats["par_base"][b].get("objectifs", {}).get(cle, {}).get("atteint") for b in bases
            ]
            ligne += f"  {cibles[cle]:<10} " + "/".join(_fmt(a) for a in atteintes)
        lignes.append(ligne)
    if "cycle_20j_s" in resultats:
        lignes.append(
            f"{'Cycle de 20 j (test server), s/cycle':<{largeur}}{resultats['cycle_20j_s']:>14.3f}"
            f"  (sur {resultats['cycles']} cycles, SQLite)"
        )
    lignes.append(f"{'Durée totale du banc (s)':<{largeur}}{resultats['wall_time_s']:>14.1f}")
    for base in bases:
        portail_base = portail.tableau(resultats["par_base"][base])
        if portail_base:
            lignes += [
                "",
                f"Portail ({base}) : chaque page, temps de réponse sous charge, à côté de l'API :",
                *portail_base,
            ]
    if "file_de_travail" in resultats:
        lignes += ["", *file.tableau(resultats["file_de_travail"])]
    lignes += ["", "CPU par phase, en % d'un cœur (2 cœurs = 200 %) :"]
    for base in bases:
        for phase in (
            "cpu_baseline",
            "cpu_opens",
            "cpu_reads",
            "cpu_portal",
            "cpu_portal_api",
            "cpu_direct_opens",
            "cpu_restart",
        ):
            mesure = resultats["par_base"][base].get(phase)
            if mesure:
                lignes.append(f"  {base:<11}{phase.removeprefix('cpu_'):<14}{_pourcents(mesure)}")
    if "baseline_api" in resultats:
        cpu_nue = resultats["baseline_api"]["cpu_reads"]
        lignes.append(f"  {'nue':<11}{'reads':<14}{_pourcents(cpu_nue)}")
        if cpu_nue.get("bench_cpu_s", 0) > 0.85 * cpu_nue["duree_s"]:
            # Then the bare figure is the client's ceiling, not FastAPI's: the ratio is an upper bound.
            lignes.append(
                "  note : FastAPI nue limitée par le client (banc ≥ 85 % d'un cœur) : "
                "le ratio GET / nue est un majorant"
            )
    return "\n".join(lignes)


def _pourcents(mesure: dict[str, float]) -> str:
    duree = mesure["duree_s"] or 1.0
    parts = [
        f"{nom.removesuffix('_cpu_s')} {100 * v / duree:.0f}%"
        for nom, v in mesure.items()
        if nom.endswith("_cpu_s") and v > 0.05
    ]
    return " · ".join(parts)


def ecrire_json(chemin: Path, resultats: dict[str, Any]) -> None:
    temporaire = chemin.with_suffix(".json.tmp")
    temporaire.write_text(json.dumps(resultats, indent=2, ensure_ascii=False, default=str) + "\n")
    temporaire.replace(chemin)


def _ecdf(axe: Any, valeurs: Sequence[float], libelle: str) -> None:
    if not valeurs:
        return
    x = np.sort(np.asarray(valeurs))
    y = np.arange(1, len(x) + 1) / len(x)
    axe.step(x, y, where="post", label=f"{libelle} (n={len(x)})")


def dessiner(chemin: Path, invitations: dict[str, list[float]], lectures: dict[str, list[float]]) -> None:
    figure, (gauche, droite) = plt.subplots(1, 2, figsize=(13, 5))
    for base, valeurs in invitations.items():
        _ecdf(gauche, valeurs, base)
    gauche.axvline(1.0, color="red", linestyle="--", linewidth=1, label="cible p99 < 1 s")
    gauche.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    gauche.set_xscale("log")
    gauche.set_xlabel("secondes (appel POST → invitation reçue au puits SMTP)")
    gauche.set_ylabel("fraction cumulée")
    gauche.set_title("Ouverture → invitation")
    gauche.legend(loc="lower right")
    gauche.grid(True, which="both", alpha=0.3)
    for nom, valeurs in lectures.items():
        _ecdf(droite, [v * 1000 for v in valeurs], nom)
    droite.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    droite.set_xscale("log")
    droite.set_xlabel("millisecondes par GET (50 clients concurrents)")
    droite.set_title("GET /api/v1/demandes/{numero} vs FastAPI nue")
    droite.legend(loc="lower right")
    droite.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(chemin, dpi=110)
    plt.close(figure)
