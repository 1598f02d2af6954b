"""Retention (RGPD): once a closed request's retention period is over, its personal data, its
e-mails' bodies and its documents are erased, and a trace of what was erased is kept.

"Closed" here: the request is `en_cours` with no open modification, and its last status change
(the closing of its last modification, or its import if it never had one) is older than the
retention period. What stays: the request's number, SIRET, company name and address, amounts,
mailbox counts and dates; its modifications' numbers, expected fields, statuses and dates; each
e-mail's type, subject, dates and outcome; which fields changed and when. What goes: the support
contact (name, phone, e-mail), the operator's e-mail, the bank details, the gestionnaire's comment,
who opened and the reason given, drafts, history values, e-mail recipients and bodies, the
documents (rows and files). docs/production.md, « Conservation des données (RGPD) ».
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from modif_solde.db import SessionFactory, after_commit, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutModification
from modif_solde.models.tables import (
    Courriel,
    Demande,
    Historique,
    IdempotenceAction,
    Modification,
    Operateur,
    Piece,
    Purge,
    Signalement,
)
from modif_solde.models.types import maintenant
from modif_solde.services.stockage import Stockage
from modif_solde.workflows.contrat import WORKFLOW_MODIFICATION

journal = logging.getLogger(__name__)

LOT = 200
# History rows keep their values for this field only: a status is not personal data.
CHAMP_CONSERVE = "statut"


@dataclass(frozen=True)
class DemandePurgee:
    numero: str
    modifications: int
    courriels: int
    historiques: int
    pieces: int
    octets: int


@dataclass
class RapportPurge:
    limite: datetime
    purgees: list[DemandePurgee] = field(default_factory=list)
    # Left for a later run, with the reason (a cycle's workflow still sending its e-mails).
    reportees: list[str] = field(default_factory=list)

    def lignes(self) -> list[str]:
        lignes = [
            f"Demande {p.numero} purgée : {p.pieces} pièce(s) ({p.octets} octets), {p.courriels} courriel(s), "
            f"{p.historiques} valeur(s) d'historique, {p.modifications} modification(s) anonymisée(s)."
            for p in self.purgees
        ]
        lignes += [f"Reportée : {raison}" for raison in self.reportees]
        return lignes


def duree_iso(duree: timedelta) -> str:
    """ISO 8601, as the setting is written (days and seconds, the units a timedelta keeps)."""
    jours, secondes = duree.days, duree.seconds
    texte = f"P{jours}D" if jours else "P"
    if secondes or not jours:
        texte += f"T{secondes}S"
    return texte


async def _candidates(
    sessions: SessionFactory, limite: datetime, apres: tuple[datetime, int] | None
) -> list[tuple[str, datetime, int]]:
    """The next requests that look closed for long enough, by last closing (the partial index)."""
    requete = (
        select(Demande.numero, Demande.statut_modifie_le, Demande.id)
        .where(
            col(Demande.purgee_le).is_(None),
            Demande.statut == StatutDemande.EN_COURS,
            col(Demande.statut_modifie_le) < limite,
        )
        .order_by(col(Demande.statut_modifie_le), col(Demande.id))
        .limit(LOT)
    )
    if apres is not None:
        requete = requete.where(
            (col(Demande.statut_modifie_le) > apres[0])
            | ((col(Demande.statut_modifie_le) == apres[0]) & (col(Demande.id) > apres[1]))
        )
    async with sessions() as session:
        return [(n, le, int(i)) for n, le, i in (await session.exec(requete)).all() if i is not None]


async def cycles_en_cours(client: Client) -> set[str]:
    """The modification workflows still running (a closed cycle's stays a moment to send its
    closing e-mails, which write to the e-mail log)."""
    requete = f"WorkflowType='{WORKFLOW_MODIFICATION}' AND ExecutionStatus='Running'"
    return {w.id async for w in client.list_workflows(requete)}


async def purger_demande(
    session: AsyncSession, stockage: Stockage, numero: str, limite: datetime, duree: timedelta, le: datetime
) -> DemandePurgee | None:
    """Erase one request's personal data in the caller's transaction, its row locked; None when
    it is no longer eligible (a modification opened since, already purged)."""
    demande = (await session.exec(select(Demande).where(Demande.numero == numero).with_for_update())).first()
    if (
        demande is None
        or demande.id is None
        or demande.purgee_le is not None
        or demande.statut != StatutDemande.EN_COURS
        or demande.statut_modifie_le >= limite
    ):
        return None
    modifications = (
        await session.exec(select(Modification).where(Modification.demande_id == demande.id))
    ).all()
    if any(m.statut == StatutModification.OUVERTE for m in modifications):
        return None
    pieces = (await session.exec(select(Piece).where(Piece.demande_id == demande.id))).all()
    for piece in pieces:
        # The file goes once the rows are gone for good; one left behind (storage unreachable
        # then) is an orphan that `modif-solde verifier --reparer` removes.
        after_commit(session, partial(stockage.supprimer, piece.cle_stockage))
    await session.exec(delete(Piece).where(col(Piece.demande_id) == demande.id))
    courriels = await session.exec(
        update(Courriel)
        .where(col(Courriel.demande_id) == demande.id)
        .values(destinataire="", corps_texte="", corps_html="", erreur_envoi=None)
    )
    historiques = await session.exec(
        update(Historique)
        .where(col(Historique.demande_id) == demande.id, col(Historique.champ) != CHAMP_CONSERVE)
        .values(ancienne_valeur=None, nouvelle_valeur=None)
    )
    # The operator's reports and the gestionnaires' answers are free text: erased as well.
    await session.exec(
        update(Signalement)
        .where(col(Signalement.demande_id) == demande.id)
        .values(description="", reponse=None, par="", traite_par=None)
    )
    if modifications:
        await session.exec(
            update(Modification)
            .where(col(Modification.demande_id) == demande.id)
            .values(commentaire="", brouillon={}, ouverte_par="", issue=None)
        )
        await session.exec(
            delete(IdempotenceAction).where(
                col(IdempotenceAction.modification_numero).in_([m.numero for m in modifications])
            )
        )
    demande.contact_support_nom = None
    demande.contact_support_telephone = ""
    demande.contact_support_courriel = ""
    demande.operateur_courriel = ""
    demande.titulaire = ""
    demande.iban = ""
    demande.bic = ""
    demande.purgee_le = le
    session.add(demande)
    # The operator's row is shared by its requests: its e-mail goes with the last one purged.
    autres = (
        await session.exec(
            select(func.count())
            .select_from(Demande)
            .where(
                Demande.operateur_id == demande.operateur_id,
                col(Demande.purgee_le).is_(None),
                Demande.id != demande.id,
            )
        )
    ).one()
    if not autres:
        await session.exec(
            update(Operateur).where(col(Operateur.id) == demande.operateur_id).values(courriel="")
        )
    trace = DemandePurgee(
        numero=demande.numero,
        modifications=len(modifications),
        courriels=int(courriels.rowcount or 0),
        historiques=int(historiques.rowcount or 0),
        pieces=len(pieces),
        octets=sum(p.taille for p in pieces),
    )
    session.add(
        Purge(
            demande_numero=demande.numero,
            derniere_cloture_le=demande.statut_modifie_le,
            purgee_le=le,
            duree_conservation=duree_iso(duree),
            modifications=trace.modifications,
            courriels=trace.courriels,
            historiques=trace.historiques,
            pieces=trace.pieces,
            octets=trace.octets,
        )
    )
    return trace


async def purger(
    sessions: SessionFactory,
    stockage: Stockage,
    duree: timedelta,
    en_cours: set[str],
    le: datetime | None = None,
    battement: Callable[[], None] | None = None,
) -> RapportPurge:
    """Every request closed for longer than `duree`, one transaction each (a failure leaves the
    others done). `en_cours`: the modification workflows still running (`cycles_en_cours`), whose
    requests wait for a later run. `battement`: called between requests (the activity's heartbeat)."""
    le = le or maintenant()
    rapport = RapportPurge(limite=le - duree)
    apres: tuple[datetime, int] | None = None
    while lot := await _candidates(sessions, rapport.limite, apres):
        for numero, cloture_le, ident in lot:
            apres = (cloture_le, ident)
            async with sessions() as session:
                numeros = (
                    await session.exec(select(Modification.numero).where(Modification.demande_id == ident))
                ).all()
            actifs = sorted(set(numeros) & en_cours)
            if actifs:
                rapport.reportees.append(
                    f"demande {numero} : le cycle {', '.join(actifs)} est encore en cours dans Temporal"
                )
                continue
            async with unit_of_work(sessions) as session:
                purgee = await purger_demande(session, stockage, numero, rapport.limite, duree, le)
            if purgee is not None:
                journal.info("demande purgée", extra={"demande": numero})
                rapport.purgees.append(purgee)
            if battement is not None:
                battement()
    return rapport
