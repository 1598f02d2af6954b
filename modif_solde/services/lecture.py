"""Read models: the request page, the modification, the work queue. Queries only."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import and_, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models import vues
from modif_solde.models.enums import StatutDemande, StatutModification, TypeCourriel
from modif_solde.models.schemas import type_affiche
from modif_solde.models.tables import Courriel, Demande, Historique, Modification, Operateur, Piece
from modif_solde.services import modifications as svc
from modif_solde.services.courriels import format_montant_fr
from modif_solde.services.demandes import lister_demandes
from modif_solde.services.erreurs import DonneesInvalides

# One page of the e-mail log or of the history (the request page embeds the first).
LIMITE_PAGE = 50
LIMITE_PAGE_MAX = 200

# What an operator reads as the outcome: the recorded one names the gestionnaire and may carry
# the withdrawal's reason, written for the gestionnaires.
ISSUES_OPERATEUR = {
    StatutModification.CONFIRMEE: "Confirmée : les changements ont été appliqués.",
    StatutModification.RENONCEE: "Renoncée : la demande est restée inchangée.",
    StatutModification.EXPIREE: "Expirée : le délai est passé sans confirmation ; la demande est restée inchangée.",
    StatutModification.RETIREE: "Retirée par les gestionnaires : la demande est restée inchangée.",
}
# E-mails the operator never received, left out of the log an operator reads.
COURRIELS_INTERNES = (TypeCourriel.CONFIRMATION_GESTIONNAIRES,)


# Cursors: the last element's sort key, digits only, so that the schema states every valid one.
CURSEUR_COURRIELS = r"^[0-9]{1,9}$"
CURSEUR_HISTORIQUE = r"^[0-9]{1,9}-[0-9]{1,9}$"


def encoder_curseur(*cle: int) -> str:
    """Where the next page starts (the last element's sort key); opaque to the client."""
    return "-".join(str(v) for v in cle)


def decoder_curseur(curseur: str, motif: str) -> tuple[int, ...]:
    if re.fullmatch(motif, curseur) is None:
        message = "Le champ « curseur » doit être une valeur « suivant » rendue par l'API."
        raise DonneesInvalides("Le curseur est invalide.", [{"champ": "curseur", "message": message}])
    return tuple(int(v) for v in curseur.split("-"))


def masquer_iban(iban: str) -> str:
    """Country and check digits, then only the last four characters."""
    masque = iban[:4] + "•" * (len(iban) - 8) + iban[-4:]
    return " ".join(masque[i : i + 4] for i in range(0, len(masque), 4))


def _montant(centimes: int) -> vues.Montant:
    return vues.Montant(valeur=f"{Decimal(centimes) / 100:.2f}", affichage=format_montant_fr(centimes))


def _operateur(demande: Demande, siret: str) -> vues.OperateurVue:
    """The operator as this request was filed (a later import of the SIRET changes nothing here)."""
    return vues.OperateurVue(
        siret=siret,
        numero_ans=demande.operateur_numero_ans,
        denomination=demande.operateur_denomination,
        adresse=vues.Adresse(
            ligne=demande.operateur_adresse_ligne,
            code_postal=demande.operateur_code_postal,
            commune=demande.operateur_commune,
        ),
    )


def piece_vue(
    piece: Piece, demande_numero: str, numeros: dict[int, str], ouverte_id: int | None
) -> vues.PieceVue:
    return vues.PieceVue(
        id=piece.id,
        type=piece.type,
        type_affiche=type_affiche(piece.type, demande_numero),
        nom_fichier=piece.nom_fichier,
        taille=piece.taille,
        sha256=piece.sha256,
        ajoutee_le=piece.ajoutee_le,
        origine=numeros.get(piece.modification_id, "?") if piece.modification_id else "import",
        definitive=piece.definitive,
        supprimable=(
            not piece.definitive and piece.modification_id is not None and piece.modification_id == ouverte_id
        ),
        url=f"/api/v1/demandes/{demande_numero}/pieces/{piece.id}",
    )


async def _numeros_modifications(session: AsyncSession, demande_id: int) -> dict[int, str]:
    lignes = (
        await session.exec(
            select(Modification.id, Modification.numero).where(Modification.demande_id == demande_id)
        )
    ).all()
    return {i: n for i, n in lignes if i is not None}


async def modification_vue(
    session: AsyncSession,
    modification: Modification,
    pieces: list[Piece] | None = None,
    *,
    interne: bool = False,
) -> vues.ModificationVue:
    """`pieces`: the request's documents when the caller has them already (the request page);
    `interne`: a gestionnaire reads it (who opened it, the outcome as recorded)."""
    demande = await session.get_one(Demande, modification.demande_id)
    if pieces is None:
        ajoutees = await svc.pieces_ajoutees(session, modification)
    else:
        ajoutees = [p for p in pieces if p.modification_id == modification.id]
    numeros = {modification.id: modification.numero} if modification.id is not None else {}
    ouverte_id = modification.id if modification.statut == StatutModification.OUVERTE else None
    return vues.ModificationVue(
        numero=modification.numero,
        demande_numero=demande.numero,
        statut=modification.statut,
        commentaire=modification.commentaire,
        champs_attendus=list(modification.champs_attendus),
        ouverte_par=modification.ouverte_par if interne else None,
        ouverte_le=modification.ouverte_le,
        relance_le=modification.relance_le,
        expire_le=modification.expire_le,
        relance_envoyee_le=modification.relance_envoyee_le,
        cloturee_le=modification.cloturee_le,
        issue=(
            modification.issue
            if interne or modification.issue is None
            else ISSUES_OPERATEUR.get(StatutModification(modification.statut), modification.issue)
        ),
        version_appliquee=modification.version_appliquee,
        brouillon_version=modification.brouillon_version,
        changements=[
            vues.Changement(**c) for c in await svc.changements_affiches(session, modification, demande)
        ],
        pieces_ajoutees=[piece_vue(p, demande.numero, numeros, ouverte_id) for p in ajoutees],
    )


async def tours(session: AsyncSession, demande: Demande) -> list[vues.ModificationVue]:
    """Every round of modification of a request (M1, M2…), newest first, as a gestionnaire
    reads them: who opened it, the comment, what it changed, how and when it ended."""
    modifications = (
        await session.exec(
            select(Modification)
            .where(Modification.demande_id == demande.id)
            .order_by(col(Modification.rang).desc())
        )
    ).all()
    return [await modification_vue(session, m, interne=True) for m in modifications]


def courriel_vue(courriel: Courriel, numeros: dict[int, str]) -> vues.CourrielVue:
    return vues.CourrielVue(
        id=courriel.id or 0,
        type=courriel.type,
        destinataire=courriel.destinataire,
        sujet=courriel.sujet,
        cree_le=courriel.cree_le,
        envoye_le=courriel.envoye_le,
        modification=numeros.get(courriel.modification_id) if courriel.modification_id else None,
        corps_texte=courriel.corps_texte,
        corps_html=courriel.corps_html,
        statut_envoi=courriel.statut_envoi,
        erreur_envoi=courriel.erreur_envoi,
    )


async def courriels(
    session: AsyncSession,
    demande: Demande,
    numeros: dict[int, str] | None = None,
    *,
    interne: bool = False,
    limite: int = LIMITE_PAGE,
    curseur: str | None = None,
) -> vues.PageCourriels:
    """One page of the e-mail log, oldest first."""
    assert demande.id is not None
    requete = select(Courriel).where(Courriel.demande_id == demande.id)
    if not interne:
        requete = requete.where(col(Courriel.type).not_in(COURRIELS_INTERNES))
    if curseur is not None:
        (apres,) = decoder_curseur(curseur, CURSEUR_COURRIELS)
        requete = requete.where(col(Courriel.id) > apres)
    lignes = list((await session.exec(requete.order_by(col(Courriel.id)).limit(limite + 1))).all())
    if numeros is None:
        numeros = await _numeros_modifications(session, demande.id)
    page = lignes[:limite]
    suivant = encoder_curseur(page[-1].id or 0) if len(lignes) > limite else None
    return vues.PageCourriels(elements=[courriel_vue(c, numeros) for c in page], suivant=suivant)


async def historique(
    session: AsyncSession,
    demande: Demande,
    numeros: dict[int, str] | None = None,
    *,
    limite: int = LIMITE_PAGE,
    curseur: str | None = None,
) -> vues.PageHistorique:
    """One page of the version history, by version then in the order it was written."""
    assert demande.id is not None
    requete = select(Historique).where(Historique.demande_id == demande.id)
    if curseur is not None:
        version, apres = decoder_curseur(curseur, CURSEUR_HISTORIQUE)
        requete = requete.where(
            or_(
                col(Historique.version) > version,
                and_(col(Historique.version) == version, col(Historique.id) > apres),
            )
        )
    lignes = list(
        (
            await session.exec(
                requete.order_by(col(Historique.version), col(Historique.id)).limit(limite + 1)
            )
        ).all()
    )
    if numeros is None:
        numeros = await _numeros_modifications(session, demande.id)
    page = lignes[:limite]
    suivant = encoder_curseur(page[-1].version, page[-1].id or 0) if len(lignes) > limite else None
    return vues.PageHistorique(
        elements=[
            vues.LigneHistorique(
                version=h.version,
                champ=h.champ,
                ancienne_valeur=h.ancienne_valeur,
                nouvelle_valeur=h.nouvelle_valeur,
                applique_le=h.applique_le,
                modification=numeros.get(h.modification_id) if h.modification_id else None,
            )
            for h in page
        ],
        suivant=suivant,
    )


async def page_demande(session: AsyncSession, demande: Demande, *, interne: bool = False) -> vues.DemandePage:
    assert demande.id is not None
    operateur = await session.get_one(Operateur, demande.operateur_id)
    numeros = await _numeros_modifications(session, demande.id)
    ouverte = await svc.modification_ouverte(session, demande.id)
    pieces = (
        await session.exec(
            select(Piece)
            .where(Piece.demande_id == demande.id)
            .order_by(col(Piece.ajoutee_le), col(Piece.nom_fichier))
        )
    ).all()
    return vues.DemandePage(
        numero=demande.numero,
        type=demande.type,
        statut=demande.statut,
        statut_modifie_le=demande.statut_modifie_le,
        date_depot=demande.date_depot,
        operateur=_operateur(demande, operateur.siret),
        dsr=demande.dsr,
        informations=vues.Informations(**svc.valeurs_actuelles(demande)),
        bal=vues.Bal(
            applicatives=demande.bal_applicatives,
            organisationnelles=demande.bal_organisationnelles,
            nominatives=demande.bal_nominatives,
        ),
        montants=vues.Montants(
            avance=_montant(demande.avance_centimes),
            engagement_solde=_montant(demande.engagement_solde_centimes),
            solde=_montant(demande.solde_centimes),
        ),
        coordonnees_bancaires=vues.CoordonneesBancaires(
            titulaire=demande.titulaire, iban_masque=masquer_iban(demande.iban), bic=demande.bic
        ),
        pieces=[piece_vue(p, demande.numero, numeros, ouverte.id if ouverte else None) for p in pieces],
        version=demande.version,
        historique=await historique(session, demande, numeros),
        courriels=await courriels(session, demande, numeros, interne=interne),
        modification_ouverte=(
            await modification_vue(session, ouverte, list(pieces), interne=interne) if ouverte else None
        ),
    )


async def liste(
    session: AsyncSession, statut: StatutDemande | None, siret: str | None, limite: int, decalage: int
) -> vues.ListeDemandes:
    """The list, and for each open modification its deadline and whether the reminder went out
    (the gestionnaires' work queue)."""
    demandes, total = await lister_demandes(session, statut, siret, limite, decalage)
    return await _resumes(session, demandes, total)


async def _resumes(session: AsyncSession, demandes: Sequence[Demande], total: int) -> vues.ListeDemandes:
    """Requests as list rows, with their open modification: three queries whatever the count."""
    ids = [d.id for d in demandes]
    sirets = {
        i: siret
        for i, siret in (
            await session.exec(
                select(Operateur.id, Operateur.siret).where(
                    col(Operateur.id).in_({d.operateur_id for d in demandes})
                )
            )
        ).all()
    }
    ouvertes = {
        m.demande_id: m
        for m in (
            await session.exec(
                select(Modification).where(
                    col(Modification.demande_id).in_(ids), Modification.statut == StatutModification.OUVERTE
                )
            )
        ).all()
    }
    return vues.ListeDemandes(
        total=total,
        demandes=[
            vues.DemandeResume(
                numero=d.numero,
                type=d.type,
                statut=d.statut,
                statut_modifie_le=d.statut_modifie_le,
                date_depot=d.date_depot,
                operateur=_operateur(d, sirets[d.operateur_id]),
                modification_ouverte=(
                    vues.ModificationResume(
                        numero=m.numero,
                        statut=m.statut,
                        relance_le=m.relance_le,
                        expire_le=m.expire_le,
                        relance_envoyee=m.relance_envoyee_le is not None,
                    )
                    if d.id is not None and (m := ouvertes.get(d.id))
                    else None
                ),
            )
            for d in demandes
        ],
    )


# Up to this many requests found by a search, the work queue's queries take them by id.
RECHERCHE_PAR_IDS = 500


@dataclass(frozen=True)
class FiltresFile:
    """The work queue's filters; `echeance_avant`: an open modification's deadline before that
    instant; `relancee`: its reminder sent (True) or not yet (False); `recherche`: a request
    number, a SIRET or part of a company name."""

    statut: StatutDemande | None = None
    echeance_avant: datetime | None = None
    relancee: bool | None = None
    recherche: str = ""


async def file_de_travail(
    session: AsyncSession, filtres: FiltresFile, limite: int, decalage: int
) -> vues.ListeDemandes:
    """The gestionnaires' work queue: open modifications first, the nearest deadline first,
    then the other requests by number; `decalage` is an offset over that order.

    Two queries, each in the order of an index, rather than one sort over an outer join (which
    read and sorted every request for each page): the open modifications through the partial
    index on their deadlines, then the requests without one by number (`ix_demande_statut_numero`
    or the numbers' unique index); the page takes from the first, then from the second."""
    ouverte = and_(
        col(Modification.demande_id) == Demande.id, col(Modification.statut) == StatutModification.OUVERTE
    )
    sur_demande = []
    if filtres.statut is not None:
        sur_demande.append(col(Demande.statut) == filtres.statut)
    cherche = filtres.recherche.strip()
    if cherche:
        motif = f"%{cherche.lower()}%"
        recherche = or_(
            col(Demande.numero) == cherche.upper(),
            col(Demande.operateur_id).in_(select(Operateur.id).where(col(Operateur.siret) == cherche.replace(" ", ""))),
            func.lower(Demande.operateur_denomination).like(motif),
        )
        # A part of a name has no index: read every request once, then the counts and the page
        # take the few found by their ids (the condition itself when there are many).
        trouvees = (await session.exec(select(Demande.id).where(recherche).limit(RECHERCHE_PAR_IDS + 1))).all()
        if len(trouvees) <= RECHERCHE_PAR_IDS:
            recherche = col(Demande.id).in_([i for i in trouvees if i is not None])
        sur_demande.append(recherche)
    sur_modification = []
    if filtres.echeance_avant is not None:
        sur_modification.append(col(Modification.expire_le) < filtres.echeance_avant)
    if filtres.relancee is True:
        sur_modification.append(col(Modification.relance_envoyee_le).is_not(None))
    elif filtres.relancee is False:
        sur_modification.append(col(Modification.relance_envoyee_le).is_(None))
    # A filter on the open modification leaves out every request without one.
    sans_ouverte_possible = not sur_modification

    ouvertes = select(Demande.id).join(Modification, ouverte).where(*sur_demande, *sur_modification)
    nb_ouvertes = (await session.exec(select(func.count()).select_from(ouvertes.subquery()))).one()
    total = nb_ouvertes
    if sans_ouverte_possible:
        # At most one open modification per request (a unique index): the rest are without one.
        total = (await session.exec(select(func.count(col(Demande.id))).where(*sur_demande))).one()

    ids: list[int] = []
    if decalage < nb_ouvertes:
        page = (
            ouvertes.order_by(col(Modification.expire_le), col(Demande.numero)).offset(decalage).limit(limite)
        )
        ids += [i for i in (await session.exec(page)).all() if i is not None]
    if sans_ouverte_possible and len(ids) < limite:
        sans_ouverte = (
            select(Demande.id)
            .where(*sur_demande, ~select(Modification.id).where(ouverte).exists())
            .order_by(col(Demande.numero))
            .offset(max(0, decalage - nb_ouvertes))
            .limit(limite - len(ids))
        )
        ids += [i for i in (await session.exec(sans_ouverte)).all() if i is not None]
    par_id = {d.id: d for d in (await session.exec(select(Demande).where(col(Demande.id).in_(ids)))).all()}
    return await _resumes(session, [par_id[i] for i in ids], int(total))
