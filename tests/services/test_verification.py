"""`modif-solde verifier`: the database and Temporal compared, the safe repairs made.

On the real Temporal dev server (the time-skipping one cannot list workflows by query), with
the real worker and activities, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.worker import Worker

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutModification
from modif_solde.models.tables import Courriel, Demande, Historique, Modification, Piece
from modif_solde.models.types import maintenant
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.envoi import ExpediteurSmtp
from modif_solde.services.stockage import Stockage, StockageDossier
from modif_solde.services.verification import Ecart, reparer, verifier
from modif_solde.temporal import demarrer_modification
from modif_solde.worker import construire_worker
from modif_solde.workflows.contrat import ActionOperateur, Retrait
from modif_solde.workflows.modification import ModificationWorkflow
from tests.conftest import ServeurS3
from tests.constructeurs import COMMENTAIRE_SITE, entree_modification
from tests.processus import ServeurTemporalDev, port_libre, temporal_dev
from tests.workflows import conftest as temporal
from tests.workflows.conftest import GESTIONNAIRES, ServeurSmtp

# The real SMTP server of the workflow tests.
serveur_smtp = temporal.serveur_smtp
smtp = temporal.smtp

pytestmark = pytest.mark.temporal


@pytest.fixture(scope="module")
async def serveur_dev(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServeurTemporalDev]:
    async with temporal_dev(tmp_path_factory.mktemp("temporal-verifier")) as serveur:
        yield serveur


@pytest.fixture
async def client(serveur_dev: ServeurTemporalDev) -> AsyncIterator[Client]:
    """The server's client; the workflows a test leaves running are ended after it, so that
    the next test's check only sees its own."""
    client = await serveur_dev.client()
    yield client
    async for w in client.list_workflows("ExecutionStatus='Running'"):
        await client.get_workflow_handle(w.id).terminate("fin du test")


@pytest.fixture
async def worker(
    client: Client, factory: SessionFactory, stockage: Stockage, smtp: ServeurSmtp
) -> AsyncIterator[Worker]:
    activites = ActivitesModification(
        sessions=factory,
        stockage=stockage,
        expediteur=ExpediteurSmtp(smtp.url),
        adresse_expediteur="Portail <ne-pas-repondre@portail.example>",
        adresse_gestionnaires=GESTIONNAIRES,
        portail_url="https://portail.example",
    )
    w = construire_worker(client, activites, f"verifier-{uuid.uuid4()}", arret_gracieux=timedelta(seconds=10))
    async with w:
        yield w


async def ouvrir(
    client: Client,
    worker: Worker,
    factory: SessionFactory,
    stockage: Stockage,
    donnees: dict[str, Any],
    numero: str,
) -> str:
    async with unit_of_work(factory) as session:
        await importer_demande(session, stockage, lire_import({**donnees, "numero": numero}))
    entree = entree_modification(
        numero, commentaire=COMMENTAIRE_SITE, champs=["site_documentation_url", "pieces"]
    )
    await demarrer_modification(client, worker.task_queue, entree, "50961588600025")
    return f"{numero}M1"


async def invitations_envoyees(factory: SessionFactory, nombre: int) -> None:
    """Until the invitations are sent and marked so (no activity left to write)."""
    for _ in range(500):
        async with factory() as session:
            courriels = (await session.exec(select(Courriel))).all()
        if len(courriels) == nombre and all(c.envoye_le for c in courriels):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("invitations jamais envoyées")


async def arreter_deux_cycles(
    client: Client,
    worker: Worker,
    factory: SessionFactory,
    stockage: Stockage,
    donnees: dict[str, Any],
    pdf: bytes,
) -> tuple[str, str, str]:
    """Three cycles open; the first one terminated (with a draft and a document), the second
    cancelled, the third left alone."""
    termine = await ouvrir(client, worker, factory, stockage, donnees, "FINMSS000001")
    annule = await ouvrir(client, worker, factory, stockage, donnees, "FINMSS000002")
    sain = await ouvrir(client, worker, factory, stockage, donnees, "FINMSS000003")
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(session, termine, {"site_documentation_url": "https://doc.example"})

        async def morceaux() -> AsyncIterator[bytes]:
            yield pdf

        await svc.ajouter_piece(session, stockage, termine, "AUTRE_S", "preuve.pdf", morceaux(), 1024 * 1024)
    await client.get_workflow_handle(termine).terminate("terminé depuis l'UI")
    handle = client.get_workflow_handle(annule)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), timeout=10)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    return termine, annule, sain


async def test_un_cycle_sain_n_est_jamais_signale(
    client: Client, worker: Worker, factory: SessionFactory, stockage: Stockage, donnees: dict[str, Any]
) -> None:
    await ouvrir(client, worker, factory, stockage, donnees, "FINMSS000003")
    assert await verifier(factory, client) == []


async def test_les_cycles_arretes_sont_signales_puis_repares(
    client: Client,
    worker: Worker,
    factory: SessionFactory,
    stockage: Stockage,
    donnees: dict[str, Any],
    pdf: bytes,
) -> None:
    termine, annule, sain = await arreter_deux_cycles(client, worker, factory, stockage, donnees, pdf)
    async with factory() as session:
        fichiers = [p.cle_stockage for p in (await session.exec(select(Piece))).all() if not p.definitive]
    assert len(fichiers) == 1 and stockage.chemin(fichiers[0]).exists()

    ecarts = await verifier(factory, client)
    assert [e.message for e in ecarts] == [
        f"La modification {termine} est ouverte mais son cycle s'est arrêté (workflow terminé de force).",
        f"La modification {annule} est ouverte mais son cycle s'est arrêté (workflow annulé).",
    ]

    faits = await reparer(factory, client, stockage, ecarts)
    assert faits == [
        f"Modification {termine} close (« retirée ») : brouillon et pièces ajoutées abandonnés, "
        "demande FINMSS000001 remise « en cours ».",
        f"Modification {annule} close (« retirée ») : brouillon et pièces ajoutées abandonnés, "
        "demande FINMSS000002 remise « en cours ».",
    ]
    assert await verifier(factory, client) == []

    async with factory() as session:
        modifications = {m.numero: m for m in (await session.exec(select(Modification))).all()}
        demandes = {d.numero: d for d in (await session.exec(select(Demande))).all()}
        historique = (await session.exec(select(Historique).where(Historique.champ == "statut"))).all()
        restantes = [p for p in (await session.exec(select(Piece))).all() if not p.definitive]
    assert modifications[termine].statut == StatutModification.RETIREE
    assert modifications[termine].issue == (
        "Retirée par l'exploitation : le cycle s'est arrêté (workflow terminé de force)."
    )
    assert modifications[termine].brouillon == {}
    assert (
        modifications[annule].issue == "Retirée par l'exploitation : le cycle s'est arrêté (workflow annulé)."
    )
    assert modifications[sain].statut == StatutModification.OUVERTE
    assert {n: d.statut for n, d in demandes.items()} == {
        "FINMSS000001": StatutDemande.EN_COURS,
        "FINMSS000002": StatutDemande.EN_COURS,
        "FINMSS000003": StatutDemande.A_MODIFIER,
    }
    assert restantes == [] and not stockage.chemin(fichiers[0]).exists()
    assert sorted((h.modification_id, h.ancienne_valeur) for h in historique) == sorted(
        [(modifications[termine].id, "a_modifier"), (modifications[annule].id, "a_modifier")]
    )
    assert all(h.nouvelle_valeur and h.nouvelle_valeur.startswith("en_cours : ") for h in historique)
    # A second repair finds nothing to do.
    assert await reparer(factory, client, stockage, await verifier(factory, client)) == []


class ClientEntreDeuxLectures:
    """The real client, whose listing of the running workflows first lets `entre_temps` run:
    what happens between verifier's database read and its Temporal listing."""

    def __init__(self, client: Client, entre_temps: Callable[[], Awaitable[None]]) -> None:
        self._client, self._entre_temps = client, entre_temps

    def __getattr__(self, nom: str) -> Any:
        return getattr(self._client, nom)

    def list_workflows(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async def lister() -> AsyncIterator[Any]:
            await self._entre_temps()
            async for execution in self._client.list_workflows(*args, **kwargs):
                yield execution

        return lister()


async def retirer_jusqu_au_bout(client: Client, numero: str) -> None:
    """A gestionnaire withdraws the modification; its workflow sends its e-mail and completes."""
    handle = client.get_workflow_handle(numero)
    await handle.execute_update(ModificationWorkflow.retirer, Retrait(par="gestionnaire-1", motif="doublon"))
    await asyncio.wait_for(handle.result(), timeout=30)


async def etat(factory: SessionFactory, numero: str) -> tuple[str, str | None, int]:
    async with factory() as session:
        modification = (await session.exec(select(Modification).where(Modification.numero == numero))).one()
        lignes = (await session.exec(select(Historique).where(Historique.champ == "statut"))).all()
    return modification.statut, modification.issue, len(lignes)


async def test_un_retrait_pendant_la_verification_n_est_pas_un_cycle_arrete(
    client: Client, worker: Worker, factory: SessionFactory, stockage: Stockage, donnees: dict[str, Any]
) -> None:
    """Read "open" in the database, then the workflow completes (the gestionnaire withdrew it),
    then Temporal is listed: the cycle ended well, nothing is reported."""
    numero = await ouvrir(client, worker, factory, stockage, donnees, "FINMSS000004")
    await invitations_envoyees(factory, 1)

    ecarts = await verifier(
        factory, ClientEntreDeuxLectures(client, lambda: retirer_jusqu_au_bout(client, numero))
    )  # type: ignore[arg-type]

    assert ecarts == []
    assert (await client.get_workflow_handle(numero).describe()).status == WorkflowExecutionStatus.COMPLETED
    assert await verifier(factory, client) == []


LIBELLES = {"retiree": "retirée", "confirmee": "confirmée"}


@pytest.mark.parametrize("issue", ["retiree", "confirmee"])
async def test_reparer_un_cycle_clos_entre_temps_ne_change_rien_et_le_dit(
    client: Client,
    worker: Worker,
    factory: SessionFactory,
    stockage: Stockage,
    donnees: dict[str, Any],
    issue: str,
) -> None:
    """The report was made while the modification was open; it ended since (withdrawn, or
    confirmed by the operator). --reparer neither closes it again nor writes a history line."""
    numero = await ouvrir(client, worker, factory, stockage, donnees, "FINMSS000005")
    await invitations_envoyees(factory, 1)
    ecarts = [
        Ecart(
            f"La modification {numero} est ouverte mais son cycle s'est arrêté (workflow achevé sans clore la modification).",
            modification_a_clore=numero,
            arret="workflow achevé sans clore la modification",
        )
    ]
    if issue == "retiree":
        await retirer_jusqu_au_bout(client, numero)
    else:
        handle = client.get_workflow_handle(numero)
        await handle.execute_update(ModificationWorkflow.confirmer, ActionOperateur(par="operateur-1"))
        await asyncio.wait_for(handle.result(), timeout=30)
    avant = await etat(factory, numero)
    assert avant[0] == issue

    faits = await reparer(factory, client, stockage, ecarts)

    assert faits == [
        f"Modification {numero} laissée telle quelle : elle est déjà close (« {LIBELLES[issue]} »), rien n'a été changé."
    ]
    assert await etat(factory, numero) == avant


async def test_une_demande_a_modifier_sans_modification_ouverte_est_remise_en_cours(
    client: Client, factory: SessionFactory, stockage: Stockage, demande: Demande
) -> None:
    async with unit_of_work(factory) as session:
        ligne = await session.get_one(Demande, demande.id)
        ligne.statut = StatutDemande.A_MODIFIER
        session.add(ligne)
    ecarts = await verifier(factory, client)
    assert [e.message for e in ecarts] == [
        "La demande FINMSS009266 est « à modifier » sans modification ouverte."
    ]
    assert await reparer(factory, client, stockage, ecarts) == [
        "Demande FINMSS009266 remise « en cours » (elle n'avait aucune modification ouverte)."
    ]
    async with factory() as session:
        ligne = await session.get_one(Demande, demande.id)
        historique = (await session.exec(select(Historique).order_by(col(Historique.id)))).all()
    assert ligne.statut == StatutDemande.EN_COURS
    assert historique[-1].champ == "statut" and historique[-1].ancienne_valeur == "a_modifier"
    assert await verifier(factory, client) == []


@pytest.fixture
def commande(
    serveur_dev: ServeurTemporalDev, engine: AsyncEngine, stockage: Stockage, tmp_path: Path
) -> Iterator[dict[str, str]]:
    yield {
        **os.environ,
        "MODIF_SOLDE_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "MODIF_SOLDE_TEMPORAL_ADDRESS": serveur_dev.adresse,
        "MODIF_SOLDE_STORAGE_DIR": str(stockage.racine),
    }


async def verifier_en_ligne_de_commande(env: dict[str, str], *options: str) -> tuple[int, str]:
    processus = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modif_solde.cli", "verifier", *options,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    sortie, _ = await asyncio.wait_for(processus.communicate(), timeout=60)
    assert processus.returncode is not None
    return processus.returncode, sortie.decode()


async def test_la_commande_verifier_signale_repare_et_dit_ce_qu_elle_a_fait(
    client: Client,
    worker: Worker,
    factory: SessionFactory,
    stockage: Stockage,
    donnees: dict[str, Any],
    pdf: bytes,
    commande: dict[str, str],
) -> None:
    termine, annule, _sain = await arreter_deux_cycles(client, worker, factory, stockage, donnees, pdf)

    code, sortie = await verifier_en_ligne_de_commande(commande)
    assert code == 1, sortie
    assert sortie.splitlines() == [
        f"La modification {termine} est ouverte mais son cycle s'est arrêté (workflow terminé de force).",
        f"La modification {annule} est ouverte mais son cycle s'est arrêté (workflow annulé).",
    ]
    async with factory() as session:
        assert (
            len((await session.exec(select(Modification).where(Modification.statut == "ouverte"))).all()) == 3
        )

    code, sortie = await verifier_en_ligne_de_commande(commande, "--reparer")
    assert code == 0, sortie
    assert "Réparations :" in sortie and f"Modification {termine} close (« retirée »)" in sortie
    assert f"Modification {annule} close (« retirée »)" in sortie

    code, sortie = await verifier_en_ligne_de_commande(commande)
    assert (code, sortie) == (0, "Aucune différence.\n")


async def test_les_differences_que_la_reparation_ne_touche_pas_sont_seulement_signalees(
    client: Client,
    worker: Worker,
    factory: SessionFactory,
    stockage: Stockage,
    donnees: dict[str, Any],
) -> None:
    close_en_base = await ouvrir(client, worker, factory, stockage, donnees, "FINMSS000001")
    sans_ligne = await ouvrir(client, worker, factory, stockage, donnees, "FINMSS000002")
    await invitations_envoyees(factory, 2)
    async with unit_of_work(factory) as session:
        # Closed in the database behind the workflow's back (a manual write)…
        await svc.cloturer_sans_modifier(
            session, stockage, close_en_base, StatutModification.RETIREE, maintenant(), "écriture manuelle"
        )
        # …and a modification row lost (a restored backup), its workflow still running.
        ligne = (await session.exec(select(Modification).where(Modification.numero == sans_ligne))).one()
        for courriel in (
            await session.exec(select(Courriel).where(Courriel.modification_id == ligne.id))
        ).all():
            await session.delete(courriel)
        await session.flush()
        await session.delete(ligne)
        demande_2 = (await session.exec(select(Demande).where(Demande.numero == "FINMSS000002"))).one()
        demande_2.statut = StatutDemande.EN_COURS
        session.add(demande_2)

    # A moment after: a transition at work, nothing to say yet.
    assert await verifier(factory, client) == []
    plus_tard = maintenant() + timedelta(minutes=10)
    ecarts = await verifier(factory, client, le=plus_tard)
    assert [e.message for e in ecarts] == [
        f"La modification {close_en_base} est « retiree » en base mais « ouverte » dans Temporal.",
        f"Le workflow {sans_ligne} est en cours mais la modification {sans_ligne} n'existe pas en base.",
    ]
    assert not any(e.reparable for e in ecarts)
    assert await reparer(factory, client, stockage, ecarts) == []
    assert len(await verifier(factory, client, le=plus_tard)) == 2


async def test_la_commande_verifier_sans_temporal_le_dit_et_sort_en_erreur(
    commande: dict[str, str],
) -> None:
    code, sortie = await verifier_en_ligne_de_commande(
        {**commande, "MODIF_SOLDE_TEMPORAL_ADDRESS": f"127.0.0.1:{port_libre()}"}
    )
    assert code == 2 and sortie.startswith("Temporal injoignable (127.0.0.1:"), sortie


async def test_la_commande_verifier_signale_puis_supprime_les_fichiers_orphelins(
    factory: SessionFactory, stockage: StockageDossier, demande: Demande, pdf: bytes, commande: dict[str, str]
) -> None:
    """A document written by a transaction that never committed, two days ago: reported, then
    deleted by --reparer; the request's own documents stay."""
    orphelin = await stockage.ecrire(pdf)
    recent = await stockage.ecrire(pdf)
    il_y_a_deux_jours = (maintenant() - timedelta(days=2)).timestamp()
    os.utime(stockage.chemin(orphelin.cle), (il_y_a_deux_jours, il_y_a_deux_jours))
    async with factory() as session:
        referencees = set((await session.exec(select(Piece.cle_stockage))).all())

    code, sortie = await verifier_en_ligne_de_commande(commande)
    assert code == 1, sortie
    assert sortie.splitlines() == [
        f"Le fichier {orphelin.cle} du stockage des pièces n'est référencé par aucune pièce "
        f"(écrit le {datetime.fromtimestamp(il_y_a_deux_jours, UTC):%d/%m/%Y %H:%M} UTC)."
    ]

    code, sortie = await verifier_en_ligne_de_commande(commande, "--reparer")
    assert code == 0, sortie
    assert sortie.splitlines()[-1] == f"  - Fichier {orphelin.cle} supprimé (aucune pièce ne le référençait)."
    assert not stockage.chemin(orphelin.cle).exists()
    assert {o.cle async for o in stockage.lister()} == referencees | {recent.cle}

    assert await verifier_en_ligne_de_commande(commande) == (0, "Aucune différence.\n")


async def test_la_commande_verifier_lit_le_stockage_s3(
    serveur_s3: ServeurS3, commande: dict[str, str], pdf: bytes
) -> None:
    """With the documents in S3: the command reaches the bucket (a file just written is not an
    orphan yet); the bucket unreachable, it says so and exits in error."""
    s3 = serveur_s3.stockage()
    try:
        await s3.ecrire(pdf)
        env = {**commande, **serveur_s3.environnement(s3.prefixe)}
        assert await verifier_en_ligne_de_commande(env) == (0, "Aucune différence.\n")
        ailleurs = {**env, "MODIF_SOLDE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port_libre()}"}
        code, sortie = await verifier_en_ligne_de_commande(ailleurs)
        assert code == 2 and sortie.startswith("Stockage des pièces injoignable (s3://"), sortie
    finally:
        await s3.fermer()
