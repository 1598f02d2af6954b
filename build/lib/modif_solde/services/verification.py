"""The check that the database and Temporal agree on every cycle, and the repairs that are safe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutModification
from modif_solde.models.regles import LIBELLES_STATUT
from modif_solde.models.tables import Demande, Historique, Modification, Piece
from modif_solde.models.types import maintenant
from modif_solde.services import modifications as svc
from modif_solde.services.erreurs import ErreurDomaine
from modif_solde.services.stockage import EnvoiInacheve, ObjetStocke, Stockage
from modif_solde.workflows.contrat import WORKFLOW_MODIFICATION
from modif_solde.workflows.modification import SA_STATUT

# How a workflow that is not running ended, as operations read it.
ARRETS = {
    WorkflowExecutionStatus.TERMINATED: "workflow terminé de force",
    WorkflowExecutionStatus.CANCELED: "workflow annulé",
    WorkflowExecutionStatus.FAILED: "workflow en échec",
    WorkflowExecutionStatus.TIMED_OUT: "workflow arrivé à son délai d'exécution",
    WorkflowExecutionStatus.COMPLETED: "workflow achevé sans clore la modification",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "workflow continué sous une autre exécution",
}
ARRET_INTROUVABLE = "workflow introuvable"
# An opening or a transition is written in the database a moment before the workflow records
# it (and the reverse): a difference younger than this is a cycle at work, not a fault.
TOLERANCE = timedelta(minutes=5)
# A closed cycle's workflow stays running to send its closing e-mails; longer than this
# without an e-mail in progress, it is reported.
DELAI_ENVOI = timedelta(days=1)
# A document is written before its row is committed: one younger than this may belong to a
# transaction under way; older and referenced by no `piece` row, it is an orphan.
ORPHELIN_APRES = timedelta(days=1)
# Keys looked up in the database per query.
LOT_CLES = 500


@dataclass(frozen=True)
class Ecart:
    """One difference between the database and Temporal, in French, and the safe repair if any."""

    message: str
    # The open modification to close as withdrawn by operations (its workflow is gone)…
    modification_a_clore: str | None = None
    arret: str = ""
    # …or the request `a_modifier` with no open modification, to put back `en_cours`.
    demande_a_remettre: str | None = None

    @property
    def reparable(self) -> bool:
        return self.modification_a_clore is not None or self.demande_a_remettre is not None


@dataclass(frozen=True)
class _Execution:
    statut: WorkflowExecutionStatus | None  # None: not found
    statut_modification: str | None  # the ModificationStatut search attribute
    debut: datetime | None
    activites_en_cours: int = 0


async def _decrire(client: Client, numero: str) -> _Execution:
    try:
        description = await client.get_workflow_handle(numero).describe(rpc_timeout=timedelta(seconds=10))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return _Execution(None, None, None)
        raise
    return _Execution(
        description.status,
        description.typed_search_attributes.get(SA_STATUT),
        description.start_time,
        len(description.raw_description.pending_activities),
    )


async def _executions_en_cours(client: Client) -> dict[str, _Execution]:
    requete = f"WorkflowType='{WORKFLOW_MODIFICATION}' AND ExecutionStatus='Running'"
    return {
        w.id: _Execution(w.status, w.typed_search_attributes.get(SA_STATUT), w.start_time)
        async for w in client.list_workflows(requete)
    }


async def verifier(sessions: SessionFactory, client: Client, le: datetime | None = None) -> list[Ecart]:
    """Every difference between the database and Temporal, in a stable order."""
    le = le or maintenant()
    async with sessions() as session:
        ouvertes = {
            m.numero: m
            for m in (
                await session.exec(
                    select(Modification).where(Modification.statut == StatutModification.OUVERTE)
                )
            ).all()
        }
        # Only the requests that matter (those `a_modifier`, those with an open modification):
        # the check stays cheap however many requests the service holds.
        demandes = {
            d.id: d
            for d in (
                await session.exec(
                    select(Demande).where(
                        or_(
                            col(Demande.statut) == StatutDemande.A_MODIFIER,
                            col(Demande.id).in_({m.demande_id for m in ouvertes.values()}),
                        )
                    )
                )
            ).all()
        }
    en_cours = await _executions_en_cours(client)
    ecarts: list[Ecart] = []
    # The database was read before Temporal: a cycle that ended in between (withdrawn,
    # confirmed, its workflow completed) would look stopped. What is about to be reported on an
    # open modification or a request `a_modifier` is read again first, after the listing.
    encore = await _relire(sessions, set(ouvertes), {d.numero for d in demandes.values()})

    numeros_ouverts = {demandes[m.demande_id].numero for m in ouvertes.values()}
    for demande in sorted(demandes.values(), key=lambda d: d.numero):
        if (
            demande.statut == StatutDemande.A_MODIFIER
            and demande.numero not in numeros_ouverts
            and encore.demande_sans_ouverte(demande.numero)
        ):
            ecarts.append(
                Ecart(
                    f"La demande {demande.numero} est « à modifier » sans modification ouverte.",
                    demande_a_remettre=demande.numero,
                )
            )

    for numero, modification in sorted(ouvertes.items()):
        if numero not in encore.ouvertes:
            continue  # closed since the first read: its workflow ending is the cycle's own end
        demande = demandes[modification.demande_id]
        if (
            demande.statut != StatutDemande.A_MODIFIER
            and encore.demandes.get(demande.numero) != StatutDemande.A_MODIFIER
        ):
            ecarts.append(
                Ecart(
                    f"La modification {numero} est ouverte mais sa demande {demande.numero} "
                    f"est « {demande.statut} »."
                )
            )
        execution = en_cours.get(numero) or await _decrire(client, numero)
        if execution.statut != WorkflowExecutionStatus.RUNNING and await _toujours_ouverte(sessions, numero):
            arret = ARRETS.get(execution.statut, ARRET_INTROUVABLE) if execution.statut else ARRET_INTROUVABLE
            ecarts.append(
                Ecart(
                    f"La modification {numero} est ouverte mais son cycle s'est arrêté ({arret}).",
                    modification_a_clore=numero,
                    arret=arret,
                )
            )
        elif execution.statut_modification not in (None, StatutModification.OUVERTE):
            ecarts.append(
                Ecart(
                    f"La modification {numero} est ouverte en base mais « {execution.statut_modification} » "
                    "dans Temporal."
                )
            )

    inconnus = [n for n in en_cours if n not in ouvertes]
    if inconnus:
        async with sessions() as session:
            closes = {
                m.numero: m
                for m in (
                    await session.exec(select(Modification).where(col(Modification.numero).in_(inconnus)))
                ).all()
            }
    else:
        closes = {}
    for numero in sorted(inconnus):
        execution = en_cours[numero]
        close = closes.get(numero)
        if close is None:
            if execution.debut is None or le - execution.debut > TOLERANCE:
                ecarts.append(
                    Ecart(
                        f"Le workflow {numero} est en cours mais la modification {numero} n'existe pas en base."
                    )
                )
            continue
        cloturee_le = close.cloturee_le or close.ouverte_le
        if execution.statut_modification != close.statut and le - cloturee_le > TOLERANCE:
            ecarts.append(
                Ecart(
                    f"La modification {numero} est « {close.statut} » en base mais "
                    f"« {execution.statut_modification or 'sans statut'} » dans Temporal."
                )
            )
        elif le - cloturee_le > DELAI_ENVOI and (await _decrire(client, numero)).activites_en_cours == 0:
            ecarts.append(
                Ecart(
                    f"Le workflow {numero} est encore en cours alors que sa modification est "
                    f"« {close.statut} » depuis le {cloturee_le:%d/%m/%Y %H:%M} UTC, sans courriel en cours d'envoi."
                )
            )
    return ecarts


@dataclass(frozen=True)
class _Relu:
    ouvertes: set[str]  # of the modifications read open at first, those still open
    demandes: dict[str, str]  # request number → its status now
    avec_ouverte: set[str]  # requests that have an open modification now

    def demande_sans_ouverte(self, numero: str) -> bool:
        return self.demandes.get(numero) == StatutDemande.A_MODIFIER and numero not in self.avec_ouverte


async def _relire(sessions: SessionFactory, modifications: set[str], demandes: set[str]) -> _Relu:
    """The same rows read again, in one transaction: their status now."""
    async with sessions() as session:
        ouvertes = set(
            (
                await session.exec(
                    select(Modification.numero).where(
                        col(Modification.numero).in_(modifications),
                        Modification.statut == StatutModification.OUVERTE,
                    )
                )
            ).all()
        )
        lignes = (
            await session.exec(
                select(Demande.numero, Demande.statut).where(col(Demande.numero).in_(demandes))
            )
        ).all()
        avec_ouverte = set(
            (
                await session.exec(
                    select(Demande.numero)
                    .join(Modification, col(Modification.demande_id) == col(Demande.id))
                    .where(
                        col(Demande.numero).in_(demandes), Modification.statut == StatutModification.OUVERTE
                    )
                )
            ).all()
        )
    return _Relu(ouvertes, {numero: statut for numero, statut in lignes}, avec_ouverte)


async def _toujours_ouverte(sessions: SessionFactory, numero: str) -> bool:
    """Read once more after its workflow was described (described after the re-read above)."""
    async with sessions() as session:
        statut = (
            await session.exec(select(Modification.statut).where(Modification.numero == numero))
        ).first()
    return statut == StatutModification.OUVERTE


async def reparer(
    sessions: SessionFactory,
    client: Client,
    stockage: Stockage,
    ecarts: list[Ecart],
    le: datetime | None = None,
) -> list[str]:
    """Repair what is safe, each in its own transaction; one French line per repair done
    (or per repair given up because the situation changed meanwhile)."""
    le = le or maintenant()
    faits: list[str] = []
    for ecart in ecarts:
        if ecart.modification_a_clore is not None:
            faits.append(
                await _clore(sessions, client, stockage, ecart.modification_a_clore, ecart.arret, le)
            )
        elif ecart.demande_a_remettre is not None:
            faits.append(await _remettre_en_cours(sessions, ecart.demande_a_remettre, le))
    return faits


async def _clore(
    sessions: SessionFactory, client: Client, stockage: Stockage, numero: str, arret: str, le: datetime
) -> str:
    # Looked at again just before: a workflow found running now is left alone.
    if (await _decrire(client, numero)).statut == WorkflowExecutionStatus.RUNNING:
        return f"Modification {numero} laissée telle quelle : son workflow est de nouveau en cours."
    issue = f"Retirée par l'exploitation : le cycle s'est arrêté ({arret})."
    try:
        async with unit_of_work(sessions) as session:
            # Under the row's lock: a cycle that ended since the report (withdrawn by a
            # gestionnaire, confirmed, expired) is not closed again, nor given a history line.
            actuelle = await svc.charger_modification(session, numero, verrou=True)
            if actuelle.statut != StatutModification.OUVERTE:
                libelle = LIBELLES_STATUT[StatutModification(actuelle.statut)]
                return f"Modification {numero} laissée telle quelle : elle est déjà close (« {libelle} »), rien n'a été changé."
            cloture = await svc.cloturer_sans_modifier(
                session, stockage, numero, StatutModification.RETIREE, le, issue
            )
            assert cloture.demande.id is not None
            session.add(
                Historique(
                    demande_id=cloture.demande.id,
                    version=cloture.demande.version,
                    modification_id=cloture.modification.id,
                    champ="statut",
                    ancienne_valeur=StatutDemande.A_MODIFIER.value,
                    nouvelle_valeur=f"{StatutDemande.EN_COURS.value} : modification {numero} {issue[0].lower()}{issue[1:]}",
                    applique_le=le,
                )
            )
    except ErreurDomaine as exc:
        return f"Modification {numero} laissée telle quelle : {exc.message}"
    return (
        f"Modification {numero} close (« retirée ») : brouillon et pièces ajoutées abandonnés, "
        f"demande {cloture.demande.numero} remise « en cours »."
    )


async def _remettre_en_cours(sessions: SessionFactory, numero: str, le: datetime) -> str:
    async with unit_of_work(sessions) as session:
        demande = (
            await session.exec(select(Demande).where(Demande.numero == numero).with_for_update())
        ).one()
        assert demande.id is not None
        if demande.statut != StatutDemande.A_MODIFIER or await svc.modification_ouverte(session, demande.id):
            return f"Demande {numero} laissée telle quelle : elle a changé entre-temps."
        demande.statut = StatutDemande.EN_COURS
        demande.statut_modifie_le = le
        session.add(demande)
        session.add(
            Historique(
                demande_id=demande.id,
                version=demande.version,
                champ="statut",
                ancienne_valeur=StatutDemande.A_MODIFIER.value,
                nouvelle_valeur=(
                    f"{StatutDemande.EN_COURS.value} : remise en cours par l'exploitation "
                    "(aucune modification ouverte)"
                ),
                applique_le=le,
            )
        )
    return f"Demande {numero} remise « en cours » (elle n'avait aucune modification ouverte)."


async def fichiers_orphelins(
    sessions: SessionFactory, stockage: Stockage, le: datetime | None = None
) -> list[ObjetStocke]:
    """The stored documents that no `piece` row references, written more than a day ago
    (a transaction that failed after its write, a process killed between the two)."""
    seuil = (le or maintenant()) - ORPHELIN_APRES
    anciens = [objet async for objet in stockage.lister() if objet.modifie_le < seuil]
    orphelins: list[ObjetStocke] = []
    async with sessions() as session:
        for debut in range(0, len(anciens), LOT_CLES):
            lot = anciens[debut : debut + LOT_CLES]
            references = set(
                (
                    await session.exec(
                        select(Piece.cle_stockage).where(col(Piece.cle_stockage).in_([o.cle for o in lot]))
                    )
                ).all()
            )
            orphelins.extend(o for o in lot if o.cle not in references)
    return sorted(orphelins, key=lambda o: (o.modifie_le, o.cle))


def decrire_orphelin(objet: ObjetStocke) -> str:
    return (
        f"Le fichier {objet.cle} du stockage des pièces n'est référencé par aucune pièce "
        f"(écrit le {objet.modifie_le:%d/%m/%Y %H:%M} UTC)."
    )


async def supprimer_orphelins(
    sessions: SessionFactory, stockage: Stockage, orphelins: list[ObjetStocke]
) -> list[str]:
    """Delete the orphans, each looked up once more just before (a row referencing it since is
    left alone); one French line per file."""
    faits: list[str] = []
    for objet in orphelins:
        async with sessions() as session:
            reference = (await session.exec(select(Piece.id).where(Piece.cle_stockage == objet.cle))).first()
        if reference is not None:
            faits.append(f"Fichier {objet.cle} laissé : la pièce {reference} le référence désormais.")
            continue
        await stockage.supprimer(objet.cle)
        faits.append(f"Fichier {objet.cle} supprimé (aucune pièce ne le référençait).")
    return faits


async def envois_inacheves(stockage: Stockage, le: datetime | None = None) -> list[EnvoiInacheve]:
    """The writes begun more than a day ago and never finished (a process killed mid-upload)."""
    seuil = (le or maintenant()) - ORPHELIN_APRES
    return sorted(
        [envoi async for envoi in stockage.envois_inacheves() if envoi.commence_le < seuil],
        key=lambda e: (e.commence_le, e.cle),
    )


def decrire_envoi_inacheve(envoi: EnvoiInacheve) -> str:
    return (
        f"L'envoi de la pièce {envoi.cle} au stockage est inachevé depuis le "
        f"{envoi.commence_le:%d/%m/%Y %H:%M} UTC."
    )


async def abandonner_envois(stockage: Stockage, envois: list[EnvoiInacheve]) -> list[str]:
    faits = []
    for envoi in envois:
        await stockage.abandonner(envoi)
        faits.append(f"Envoi inachevé de la pièce {envoi.cle} abandonné.")
    return faits
