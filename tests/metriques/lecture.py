"""Reading a /metrics answer: every sample by name and labels."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

Echantillons = dict[tuple[str, frozenset[tuple[str, str]]], float]
# A request or modification number: never in a label (bounded cardinality, no personal trail).
NUMERO = re.compile(r"FINMSS\d")


def lire(texte: str) -> Echantillons:
    return {
        (e.name, frozenset(e.labels.items())): e.value
        for famille in text_string_to_metric_families(texte)
        for e in famille.samples
    }


def valeur(echantillons: Echantillons, nom: str, **etiquettes: str) -> float:
    """The sample's value; 0 when the series is not there yet."""
    return echantillons.get((nom, frozenset(etiquettes.items())), 0.0)


def etiquettes_avec_un_numero(echantillons: Echantillons) -> list[tuple[str, str, str]]:
    return [(nom, cle, v) for nom, etiquettes in echantillons for cle, v in etiquettes if NUMERO.search(v)]
