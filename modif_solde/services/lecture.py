"""Read models: the request page, the modification, the work queue. Queries only."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models import vues
from modif_solde.models.enums import StatutDemande, StatutModification, TypeCourriel
from modif_solde.models.schemas import type_affiche
from modif_solde.models.tables import Courriel, Demande, Historique, Modification, Operateur, Piece
from modif_solde.services import modifications as svc
from modif_solde.services import pilotage, signalements
from modif_solde.services.courriels import format_montant_fr
from modif_solde.services.erreurs import DonneesInvalides, Introuvable

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


async def _lire(session: AsyncSession, requete: Any, parametres: dict[str, Any]) -> Sequence[Any]:
    """The rows of a statement built once, given its bound parameters."""
    return (await session.exec(requete, params=parametres)).all()


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


@lru_cache(maxsize=4096)
def _montant_affiche(centimes: int) -> tuple[str, str]:
    # Babel's formatting is a tenth of the page's CPU; an amount is always written the same way.
    return f"{Decimal(centimes) / 100:.2f}", format_montant_fr(centimes)


def _montant(centimes: int) -> dict[str, str]:
    valeur, affichage = _montant_affiche(centimes)
    return {"valeur": valeur, "affichage": affichage}


def _operateur(demande: Demande, siret: str) -> dict[str, Any]:
    """The operator as this request was filed (a later import of the SIRET changes nothing here)."""
    return {
        "siret": siret,
        "numero_ans": demande.operateur_numero_ans,
        "denomination": demande.operateur_denomination,
        "adresse": {
            "ligne": demande.operateur_adresse_ligne,
            "code_postal": demande.operateur_code_postal,
            "commune": demande.operateur_commune,
        },
    }


def piece_vue(
    piece: Piece, demande_numero: str, numeros: dict[int, str], ouverte_id: int | None
) -> vues.PieceVue:
    origine = numeros.get(piece.modification_id, "?") if piece.modification_id else None
    return vues.PieceVue.model_validate(_piece(piece, origine, demande_numero, ouverte_id))


# What the pages read of a document (not its storage key): the columns, not the entity.
_CHAMPS_PIECE = (
    "id",
    "type",
    "nom_fichier",
    "taille",
    "sha256",
    "ajoutee_le",
    "definitive",
    "modification_id",
)
_COLONNES_PIECE: tuple[Any, ...] = tuple(getattr(Piece, c) for c in _CHAMPS_PIECE)


def _piece(piece: Any, origine: str | None, demande_numero: str, ouverte_id: int | None) -> dict[str, Any]:
    """`piece`: a Piece, or a row with the columns of _COLONNES_PIECE (by their names);
    `origine`: the number of the modification that added it (None: the import)."""
    id_, type_, nom, taille = piece.id, piece.type, piece.nom_fichier, piece.taille
    sha256, ajoutee_le, definitive, modification_id = (
        piece.sha256,
        piece.ajoutee_le,
        piece.definitive,
        piece.modification_id,
    )
    return {
        "id": id_,
        "type": type_,
        "type_affiche": type_affiche(type_, demande_numero),
        "nom_fichier": nom,
        "taille": taille,
        "sha256": sha256,
        "ajoutee_le": ajoutee_le,
        "origine": (origine or "?") if modification_id else "import",
        "definitive": definitive,
        "supprimable": not definitive and modification_id is not None and modification_id == ouverte_id,
        "url": f"/api/v1/demandes/{demande_numero}/pieces/{id_}",
        "_modification_id": modification_id,
    }


def _modification(
    modification: Modification,
    demande_numero: str,
    changements: list[dict[str, Any]],
    pieces: list[dict[str, Any]],
    interne: bool,
) -> dict[str, Any]:
    """`pieces`: the request's documents (those this modification added are kept)."""
    return {
        "numero": modification.numero,
        "demande_numero": demande_numero,
        "statut": modification.statut,
        "commentaire": modification.commentaire,
        "champs_attendus": list(modification.champs_attendus),
        "ouverte_par": modification.ouverte_par if interne else None,
        "ouverte_le": modification.ouverte_le,
        "relance_le": modification.relance_le,
        "expire_le": modification.expire_le,
        "relance_envoyee_le": modification.relance_envoyee_le,
        "cloturee_le": modification.cloturee_le,
        "issue": (
            modification.issue
            if interne or modification.issue is None
            else ISSUES_OPERATEUR.get(StatutModification(modification.statut), modification.issue)
        ),
        "version_appliquee": modification.version_appliquee,
        "brouillon_version": modification.brouillon_version,
        "changements": changements,
        "pieces_ajoutees": [p for p in pieces if p["_modification_id"] == modification.id],
    }


def _changements_appliques(lignes: Iterable[Any]) -> list[dict[str, Any]]:
    """A confirmed modification's changes, from its history rows (id, champ, old, new), in
    the order they were written."""
    return [
        {
            "champ": champ.removeprefix("informations."),
            "valeur_actuelle": ancienne,
            "nouvelle_valeur": nouvelle,
        }
        for _id, champ, ancienne, nouvelle in sorted(lignes, key=lambda ligne: ligne[0])
    ]


async def modification_vue(
    session: AsyncSession,
    modification: Modification,
    pieces: list[Piece] | None = None,
    *,
    interne: bool = False,
) -> vues.ModificationVue:
    """`pieces`: the request's documents when the caller has them already;
    `interne`: a gestionnaire reads it (who opened it, the outcome as recorded)."""
    demande = await session.get_one(Demande, modification.demande_id)
    if pieces is None:
        pieces = await svc.pieces_ajoutees(session, modification)
    ouverte_id = modification.id if modification.statut == StatutModification.OUVERTE else None
    lignes = [
        _piece(p, modification.numero, demande.numero, ouverte_id)
        for p in pieces
        if p.modification_id == modification.id
    ]
    changements = await svc.changements_affiches(session, modification, demande)
    return vues.ModificationVue.model_validate(
        _modification(modification, demande.numero, changements, lignes, interne)
    )


async def tours(session: AsyncSession, demande: Demande) -> list[vues.ModificationVue]:
    """Every round of modification of a request (M1, M2…), newest first, as a gestionnaire
    reads them: who opened it, the comment, what it changed, how and when it ended."""
    lecture = await lire_demande(session, demande.numero, interne=True, avec_tours=True)
    return lecture.tours


_CHAMPS_COURRIEL = (
    "id",
    "type",
    "destinataire",
    "sujet",
    "cree_le",
    "envoye_le",
    "corps_texte",
    "corps_html",
    "statut_envoi",
    "erreur_envoi",
    "modification_id",
)
_COLONNES_COURRIEL: tuple[Any, ...] = (*(getattr(Courriel, c) for c in _CHAMPS_COURRIEL), Modification.numero)


def _courriel(ligne: Any) -> dict[str, Any]:
    """`ligne`: the columns of _COLONNES_COURRIEL then the modification's number."""
    id_, type_, destinataire, sujet, cree_le, envoye_le, texte, html, statut, erreur, _mid, numero = ligne
    return {
        "id": id_ or 0,
        "type": type_,
        "destinataire": destinataire,
        "sujet": sujet,
        "cree_le": cree_le,
        "envoye_le": envoye_le,
        "modification": numero,
        "corps_texte": texte,
        "corps_html": html,
        "statut_envoi": statut,
        "erreur_envoi": erreur,
    }


def _requete_courriels(interne: bool, apres: bool = False) -> Select[Any]:
    """One page of the e-mail log with each one's modification number (one statement);
    bound parameters: `demande_id`, `limite` (the page's size plus one), `apres` (a cursor)."""
    requete = (
        sa_select(*_COLONNES_COURRIEL)
        .outerjoin(Modification, col(Modification.id) == Courriel.modification_id)
        .where(col(Courriel.demande_id) == bindparam("demande_id"))
    )
    if not interne:
        # One comparison per type rather than NOT IN (a list): an expanding parameter is
        # rendered again at each execution.
        requete = requete.where(*(col(Courriel.type) != t for t in COURRIELS_INTERNES))
    if apres:
        requete = requete.where(col(Courriel.id) > bindparam("apres"))
    return requete.order_by(col(Courriel.id)).limit(bindparam("limite"))


# Built once: a statement's construction and its cache key cost more than running it here.
_COURRIELS = {
    (interne, apres): _requete_courriels(interne, apres)
    for interne in (False, True)
    for apres in (False, True)
}


def _page_courriels(lignes: Sequence[Any], limite: int) -> dict[str, Any]:
    page = lignes[:limite]
    suivant = encoder_curseur(page[-1][0] or 0) if len(lignes) > limite else None
    return {"elements": [_courriel(c) for c in page], "suivant": suivant}


async def courriels(
    session: AsyncSession,
    demande: Demande,
    *,
    interne: bool = False,
    limite: int = LIMITE_PAGE,
    curseur: str | None = None,
) -> vues.PageCourriels:
    """One page of the e-mail log, oldest first."""
    assert demande.id is not None
    parametres = {"demande_id": demande.id, "limite": limite + 1}
    if curseur is not None:
        parametres["apres"] = decoder_curseur(curseur, CURSEUR_COURRIELS)[0]
    lignes = await _lire(session, _COURRIELS[interne, curseur is not None], parametres)
    return vues.PageCourriels.model_validate(_page_courriels(lignes, limite))


_COLONNES_HISTORIQUE: tuple[Any, ...] = (
    Historique.version,
    Historique.id,
    Historique.champ,
    Historique.ancienne_valeur,
    Historique.nouvelle_valeur,
    Historique.applique_le,
    Historique.modification_id,
    Modification.numero,
)


_HISTORIQUE = (
    sa_select(*_COLONNES_HISTORIQUE)
    .outerjoin(Modification, col(Modification.id) == Historique.modification_id)
    .where(col(Historique.demande_id) == bindparam("demande_id"))
    .order_by(col(Historique.version), col(Historique.id))
)
_HISTORIQUE_SUITE = _HISTORIQUE.where(
    or_(
        col(Historique.version) > bindparam("version"),
        and_(col(Historique.version) == bindparam("version"), col(Historique.id) > bindparam("apres")),
    )
).limit(bindparam("limite"))
_HISTORIQUE_PAGE = _HISTORIQUE.limit(bindparam("limite"))
# The first page, and every change of the request's information a modification applied (what a
# confirmed round shows): one statement for the gestionnaire's page, split in Python.
_HISTORIQUE_ET_CHANGEMENTS = _HISTORIQUE.where(
    or_(
        col(Historique.id).in_(
            sa_select(col(Historique.id))
            .where(col(Historique.demande_id) == bindparam("demande_id"))
            .order_by(col(Historique.version), col(Historique.id))
            .limit(bindparam("limite"))
        ),
        col(Historique.champ).startswith("informations."),
    )
)
_HISTORIQUE_DE_MODIFICATION = (
    sa_select(*_COLONNES_HISTORIQUE)
    .outerjoin(Modification, col(Modification.id) == Historique.modification_id)
    .where(col(Historique.modification_id) == bindparam("modification_id"))
)


def _page_historique(lignes: Sequence[Any], limite: int) -> dict[str, Any]:
    page = lignes[:limite]
    suivant = encoder_curseur(page[-1][0], page[-1][1] or 0) if len(lignes) > limite else None
    return {
        "elements": [
            {
                "version": version,
                "champ": champ,
                "ancienne_valeur": ancienne,
                "nouvelle_valeur": nouvelle,
                "applique_le": applique_le,
                "modification": numero if modification_id else None,
            }
            for version, _id, champ, ancienne, nouvelle, applique_le, modification_id, numero in page
        ],
        "suivant": suivant,
    }


async def historique(
    session: AsyncSession,
    demande: Demande,
    *,
    limite: int = LIMITE_PAGE,
    curseur: str | None = None,
) -> vues.PageHistorique:
    """One page of the version history, by version then in the order it was written."""
    assert demande.id is not None
    parametres = {"demande_id": demande.id, "limite": limite + 1}
    if curseur is not None:
        parametres["version"], parametres["apres"] = decoder_curseur(curseur, CURSEUR_HISTORIQUE)
    requete = _HISTORIQUE_SUITE if curseur is not None else _HISTORIQUE_PAGE
    lignes = await _lire(session, requete, parametres)
    return vues.PageHistorique.model_validate(_page_historique(lignes, limite))


def _demandes_avec_ouverte(*colonnes: Any) -> Select[Any]:
    """Requests joined to their operator and to their open modification (at most one, a unique
    index; none gives NULL columns)."""
    return (
        sa_select(*colonnes)
        .join(Operateur, col(Operateur.id) == Demande.operateur_id)
        .outerjoin(
            Modification,
            and_(
                col(Modification.demande_id) == Demande.id,
                col(Modification.statut) == StatutModification.OUVERTE,
            ),
        )
    )


_ORIGINE = aliased(Modification, name="origine")
_COLONNES_PAGE: tuple[Any, ...] = (
    Demande,
    Operateur.siret,
    Modification,
    *_COLONNES_PIECE,
    col(_ORIGINE.numero).label("origine"),
)
# The request, its operator's SIRET, its open modification and its documents, each with the
# number of the modification that added it: one row per document (one when it has none).
_PAGE = (
    _demandes_avec_ouverte(*_COLONNES_PAGE)
    .outerjoin(Piece, col(Piece.demande_id) == Demande.id)
    .outerjoin(_ORIGINE, col(_ORIGINE.id) == Piece.modification_id)
    .where(col(Demande.numero) == bindparam("numero"))
    .order_by(col(Piece.ajoutee_le), col(Piece.nom_fichier))
)
_PAGE_SIRET = _PAGE.where(col(Operateur.siret) == bindparam("siret"))
_MODIFICATIONS = (
    sa_select(Modification)
    .where(col(Modification.demande_id) == bindparam("demande_id"))
    .order_by(col(Modification.rang).desc())
)
_MODIFICATION = sa_select(Modification).where(
    col(Modification.numero) == bindparam("numero"), col(Modification.demande_id) == bindparam("demande_id")
)


@dataclass
class LecturePage:
    """What the request page read: its view, the request, and for a gestionnaire's page every
    round of modification (`tours`, newest first) and the modification asked for (`modification`)."""

    vue: vues.DemandePage
    demande: Demande
    tours: list[vues.ModificationVue] = field(default_factory=list)
    modification: vues.ModificationVue | None = None


async def lire_demande(
    session: AsyncSession,
    numero: str,
    siret: str | None = None,
    *,
    interne: bool = False,
    avec_tours: bool = False,
    modification: str | None = None,
) -> LecturePage:
    """The request page in a few statements, whatever the number of documents, history rows,
    e-mails or modifications: the request with its operator's SIRET, its open modification and
    its documents (each with the number of the modification that added it) in one joined
    statement, then the history's first page, then the e-mail log's first page. `avec_tours`:
    one more for every modification (their changes read with the history); `modification`: the
    one asked for by number when it is not the open one, one or two more.
    An operator's SIRET scopes the lookup (another's request is answered as if it did not exist)."""
    requete = _PAGE if siret is None else _PAGE_SIRET
    lignes = await _lire(session, requete, {"numero": numero, "siret": siret})
    if not lignes:
        raise Introuvable(f"La demande {numero} est introuvable.")
    demande, ouverte = lignes[0].Demande, lignes[0].Modification
    assert demande.id is not None
    ouverte_id = ouverte.id if ouverte is not None else None
    pieces = [_piece(ligne, ligne.origine, numero, ouverte_id) for ligne in lignes if ligne.id is not None]

    parametres = {"demande_id": demande.id, "limite": LIMITE_PAGE + 1}
    requete_historique = _HISTORIQUE_ET_CHANGEMENTS if avec_tours else _HISTORIQUE_PAGE
    lignes_historique = await _lire(session, requete_historique, parametres)
    lignes_courriels = await _lire(session, _COURRIELS[interne, False], parametres)
    page = _page(demande, lignes[0].siret, ouverte, pieces, lignes_historique, lignes_courriels, interne)
    lecture = LecturePage(vue=vues.DemandePage.model_validate(page), demande=demande)
    if avec_tours:
        lecture.tours = await _tours(session, demande, ouverte_id, pieces, lignes_historique)
    if modification is not None:
        lecture.modification = await _modification_demandee(session, lecture, modification, pieces, interne)
    return lecture


def _page(
    demande: Demande,
    siret_operateur: str,
    ouverte: Modification | None,
    pieces: list[dict[str, Any]],
    lignes_historique: Sequence[Any],
    lignes_courriels: Sequence[Any],
    interne: bool,
) -> dict[str, Any]:
    """The request page's content from what `lire_demande` read."""
    # Every row of the first page sorts before any other row read with it.
    historique_page = _page_historique(lignes_historique[: LIMITE_PAGE + 1], LIMITE_PAGE)
    changements_ouverte = svc.changements(ouverte, demande) if ouverte is not None else []
    return {
        "numero": demande.numero,
        "type": demande.type,
        "statut": demande.statut,
        "statut_modifie_le": demande.statut_modifie_le,
        "date_depot": demande.date_depot,
        "operateur": _operateur(demande, siret_operateur),
        "dsr": demande.dsr,
        "informations": svc.valeurs_actuelles(demande),
        "bal": {
            "applicatives": demande.bal_applicatives,
            "organisationnelles": demande.bal_organisationnelles,
            "nominatives": demande.bal_nominatives,
        },
        "montants": {
            "avance": _montant(demande.avance_centimes),
            "engagement_solde": _montant(demande.engagement_solde_centimes),
            "solde": _montant(demande.solde_centimes),
        },
        "coordonnees_bancaires": {
            "titulaire": demande.titulaire,
            "iban_masque": masquer_iban(demande.iban),
            "bic": demande.bic,
        },
        "pieces": pieces,
        "version": demande.version,
        "historique": historique_page,
        "courriels": _page_courriels(lignes_courriels, LIMITE_PAGE),
        "modification_ouverte": (
            _modification(ouverte, demande.numero, changements_ouverte, pieces, interne)
            if ouverte is not None
            else None
        ),
        "purgee_le": demande.purgee_le,
    }


def _changements_de(
    m: Modification, demande: Demande, lignes_historique: Iterable[Any]
) -> list[dict[str, Any]]:
    """What a round changed: the draft while open, the changes it applied once confirmed."""
    if m.statut == StatutModification.OUVERTE:
        return svc.changements(m, demande)
    if m.statut != StatutModification.CONFIRMEE:
        return []
    return _changements_appliques(
        (h.id, h.champ, h.ancienne_valeur, h.nouvelle_valeur)
        for h in lignes_historique
        if h.modification_id == m.id and h.champ.startswith("informations.")
    )


async def _tours(
    session: AsyncSession,
    demande: Demande,
    ouverte_id: int | None,
    pieces: list[dict[str, Any]],
    lignes_historique: Sequence[Any],
) -> list[vues.ModificationVue]:
    """Every round of modification of the request, newest first (a gestionnaire's page): one
    statement, their changes read with the history."""
    modifications = (await session.scalars(_MODIFICATIONS, {"demande_id": demande.id})).all()
    return [
        vues.ModificationVue.model_validate(
            _modification(
                m,
                demande.numero,
                _changements_de(m, demande, lignes_historique),
                [{**p, "supprimable": False} if m.id != ouverte_id else p for p in pieces],
                True,
            )
        )
        for m in modifications
    ]


async def _modification_demandee(
    session: AsyncSession, lecture: LecturePage, numero: str, pieces: list[dict[str, Any]], interne: bool
) -> vues.ModificationVue:
    """The modification page's round `numero`: the open one as read, another in one or two
    statements."""
    ouverte = lecture.vue.modification_ouverte
    if ouverte is not None and ouverte.numero == numero:
        return ouverte
    demande = lecture.demande
    autre = (await session.scalars(_MODIFICATION, {"numero": numero, "demande_id": demande.id})).first()
    if autre is None:
        raise Introuvable(f"La modification {numero} est introuvable.")
    lignes_autre: Sequence[Any] = []
    if autre.statut == StatutModification.CONFIRMEE:
        lignes_autre = await _lire(session, _HISTORIQUE_DE_MODIFICATION, {"modification_id": autre.id})
    return vues.ModificationVue.model_validate(
        _modification(
            autre,
            demande.numero,
            _changements_de(autre, demande, lignes_autre),
            [{**p, "supprimable": False} for p in pieces],
            interne,
        )
    )


async def page_demande(session: AsyncSession, demande: Demande, *, interne: bool = False) -> vues.DemandePage:
    return (await lire_demande(session, demande.numero, interne=interne)).vue


def _ligne_resume(r: Any) -> dict[str, Any]:
    """A list row from the columns of `_COLONNES_RESUME` (no entity: a list page builds hundreds)."""
    return {
        "numero": r.numero,
        "type": r.type,
        "statut": r.statut,
        "statut_modifie_le": r.statut_modifie_le,
        "date_depot": r.date_depot,
        "operateur": {
            "siret": r.siret,
            "numero_ans": r.operateur_numero_ans,
            "denomination": r.operateur_denomination,
            "adresse": {
                "ligne": r.operateur_adresse_ligne,
                "code_postal": r.operateur_code_postal,
                "commune": r.operateur_commune,
            },
        },
        "modification_ouverte": (
            {
                "numero": r.m_numero,
                "statut": r.m_statut,
                "relance_le": r.m_relance_le,
                "expire_le": r.m_expire_le,
                "relance_envoyee": r.m_relance_envoyee_le is not None,
            }
            if r.m_numero is not None
            else None
        ),
    }


# Only what a list row shows: the request's and its open modification's columns, not their
# entities (building 100 or 500 ORM entities cost more than the statement).
_COLONNES_RESUME: tuple[Any, ...] = (
    Demande.id,
    Demande.numero,
    Demande.type,
    Demande.statut,
    Demande.statut_modifie_le,
    Demande.date_depot,
    Demande.operateur_numero_ans,
    Demande.operateur_denomination,
    Demande.operateur_adresse_ligne,
    Demande.operateur_code_postal,
    Demande.operateur_commune,
    Operateur.siret,
    col(Modification.numero).label("m_numero"),
    col(Modification.statut).label("m_statut"),
    col(Modification.relance_le).label("m_relance_le"),
    col(Modification.expire_le).label("m_expire_le"),
    col(Modification.relance_envoyee_le).label("m_relance_envoyee_le"),
)


def _resumes_requete(*filtres: Any) -> Select[Any]:
    """Requests as list rows: each with its operator's SIRET and its open modification (at most
    one, a unique index)."""
    return _demandes_avec_ouverte(*_COLONNES_RESUME).where(*filtres)


def _liste_requete(par_siret: bool, par_statut: bool) -> tuple[Select[Any], Select[Any]]:
    """The list's page with the number of requests found, and that count alone (for a page past
    the end); bound parameters: `siret`, `statut`, `limite`, `decalage`. The count is a scalar
    subquery, evaluated once: the page itself stops after `decalage + limite` rows of the
    `numero` index (`count() OVER ()` made PostgreSQL join and sort every request first: 22 →
    5 ms at 8,000 requests)."""
    filtres = []
    if par_siret:
        filtres.append(col(Operateur.siret) == bindparam("siret"))
    if par_statut:
        filtres.append(col(Demande.statut) == bindparam("statut"))
    compte = (
        sa_select(func.count(col(Demande.id)))
        .join(Operateur, col(Operateur.id) == Demande.operateur_id)
        .where(*filtres)
    )
    # correlate(None): its own demande and operateur, not the page's row.
    total = compte.correlate(None).scalar_subquery().label("total")
    page = (
        _resumes_requete(*filtres)
        .add_columns(total)
        .order_by(col(Demande.numero))
        .offset(bindparam("decalage"))
        .limit(bindparam("limite"))
    )
    return page, compte


_LISTES = {(s, t): _liste_requete(s, t) for s in (False, True) for t in (False, True)}
_RESUMES = _resumes_requete(col(Demande.id).in_(bindparam("ids", expanding=True)))


async def liste(
    session: AsyncSession, statut: StatutDemande | None, siret: str | None, limite: int, decalage: int
) -> vues.ListeDemandes:
    """The list, and for each open modification its deadline and whether the reminder went out
    (the gestionnaires' work queue): one statement (the total counted beside each row), a second
    only for a page past the end (to count)."""
    page, compte = _LISTES[siret is not None, statut is not None]
    parametres = {"siret": siret, "statut": statut, "limite": limite, "decalage": decalage}
    lignes = await _lire(session, page, parametres)
    total = lignes[0].total if lignes else (await _lire(session, compte, parametres))[0][0]
    return vues.ListeDemandes.model_validate(
        {"total": int(total), "demandes": [_ligne_resume(r) for r in lignes]}
    )


async def _resumes(session: AsyncSession, ids: Sequence[int], total: int) -> vues.ListeDemandes:
    """Requests as list rows in the order of `ids`, with their open modification: one statement."""
    lignes = await _lire(session, _RESUMES, {"ids": list(ids)}) if ids else []
    par_id = {r.id: r for r in lignes}
    return vues.ListeDemandes.model_validate(
        {"total": total, "demandes": [_ligne_resume(par_id[i]) for i in ids]}
    )


# Up to this many requests found by a search, the work queue's queries take them by id.
RECHERCHE_PAR_IDS = 500


@dataclass(frozen=True)
class FiltresFile:
    """The work queue's filters; `echeance_avant`: an open modification's deadline before that
    instant; `relancee`: its reminder sent (True) or not yet (False); `recherche`: a request
    number, a SIRET or part of a company name. From the steering dashboard (services/pilotage.py):
    `echeance_apres`, an open modification's deadline from that instant; `tour`, a request with a
    modification its figure counts over `periode`; `courriel_echec`, one with an e-mail of that
    kind given up in `periode`."""

    statut: StatutDemande | None = None
    echeance_avant: datetime | None = None
    relancee: bool | None = None
    recherche: str = ""
    # True: only the requests with an operator's report waiting for a gestionnaire.
    signalement: bool | None = None
    echeance_apres: datetime | None = None
    tour: str | None = None
    courriel_echec: str | None = None
    periode: pilotage.Periode | None = None


def _filtres_pilotage(filtres: FiltresFile) -> list[Any]:
    """The requests a steering figure counts: the figure's own condition (services/pilotage.py)."""
    conditions: list[Any] = []
    if filtres.tour is not None and filtres.periode is not None:
        # correlate(None): its own modifications, never those of a query it sits in.
        modifications = (
            select(Modification.demande_id)
            .where(pilotage.condition_tour(filtres.tour, filtres.periode))
            .correlate(None)
        )
        conditions.append(col(Demande.id).in_(modifications))
    if filtres.courriel_echec is not None and filtres.periode is not None:
        courriels = (
            select(Courriel.demande_id)
            .where(pilotage.condition_courriel_echec(filtres.courriel_echec, filtres.periode))
            .correlate(None)
        )
        conditions.append(col(Demande.id).in_(courriels))
    return conditions


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
    sur_demande, sur_modification = await conditions_file(session, filtres)
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
    return await _resumes(session, ids, int(total))


async def conditions_file(session: AsyncSession, filtres: FiltresFile) -> tuple[list[Any], list[Any]]:
    """The queue's filters as conditions: on the request, and on its open modification (the
    page and the export, services/export.py, select the same requests)."""
    sur_demande: list[Any] = []
    if filtres.statut is not None:
        sur_demande.append(col(Demande.statut) == filtres.statut)
    cherche = filtres.recherche.strip()
    if cherche:
        motif = f"%{cherche.lower()}%"
        recherche = or_(
            col(Demande.numero) == cherche.upper(),
            col(Demande.operateur_id).in_(
                select(Operateur.id).where(col(Operateur.siret) == cherche.replace(" ", ""))
            ),
            func.lower(Demande.operateur_denomination).like(motif),
        )
        # A part of a name has no index: read every request once, then the counts and the page
        # take the few found by their ids (the condition itself when there are many).
        trouvees = (
            await session.exec(select(Demande.id).where(recherche).limit(RECHERCHE_PAR_IDS + 1))
        ).all()
        if len(trouvees) <= RECHERCHE_PAR_IDS:
            recherche = col(Demande.id).in_([i for i in trouvees if i is not None])
        sur_demande.append(recherche)
    if filtres.signalement:
        sur_demande.append(signalements.en_attente_clause())
    sur_demande += _filtres_pilotage(filtres)
    sur_modification: list[Any] = []
    if filtres.echeance_avant is not None:
        sur_modification.append(col(Modification.expire_le) < filtres.echeance_avant)
    if filtres.echeance_apres is not None:
        sur_modification.append(col(Modification.expire_le) >= filtres.echeance_apres)
    if filtres.relancee is True:
        sur_modification.append(col(Modification.relance_envoyee_le).is_not(None))
    elif filtres.relancee is False:
        sur_modification.append(col(Modification.relance_envoyee_le).is_(None))
    return sur_demande, sur_modification
