"""The service's counters, gauges and histograms (prometheus_client), and the one-line hooks the
activities and the e-mail service call once an outcome is written: a leaf module (no web, no
database), which the worker's and the API's /metrics expose (metriques.py, api/metriques.py).

Two registries, one per role, so that each process exposes only what it measures:
- the API's (`REGISTRE_API`): HTTP requests by route template and status, their latency, and the
  open modifications read from the database at scrape time (open, due within 48 h, overdue);
- the worker's (`REGISTRE_WORKER`): modifications opened, closed (by outcome) and extended, e-mails
  sent / retried / failed by kind, the time from the invitation to the operator's answer, plus
  the Temporal SDK's own metrics (read from the SDK's loopback endpoint and merged in).

Counters live in the process: with several replicas, each exposes its own and Prometheus sums
them (`sum(rate(...))`). The gauges read from the database are the same on every API replica:
alert rules take their `max`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from modif_solde.models.enums import StatutModification, TypeCourriel

if TYPE_CHECKING:
    from modif_solde.services.modifications import Cloture

# No `_created` series beside each counter: they double the output for nothing the rules use.
disable_created_metrics()

REGISTRE_API = CollectorRegistry()
REGISTRE_WORKER = CollectorRegistry()
# The API's gauges read the database at most this often, whatever the number of scrapers.
CACHE_ECHEANCES = 5.0
for _registre in (REGISTRE_API, REGISTRE_WORKER):
    ProcessCollector(registry=_registre)
    PlatformCollector(registry=_registre)

# --- API ---

HTTP_REQUETES = Counter(
    "modif_solde_http_requetes",
    "Requêtes HTTP traitées, par méthode, modèle de route (jamais le chemin brut) et statut.",
    ["methode", "route", "statut"],
    registry=REGISTRE_API,
)
HTTP_DUREE = Histogram(
    "modif_solde_http_duree_secondes",
    "Durée de traitement des requêtes HTTP, par méthode et modèle de route.",
    ["methode", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRE_API,
)
MODIFICATIONS_OUVERTES = Gauge(
    "modif_solde_modifications_ouvertes",
    "Modifications ouvertes, lues dans la base au moment de la collecte.",
    registry=REGISTRE_API,
)
MODIFICATIONS_ECHEANCE_48H = Gauge(
    "modif_solde_modifications_echeance_48h",
    "Modifications ouvertes dont l'échéance tombe dans les 48 heures.",
    registry=REGISTRE_API,
)
MODIFICATIONS_ECHEANCE_DEPASSEE = Gauge(
    "modif_solde_modifications_echeance_depassee",
    "Modifications encore ouvertes 15 minutes après leur échéance : leur workflow aurait dû les clore.",
    registry=REGISTRE_API,
)


# --- Worker ---

EVENEMENTS = ("ouverte", "confirmee", "renoncee", "expiree", "retiree", "prolongee")
MODIFICATIONS = Counter(
    "modif_solde_modifications",
    "Modifications ouvertes, closes (par issue) ou prolongées, une fois l'issue enregistrée.",
    ["evenement"],
    registry=REGISTRE_WORKER,
)
RESULTATS_COURRIEL = ("envoye", "reessai", "echec")
COURRIELS = Counter(
    "modif_solde_courriels",
    "Courriels acceptés par le serveur SMTP (envoye), refusés pour un temps et réessayés (reessai), "
    "abandonnés (echec), par type.",
    ["type", "resultat"],
    registry=REGISTRE_WORKER,
)
_HEURE, _JOUR = 3600.0, 86400.0
DELAI_REPONSE = Histogram(
    "modif_solde_delai_reponse_secondes",
    "Temps entre l'invitation (ouverture) et la réponse de l'opérateur (confirmation ou renonciation).",
    ["issue"],
    buckets=(_HEURE, 6 * _HEURE, *(j * _JOUR for j in (1, 2, 3, 5, 7, 10, 14, 20, 30, 60))),
    registry=REGISTRE_WORKER,
)

# The daily maintenance (workflows/entretien.py): gauges of the worker that ran it last; with
# several workers, rules take the `max` (the others stay at 0).
VERIFICATION_DIFFERENCES = Gauge(
    "modif_solde_verification_differences",
    "Différences entre la base, Temporal et le stockage trouvées par la dernière vérification de ce worker.",
    registry=REGISTRE_WORKER,
)
VERIFICATION_FAITE_LE = Gauge(
    "modif_solde_verification_faite_le_secondes",
    "Heure (epoch) de la dernière vérification menée à bien par ce worker.",
    registry=REGISTRE_WORKER,
)
DEMANDES_PURGEES = Counter(
    "modif_solde_demandes_purgees",
    "Demandes dont les données personnelles, les courriels et les pièces ont été supprimés (durée de conservation).",
    registry=REGISTRE_WORKER,
)

# Every series exists from the start (at 0): rate() and increase() see the first event.
for _evenement in EVENEMENTS:
    MODIFICATIONS.labels(_evenement)
# The cycle's e-mails, and the answer to an operator's report sent outside the cycle.
TYPES_COURRIEL = (*(t.value for t in TypeCourriel), "signalement_sans_suite")
for _type in TYPES_COURRIEL:
    for _resultat in RESULTATS_COURRIEL:
        COURRIELS.labels(_type, _resultat)
for _issue in (StatutModification.CONFIRMEE, StatutModification.RENONCEE):
    DELAI_REPONSE.labels(_issue.value)


# --- Hooks: one line where the outcome is written ---


def modification_ouverte() -> None:
    MODIFICATIONS.labels("ouverte").inc()


def modification_prolongee() -> None:
    MODIFICATIONS.labels("prolongee").inc()


def modification_cloturee(cloture: Cloture) -> None:
    """A close written now (not a repeat of one already done): its outcome, and for the
    operator's own answers the time since the invitation."""
    if cloture.deja_fait:
        return
    modification = cloture.modification
    statut = StatutModification(modification.statut)
    MODIFICATIONS.labels(statut.value).inc()
    if statut in (StatutModification.CONFIRMEE, StatutModification.RENONCEE) and modification.cloturee_le:
        delai = (modification.cloturee_le - modification.ouverte_le).total_seconds()
        DELAI_REPONSE.labels(statut.value).observe(max(delai, 0.0))


def verification_faite(differences: int) -> None:
    VERIFICATION_DIFFERENCES.set(differences)
    VERIFICATION_FAITE_LE.set(time.time())


def purge_faite(demandes: int) -> None:
    DEMANDES_PURGEES.inc(demandes)


def courriel(type_courriel: str, resultat: str) -> None:
    """`resultat`: envoye, reessai or echec (RESULTATS_COURRIEL)."""
    if type_courriel not in TYPES_COURRIEL:  # a bounded set of series
        raise ValueError(f"type de courriel inconnu : {type_courriel}")
    COURRIELS.labels(type_courriel, resultat).inc()
