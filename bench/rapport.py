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

from bench import file, lighthouse, ouvert, pilotage, portail

# (key, label, target text, test): the targets the service is held to, in its own units.
OBJECTIFS: list[tuple[str, str, str, Any]] = [
    ("cpu_ouverture_total_ms", "CPU par ouverture, tous processus (ms)", "≤ 40", lambda v: v <= 40.0),
    ("cpu_page_api_ms", "page de la demande : CPU de l'API (ms/req)", "≤ 2", lambda v: v <= 2.0),
    ("sql_page_demande", "page de la demande : requêtes SQL", "≤ 4", lambda v: v <= 4),
    ("ratio_page_vs_une_requete", "page / référence à une requête", "≥ 0.5", lambda v: v >= 0.5),
    ("invitation_p99_s_a_20", "boucle ouverte 20/s : invitation p99 (s)", "< 1", lambda v: v < 1.0),
    ("worker_rss_growth_mb_1k_10k", "mémoire du worker 1k → 10k (Mo)", "< 50", lambda v: v < 50.0),
    ("cycle_20j_s", "cycle de 20 j, serveur à saut de temps (s)", "< 0.25", lambda v: v < 0.25),
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
    ("worker_rss_mb_idle", "RSS worker au repos (Mo)"),
    ("worker_rss_mb_1k", "RSS worker, 1k en attente (Mo)"),
    ("direct_opens_per_s", "Ouvertures directes (→ --attente) /s"),
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


def evaluer(mesures: dict[str, Any], communs: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Each target: its value (from the backend's figures, else the run's common ones such as the
    20-day cycle), and whether it is met (None: not measured in this run)."""
    resultat = {}
    for cle, libelle, cible, test in OBJECTIFS:
        valeur = mesures.get(cle, (communs or {}).get(cle))
        resultat[cle] = {
            "libelle": libelle,
            "cible": cible,
            "valeur": valeur,
            "atteint": None if valeur is None else bool(test(valeur)),
        }
    return resultat


def _ms(valeur: Any) -> str:
    return "—" if valeur is None else f"{valeur:.2f}"


def _cpu_par_operation(nom: str, mesure: dict[str, float] | None) -> str:
    if not mesure:
        return f"  {nom:<28}—"
    parts = [f"{k.removesuffix('_ms')} {v:.1f}" for k, v in mesure.items() if k != "total_ms"]
    return f"  {nom:<28}{mesure.get('total_ms', 0):>7.1f} ms   ({' · '.join(parts)})"


def _base(base: str, r: dict[str, Any]) -> list[str]:
    """One backend's open loop, reads, SQL statements and CPU per operation."""
    lignes: list[str] = []
    ouvertures = r.get("boucle_ouverte_ouvertures")
    if ouvertures:
        lignes += ["", f"Boucle ouverte ({base}) : latences depuis l'instant d'envoi prévu, p50 / p99 :"]
        for m in ouvertures.values():
            lignes.append(ouvert.ligne("ouvertures → invitation", m, "invitation"))
        tenu = r.get("rythme_max_tenu_par_s")
        lignes.append(
            f"  plus haut rythme tenu (invitation p99 < 1 s, sans erreur) : "
            f"{'aucun' if tenu is None else f'{tenu:.0f} ouvertures/s'}"
        )
    deux = r.get("deux_workers")
    if deux:
        lignes.append(f"  un worker / deux workers à {deux['rythme_par_s']:.0f}/s :")
        for nom in ("un", "deux"):
            m = deux[nom]
            lignes.append(
                f"    {nom:<5} invitations reçues {m.get('debit_courriels_par_s', float('nan')):.1f}/s, "
                f"invitation p50 {m.get('invitation_p50_s', float('nan')):.3f} p99 "
                f"{m.get('invitation_p99_s', float('nan')):.3f} s, CPU {m['cpu_ms_par_ouverture'].get('total_ms', 0):.1f} ms/ouverture"
            )
    confirmations = r.get("boucle_ouverte_confirmations")
    if confirmations:
        for m in confirmations.values():
            lignes.append(ouvert.ligne("confirmations → courriel", m, "confirmation"))
    lectures = r.get("lectures_wrk")
    if lectures:
        lignes += ["", f"Lectures par wrk ({base}, boucle fermée), req/s et p50 / p99 (ms) :"]
        references = r.get("references", {})
        for nom, m in [
            *lectures.items(),
            *((f"référence {k}", v) for k, v in references.items() if isinstance(v, dict)),
        ]:
            api = m.get("cpu_ms_par_requete", {}).get("api_ms")
            lignes.append(
                f"  {nom:<26}{m['rps']:>8.0f} req/s  p50 {m['p50_ms']:>7.1f}  p99 {m['p99_ms']:>7.1f}  "
                f"erreurs {m['erreurs']:<4} API {_ms(api)} ms CPU/req  wrk {m['wrk_cpu_pct']:.0f} % d'un cœur"
            )
        if any(
            m.get("requetes") == 0 for m in [*lectures.values(), *references.values()] if isinstance(m, dict)
        ):
            lignes.append(
                "  attention : une mesure sans aucune réponse complète (pages plus lentes que sa durée)"
            )
        if "ratio_page_vs_une_requete" in r:
            lignes.append(f"  page / référence à une requête : {r['ratio_page_vs_une_requete']:.3f}")
        if "ratio_page_vs_nue" in r:
            lignes.append(f"  page / FastAPI nue (JSON constant) : {r['ratio_page_vs_nue']:.3f}")
        if "une_requete_json_identique" in references:
            lignes.append(
                "  JSON de la référence à une requête identique à la page : "
                + _fmt(references["une_requete_json_identique"])
            )
            for difference in references.get("une_requete_json_differences", [])[:5]:
                lignes.append(f"    {difference}")
    sql = r.get("requetes_sql")
    if sql:
        lignes += ["", f"Requêtes SQL par page ({base}) :"]
        for nom, m in sql.items():
            lignes.append(f"  {nom:<26}{m['requetes_sql']:>4}   {m['chemin']} (HTTP {m['statut']})")
    if any(k in r for k in ("cpu_ms_par_ouverture", "cpu_ms_par_confirmation", "lectures_wrk")):
        lignes += ["", f"CPU par opération ({base}), par processus (ms) :"]
        lignes.append(_cpu_par_operation("ouverture (à 10/s)", r.get("cpu_ms_par_ouverture")))
        lignes.append(_cpu_par_operation("confirmation (à 10/s)", r.get("cpu_ms_par_confirmation")))
        for nom, m in (lectures or {}).items():
            lignes.append(_cpu_par_operation(f"lecture {nom}", m.get("cpu_ms_par_requete")))
    return lignes


def tableau(resultats: dict[str, Any]) -> str:
    bases = list(resultats["par_base"])
    largeur = 40
    entete = f"{'Boucle fermée':<{largeur}}" + "".join(f"{b:>14}" for b in bases)
    lignes = [entete, "-" * len(entete)]
    for cle, libelle in LIGNES:
        valeurs = [resultats["par_base"][b].get(cle) for b in bases]
        if all(v is None for v in valeurs):
            continue
        lignes.append(f"{libelle:<{largeur}}" + "".join(f"{_fmt(v):>14}" for v in valeurs))
    if "cycle_20j_s" in resultats:
        lignes.append(
            f"{'Cycle de 20 j (test server), s/cycle':<{largeur}}{resultats['cycle_20j_s']:>14.3f}"
            f"  (sur {resultats['cycles']} cycles, SQLite)"
        )
    for base in bases:
        lignes += _base(base, resultats["par_base"][base])
    for base in bases:
        portail_base = portail.tableau(resultats["par_base"][base])
        if portail_base:
            lignes += [
                "",
                f"Portail ({base}, boucle fermée) : chaque page, temps de réponse sous charge, à côté de l'API :",
                *portail_base,
            ]
    if "file_de_travail" in resultats:
        lignes += ["", *file.tableau(resultats["file_de_travail"])]
    if "lighthouse" in resultats:
        lignes += ["", *lighthouse.tableau(resultats["lighthouse"])]
    if "pilotage" in resultats:
        lignes += ["", *pilotage.tableau(resultats["pilotage"])]
    lignes += ["", "CPU par phase, en % d'un cœur (2 cœurs = 200 %) :"]
    for base in bases:
        for phase in (
            "cpu_baseline",
            "cpu_opens",
            "cpu_portal",
            "cpu_portal_api",
            "cpu_direct_opens",
            "cpu_restart",
        ):
            mesure = resultats["par_base"][base].get(phase)
            if mesure:
                lignes.append(f"  {base:<11}{phase.removeprefix('cpu_'):<14}{_pourcents(mesure)}")
    lignes += ["", *objectifs(resultats)]
    lignes.append(f"Durée totale du banc : {resultats['wall_time_s']:.0f} s")
    return "\n".join(lignes)


def objectifs(resultats: dict[str, Any]) -> list[str]:
    """The targets, last: value, target, met."""
    bases = list(resultats["par_base"])
    largeur = 46
    entete = f"{'Objectif':<{largeur}}" + "".join(f"{b:>14}" for b in bases) + f"  {'cible':<8} atteint"
    lignes = [entete, "-" * len(entete)]
    for cle, libelle, cible, _ in OBJECTIFS:
        evalues = [resultats["par_base"][b].get("objectifs", {}).get(cle, {}) for b in bases]
        valeurs = "".join(f"{_fmt(e.get('valeur')):>14}" for e in evalues)
        atteints = "/".join("non mesuré" if e.get("atteint") is None else _fmt(e["atteint"]) for e in evalues)
        lignes.append(f"{libelle:<{largeur}}{valeurs}  {cible:<8} {atteints}")
    return lignes


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


def dessiner(chemin: Path, invitations: dict[str, list[float]], ouvertes: dict[str, list[float]]) -> None:
    figure, (gauche, droite) = plt.subplots(1, 2, figsize=(13, 5))
    for base, valeurs in invitations.items():
        _ecdf(gauche, valeurs, base)
    gauche.axvline(1.0, color="red", linestyle="--", linewidth=1, label="cible p99 < 1 s")
    gauche.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    gauche.set_xscale("log")
    gauche.set_xlabel("secondes (appel POST → invitation reçue au puits SMTP)")
    gauche.set_ylabel("fraction cumulée")
    gauche.set_title("Ouverture → invitation (boucle fermée)")
    gauche.legend(loc="lower right")
    gauche.grid(True, which="both", alpha=0.3)
    for nom, valeurs in ouvertes.items():
        _ecdf(droite, valeurs, nom)
    droite.axvline(1.0, color="red", linestyle="--", linewidth=1, label="cible p99 < 1 s")
    droite.axhline(0.99, color="grey", linestyle=":", linewidth=1)
    droite.set_xscale("log")
    droite.set_xlabel("secondes depuis l'instant d'envoi prévu → courriel reçu au puits SMTP")
    droite.set_title("Boucle ouverte : par rythme")
    droite.legend(loc="lower right", fontsize="small")
    droite.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(chemin, dpi=110)
    plt.close(figure)
