"""E-mails by kind and outcome: accepted, refused for a time (retried), refused for good or given
up; the e-mail activity run as Temporal runs it, against real SMTP servers that misbehave."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from temporalio.testing import ActivityEnvironment

from modif_solde.activities.modification import ActivitesModification
from modif_solde.compteurs import REGISTRE_WORKER
from modif_solde.models.enums import StatutEnvoi, TypeCourriel
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.workflows.contrat import EchecCourrielActivite
from tests.activities.test_envoi_courriel import NUMERO, OPERATEUR, envoyer, ouverte  # noqa: F401
from tests.fautes.serveurs_smtp import BoiteEncombree, BoiteQuiRefuse
from tests.workflows.conftest import BoiteAuxLettres, port_libre

RESULTATS = ("envoye", "reessai", "echec")


def compteurs(type_courriel: TypeCourriel) -> dict[str, float]:
    return {
        r: REGISTRE_WORKER.get_sample_value(
            "modif_solde_courriels_total", {"type": type_courriel.value, "resultat": r}
        )
        or 0.0
        for r in RESULTATS
    }


def moins(apres: dict[str, float], avant: dict[str, float]) -> dict[str, float]:
    return {r: apres[r] - avant[r] for r in RESULTATS}


@pytest.fixture
def vers(activites: ActivitesModification) -> Iterator[object]:
    controllers: list[Controller] = []

    def demarrer(boite: BoiteAuxLettres) -> ActivitesModification:
        port = port_libre()
        controller = Controller(boite, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return dataclasses.replace(activites, expediteur=ExpediteurSmtp(f"smtp://127.0.0.1:{port}"))

    yield demarrer
    for controller in controllers:
        controller.stop()


@pytest.mark.usefixtures("ouverte")
async def test_un_refus_temporaire_compte_un_reessai_puis_un_envoi(vers: object) -> None:
    boite = BoiteEncombree()
    acts = vers(boite)  # type: ignore[operator]
    avant = compteurs(TypeCourriel.INVITATION)
    with pytest.raises(Exception):  # noqa: B017 (left to Temporal's retries, whatever the error)
        await envoyer(acts, TypeCourriel.INVITATION)
    assert moins(compteurs(TypeCourriel.INVITATION), avant) == {"envoye": 0, "reessai": 1, "echec": 0}
    boite.encombree = False
    assert (await envoyer(acts, TypeCourriel.INVITATION)).statut == StatutEnvoi.ENVOYE
    # Run again (a repeated activity): already sent, not counted again.
    assert (await envoyer(acts, TypeCourriel.INVITATION)).statut == StatutEnvoi.ENVOYE
    assert moins(compteurs(TypeCourriel.INVITATION), avant) == {"envoye": 1, "reessai": 1, "echec": 0}


@pytest.mark.usefixtures("ouverte")
async def test_un_refus_definitif_compte_un_echec_une_fois(vers: object) -> None:
    acts = vers(BoiteQuiRefuse(OPERATEUR))  # type: ignore[operator]
    avant = compteurs(TypeCourriel.RELANCE)
    autres = compteurs(TypeCourriel.INVITATION)
    assert (await envoyer(acts, TypeCourriel.RELANCE)).statut == StatutEnvoi.ECHEC
    assert (await envoyer(acts, TypeCourriel.RELANCE)).statut == StatutEnvoi.ECHEC
    assert moins(compteurs(TypeCourriel.RELANCE), avant) == {"envoye": 0, "reessai": 0, "echec": 1}
    # Counted under its own kind only.
    assert compteurs(TypeCourriel.INVITATION) == autres


@pytest.mark.usefixtures("ouverte")
async def test_un_courriel_abandonne_par_le_workflow_compte_un_echec(vers: object) -> None:
    acts = vers(BoiteEncombree())  # type: ignore[operator]
    avant = compteurs(TypeCourriel.INVITATION)
    with pytest.raises(Exception):  # noqa: B017
        await envoyer(acts, TypeCourriel.INVITATION)
    abandon = EchecCourrielActivite(
        modification_numero=NUMERO, type=TypeCourriel.INVITATION, erreur="Abandon après trois jours d'essais"
    )
    for _ in range(2):
        resultat = await ActivityEnvironment().run(acts.noter_echec_courriel, abandon)
        assert resultat.statut == StatutEnvoi.ECHEC
    assert moins(compteurs(TypeCourriel.INVITATION), avant) == {"envoye": 0, "reessai": 1, "echec": 1}
