"""The worker's /metrics server on its own: it still answers with its own metrics when the
Temporal SDK's endpoint cannot be read, and says so."""

from __future__ import annotations

import asyncio
import urllib.request

from modif_solde.metriques import ServeurMetriques
from tests.metriques.lecture import lire, valeur
from tests.processus import port_libre


def lire_metriques(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reponse:
        return str(reponse.read().decode())


async def test_sans_les_metriques_du_sdk_le_worker_repond_et_le_dit() -> None:
    # A loopback port nothing listens on: the SDK's endpoint is gone.
    serveur = ServeurMetriques(
        "127.0.0.1", port_libre(), None, url_sdk=f"http://127.0.0.1:{port_libre()}/metrics"
    )
    serveur.demarrer()
    try:
        echantillons = lire(await asyncio.to_thread(lire_metriques, serveur.port))
    finally:
        serveur.arreter()
    assert valeur(echantillons, "modif_solde_temporal_sdk_lisible") == 0
    assert ("modif_solde_modifications_total", frozenset({("evenement", "ouverte")})) in echantillons
    assert not any(nom.startswith("temporal_") for nom, _ in echantillons)


def test_un_serveur_jamais_demarre_s_arrete() -> None:
    """The worker stops it when Temporal could not be reached, before it ever served."""
    ServeurMetriques("127.0.0.1", port_libre(), None, url_sdk=None).arreter()
