"""The modification cycle's transitions. Each is one transaction (the caller's unit of work),
safe to repeat (activities are retried), and refuses an invalid transition with a domain error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.db import after_commit, on_rollback
from modif_solde.models.enums import (
    CHAMPS_EDITABLES,
    PROLONGATION_MAX,
    StatutDemande,
    StatutModification,
    TypePieceAjoutable,
)
from modif_solde.models.regles import (
    CHAMP_PIECES,
    CHAMPS_ATTENDUS_POSSIBLES,
    COMMENTAIRE_MAX,
    CONTROLE_MULTILIGNE,
    LIBELLES_STATUT,
    erreurs_en_francais,
)
from modif_solde.models.schemas import InformationsEditables, NomFichier, type_affiche
from modif_solde.models.tables import Demande, Historique, Modification, Operateur, Piece
from modif_solde.models.types import maintenant
from modif_solde.services.erreurs import BrouillonPerime, Conflit, DonneesInvalides, Introuvable
from modif_solde.services.stockage import Stockage
from modif_solde.workflows.contrat import message_echeance_passee

_NUMERO_MODIFICATION = re.compile(r"^(FINMSS\d{6})M(\d{1,4})$")


@dataclass(frozen=True)
class Ouverture:
    demande_numero: str
    numero: str
    commentaire: str
    champs: list[str]
    ouverte_par: str
    ouverte_le: datetime
    relance_le: datetime
    expire_le: datetime


def numero_demande_de(numero_modification: str) -> str:
    correspondance = _NUMERO_MODIFICATION.fullmatch(numero_modification)
    if correspondance is None:
        raise Introuvable(f"La modification {numero_modification} est introuvable.")
    return correspondance.group(1)


def verifier_ouverture(commentaire: Any, champs: Any) -> tuple[str, list[str]]:
    """The gestionnaire's comment (multi-line text) and the expected fields."""
    erreurs: list[dict[str, str]] = []
    if not isinstance(commentaire, str) or not commentaire.strip():
        erreurs.append({"champ": "commentaire", "message": "Le champ « commentaire » est obligatoire."})
    elif len(commentaire) > COMMENTAIRE_MAX:
        erreurs.append(
            {
                "champ": "commentaire",
                "message": f"Le champ « commentaire » ne doit pas dépasser {COMMENTAIRE_MAX} caractères.",
            }
        )
    elif CONTROLE_MULTILIGNE.search(commentaire.replace("\r\n", "\n")):
        erreurs.append(
            {
                "champ": "commentaire",
                "message": "Le champ « commentaire » ne doit pas contenir de caractère de contrôle.",
            }
        )
    if not isinstance(champs, list) or not champs:
        erreurs.append(
            {"champ": "champs", "message": "Le champ « champs » doit lister au moins un élément attendu."}
        )
    else:
        for i, champ in enumerate(champs):
            if champ not in CHAMPS_ATTENDUS_POSSIBLES:
                erreurs.append(
                    {
                        "champ": f"champs.{i}",
                        "message": f"Le champ « champs.{i} » doit valoir l'une des valeurs : {', '.join(CHAMPS_ATTENDUS_POSSIBLES)}.",
                    }
                )
    if erreurs:
        raise DonneesInvalides("L'ouverture de la modification est invalide.", erreurs)
    assert isinstance(commentaire, str) and isinstance(champs, list)
    return commentaire.strip().replace("\r\n", "\n"), list(dict.fromkeys(champs))


async def _demande_verrouillee(session: AsyncSession, numero: str) -> Demande:
    demande = (await session.exec(select(Demande).where(Demande.numero == numero).with_for_update())).first()
    if demande is None:
        raise Introuvable(f"La demande {numero} est introuvable.")
    return demande


async def charger_modification(
    session: AsyncSession, numero: str, siret: str | None = None, verrou: bool = False
) -> Modification:
    """The modification, or Introuvable; an operator's SIRET scopes the lookup."""
    requete = select(Modification).where(Modification.numero == numero)
    if siret is not None:
        requete = requete.join(Demande).join(Operateur).where(Operateur.siret == siret)
    if verrou:
        requete = requete.with_for_update(of=Modification)
    modification = (await session.exec(requete)).first()
    if modification is None:
        raise Introuvable(f"La modification {numero} est introuvable.")
    return modification


async def prochain_numero(session: AsyncSession, demande: Demande) -> str:
    rang = (
        await session.exec(select(func.max(Modification.rang)).where(Modification.demande_id == demande.id))
    ).one()
    return f"{demande.numero}M{(rang or 0) + 1}"


async def modification_ouverte(session: AsyncSession, demande_id: int) -> Modification | None:
    return (
        await session.exec(
            select(Modification).where(
                Modification.demande_id == demande_id, Modification.statut == StatutModification.OUVERTE
            )
        )
    ).first()


async def verifier_ouvrable(session: AsyncSession, demande: Demande) -> None:
    """A modification can be opened only on a request `en_cours` with none open."""
    assert demande.id is not None
    if demande.purgee_le is not None:
        raise Conflit(
            f"Les données de la demande {demande.numero} ont été supprimées le {demande.purgee_le:%d/%m/%Y} "
            "(durée de conservation atteinte) : elle ne peut plus être modifiée."
        )
    if await modification_ouverte(session, demande.id) is not None:
        raise Conflit(f"La demande {demande.numero} a déjà une modification ouverte.")
    if demande.statut != StatutDemande.EN_COURS:
        raise Conflit(f"La demande {demande.numero} n'est pas en cours (statut : {demande.statut}).")


async def ouvrir(session: AsyncSession, ouverture: Ouverture) -> Modification:
    """Open modification `numero`: the request goes `a_modifier`. Repeating it returns the
    same open modification."""
    commentaire, champs = verifier_ouverture(ouverture.commentaire, ouverture.champs)
    demande = await _demande_verrouillee(session, ouverture.demande_numero)
    existante = (
        await session.exec(select(Modification).where(Modification.numero == ouverture.numero))
    ).first()
    if existante is not None:
        if existante.demande_id == demande.id and existante.statut == StatutModification.OUVERTE:
            return existante
        raise Conflit(
            f"La modification {ouverture.numero} existe déjà ({LIBELLES_STATUT[StatutModification(existante.statut)]})."
        )
    await verifier_ouvrable(session, demande)
    assert demande.id is not None
    attendu = await prochain_numero(session, demande)
    if ouverture.numero != attendu:
        raise Conflit(f"Le numéro de la prochaine modification de {demande.numero} est {attendu}.")
    if not ouverture.ouverte_le < ouverture.relance_le < ouverture.expire_le:
        raise DonneesInvalides("Les échéances doivent suivre l'ouverture : relance puis expiration.")
    modification = Modification(
        numero=ouverture.numero,
        demande_id=demande.id,
        rang=int(ouverture.numero.rsplit("M", 1)[1]),
        commentaire=commentaire,
        champs_attendus=champs,
        statut=StatutModification.OUVERTE,
        brouillon={},
        ouverte_par=ouverture.ouverte_par,
        ouverte_le=ouverture.ouverte_le,
        relance_le=ouverture.relance_le,
        expire_le=ouverture.expire_le,
    )
    demande.statut = StatutDemande.A_MODIFIER
    demande.statut_modifie_le = ouverture.ouverte_le
    session.add_all([modification, demande])
    await session.flush()
    return modification


def _verifier_version(modification: Modification, version_attendue: int | None) -> None:
    """If-Match: checked under the modification's row lock, so that nothing changes between
    the check and the write. None: the caller sets no condition (the last write wins)."""
    if version_attendue is not None and version_attendue != modification.brouillon_version:
        raise BrouillonPerime(
            f"Le brouillon de la modification {modification.numero} a changé depuis votre lecture : "
            "rechargez-le, puis recommencez."
        )


def _brouillon_change(modification: Modification) -> None:
    modification.brouillon_version += 1


def _verifier_ouverte(modification: Modification) -> None:
    if modification.statut != StatutModification.OUVERTE:
        statut = LIBELLES_STATUT[StatutModification(modification.statut)]
        raise Conflit(f"La modification {modification.numero} n'est plus ouverte (statut : {statut}).")


def verifier_avant_echeance(modification: Modification, le: datetime | None = None) -> None:
    """Past `expire_le` the operator's actions are refused, whatever the expiry's progress."""
    if (le or maintenant()) >= modification.expire_le:
        raise Conflit(message_echeance_passee(modification.numero, modification.expire_le))


def valeurs_actuelles(demande: Demande) -> dict[str, Any]:
    return {champ: getattr(demande, champ) for champ in CHAMPS_EDITABLES}


def _valider_informations(valeurs: dict[str, Any]) -> InformationsEditables:
    try:
        return InformationsEditables.model_validate(valeurs)
    except ValidationError as exc:
        erreurs = erreurs_en_francais(exc, prefixe="informations")
        raise DonneesInvalides(f"Le brouillon ne respecte pas {len(erreurs)} règle(s).", erreurs) from None


async def mettre_a_jour_brouillon(
    session: AsyncSession,
    numero: str,
    changements: Any,
    siret: str | None = None,
    version_attendue: int | None = None,
) -> Modification:
    """Change editable fields of the draft. A non-editable field, or a value that breaks a
    rule, is refused with every broken rule named, and nothing is changed."""
    if not isinstance(changements, dict) or not changements:
        raise DonneesInvalides(
            "Le brouillon attend un objet avec au moins un champ modifiable.",
            [
                {
                    "champ": "corps",
                    "message": f"Le corps doit être un objet avec un ou plusieurs de : {', '.join(CHAMPS_EDITABLES)}.",
                }
            ],
        )
    modification = await charger_modification(session, numero, siret, verrou=True)
    erreurs = [
        {"champ": str(c), "message": f"Le champ « {c} » n'est pas modifiable."}
        for c in changements
        if c not in CHAMPS_EDITABLES
    ]
    editables = {c: v for c, v in changements.items() if c in CHAMPS_EDITABLES}
    _verifier_ouverte(modification)
    verifier_avant_echeance(modification)
    _verifier_version(modification, version_attendue)
    demande = await session.get_one(Demande, modification.demande_id)
    actuelles = valeurs_actuelles(demande)
    try:
        normalisees = _valider_informations({**actuelles, **modification.brouillon, **editables}).model_dump()
    except DonneesInvalides as exc:
        erreurs.extend(exc.erreurs)
    if erreurs:
        raise DonneesInvalides(
            f"Le brouillon ne respecte pas {len(erreurs)} règle(s) : seuls le contact support et le lien "
            "de documentation sont modifiables, selon les mêmes règles qu'à la création.",
            erreurs,
        )
    brouillon = {c: normalisees[c] for c in CHAMPS_EDITABLES if normalisees[c] != actuelles[c]}
    modification.brouillon = brouillon
    _brouillon_change(modification)
    session.add(modification)
    await session.flush()
    return modification


def changements(modification: Modification, demande: Demande) -> list[dict[str, Any]]:
    """The draft as old and new value side by side, in the form's order."""
    return [
        {"champ": c, "valeur_actuelle": getattr(demande, c), "nouvelle_valeur": modification.brouillon[c]}
        for c in CHAMPS_EDITABLES
        if c in modification.brouillon
    ]


async def changements_affiches(
    session: AsyncSession, modification: Modification, demande: Demande
) -> list[dict[str, Any]]:
    """What a modification shows side by side. Open: its draft against the request as it is.
    Confirmed: what it applied, from the history (the request now holds the new value, so the
    old one is read where it was kept). Renounced, expired or withdrawn: nothing was applied
    and the draft was discarded."""
    if modification.statut == StatutModification.OUVERTE:
        return changements(modification, demande)
    if modification.statut != StatutModification.CONFIRMEE:
        return []
    lignes = (
        await session.exec(
            select(Historique)
            .where(Historique.modification_id == modification.id)
            .where(col(Historique.champ).startswith("informations."))
            .order_by(col(Historique.id))
        )
    ).all()
    return [
        {
            "champ": h.champ.removeprefix("informations."),
            "valeur_actuelle": h.ancienne_valeur,
            "nouvelle_valeur": h.nouvelle_valeur,
        }
        for h in lignes
    ]


class _NomFichierModele(BaseModel):
    nom_fichier: NomFichier


async def ajouter_piece(
    session: AsyncSession,
    stockage: Stockage,
    numero: str,
    type_piece: Any,
    nom_fichier: Any,
    contenu: AsyncIterable[bytes],
    taille_max: int,
    siret: str | None = None,
    pieces_max: int | None = None,
) -> Piece:
    """Add a document to the open modification's draft (a PDF, within the size limit, and
    within `pieces_max` documents per modification)."""
    erreurs = []
    if type_piece not in set(TypePieceAjoutable):
        erreurs.append(
            {
                "champ": "type",
                "message": f"Le champ « type » doit valoir l'une des valeurs : {', '.join(TypePieceAjoutable)}.",
            }
        )
    try:
        nom = _NomFichierModele.model_validate({"nom_fichier": nom_fichier}).nom_fichier
    except ValidationError as exc:
        erreurs.extend(erreurs_en_francais(exc))
        nom = ""
    if erreurs:
        raise DonneesInvalides("La pièce est invalide.", erreurs)
    modification = await charger_modification(session, numero, siret, verrou=True)
    _verifier_ouverte(modification)
    verifier_avant_echeance(modification)
    if pieces_max is not None:
        # Counted under the modification's lock: two uploads at once cannot both take the last place.
        nombre = (
            await session.exec(select(func.count()).where(Piece.modification_id == modification.id))
        ).one()
        if nombre >= pieces_max:
            raise Conflit(
                f"La modification {numero} a déjà {nombre} pièces : c'est le maximum "
                f"({pieces_max} pièces par modification). Supprimez-en une pour en ajouter une autre."
            )
    fichier = await stockage.ecrire_flux(contenu, taille_max)
    on_rollback(session, partial(stockage.supprimer, fichier.cle))
    piece = Piece(
        demande_id=modification.demande_id,
        modification_id=modification.id,
        type=str(type_piece),
        nom_fichier=nom,
        taille=fichier.taille,
        sha256=fichier.sha256,
        cle_stockage=fichier.cle,
        definitive=False,
    )
    _brouillon_change(modification)
    session.add_all([piece, modification])
    await session.flush()
    return piece


async def supprimer_piece(
    session: AsyncSession, stockage: Stockage, numero: str, piece_id: str, siret: str | None = None
) -> None:
    """Delete a document added during this modification; one from before cannot be."""
    modification = await charger_modification(session, numero, siret, verrou=True)
    piece = await session.get(Piece, piece_id)
    if piece is None or piece.demande_id != modification.demande_id:
        raise Introuvable(f"La pièce {piece_id} est introuvable.")
    if piece.modification_id != modification.id or piece.definitive:
        raise Conflit("Cette pièce était présente avant la modification : elle ne peut pas être supprimée.")
    _verifier_ouverte(modification)
    verifier_avant_echeance(modification)
    await session.delete(piece)
    _brouillon_change(modification)
    session.add(modification)
    await session.flush()
    after_commit(session, partial(stockage.supprimer, piece.cle_stockage))


async def pieces_ajoutees(session: AsyncSession, modification: Modification) -> list[Piece]:
    return list(
        (
            await session.exec(
                select(Piece).where(Piece.modification_id == modification.id).order_by(col(Piece.ajoutee_le))
            )
        ).all()
    )


@dataclass(frozen=True)
class Cloture:
    modification: Modification
    demande: Demande
    deja_fait: bool


async def confirmer(
    session: AsyncSession, numero: str, le: datetime, version_attendue: int | None = None
) -> Cloture:
    """Apply the draft's changes and documents as one new version; back to `en_cours`.
    `version_attendue`: the draft the operator saw (If-Match), or None."""
    modification = await charger_modification(session, numero, verrou=True)
    demande = await _demande_verrouillee(session, numero_demande_de(numero))
    if modification.statut == StatutModification.CONFIRMEE:
        return Cloture(modification, demande, deja_fait=True)
    _verifier_ouverte(modification)
    verifier_avant_echeance(modification, le)
    _verifier_version(modification, version_attendue)
    fusion = {**valeurs_actuelles(demande), **modification.brouillon}
    _valider_informations(fusion)
    assert demande.id is not None
    diff = changements(modification, demande)
    ajoutees = await pieces_ajoutees(session, modification)
    if diff or ajoutees:
        demande.version += 1
        for ligne in diff:
            session.add(
                Historique(
                    demande_id=demande.id,
                    version=demande.version,
                    modification_id=modification.id,
                    champ=f"informations.{ligne['champ']}",
                    ancienne_valeur=ligne["valeur_actuelle"],
                    nouvelle_valeur=ligne["nouvelle_valeur"],
                    applique_le=le,
                )
            )
            setattr(demande, ligne["champ"], ligne["nouvelle_valeur"])
        for piece in ajoutees:
            piece.definitive = True
            session.add(piece)
            session.add(
                Historique(
                    demande_id=demande.id,
                    version=demande.version,
                    modification_id=modification.id,
                    champ=CHAMP_PIECES,
                    nouvelle_valeur=f"{type_affiche(piece.type, demande.numero)} : {piece.nom_fichier}",
                    applique_le=le,
                )
            )
        modification.version_appliquee = demande.version
    modification.statut = StatutModification.CONFIRMEE
    modification.cloturee_le = le
    modification.issue = f"Confirmée : {len(diff)} champ(s) modifié(s), {len(ajoutees)} pièce(s) ajoutée(s)."
    _retour_en_cours(demande, le)
    session.add_all([modification, demande])
    await session.flush()
    return Cloture(modification, demande, deja_fait=False)


def _retour_en_cours(demande: Demande, le: datetime) -> None:
    demande.statut = StatutDemande.EN_COURS
    demande.statut_modifie_le = le


async def cloturer_sans_modifier(
    session: AsyncSession,
    stockage: Stockage,
    numero: str,
    statut: StatutModification,
    le: datetime,
    issue: str,
) -> Cloture:
    """Renounce, expire or withdraw: the draft and added documents are discarded, the
    outcome recorded, the request back `en_cours` unchanged."""
    assert statut in (StatutModification.RENONCEE, StatutModification.EXPIREE, StatutModification.RETIREE)
    modification = await charger_modification(session, numero, verrou=True)
    demande = await _demande_verrouillee(session, numero_demande_de(numero))
    if modification.statut == statut:
        return Cloture(modification, demande, deja_fait=True)
    _verifier_ouverte(modification)
    if statut == StatutModification.RENONCEE:
        verifier_avant_echeance(modification, le)
    for piece in await pieces_ajoutees(session, modification):
        await session.delete(piece)
        after_commit(session, partial(stockage.supprimer, piece.cle_stockage))
    modification.brouillon = {}
    modification.statut = statut
    modification.cloturee_le = le
    modification.issue = issue
    _retour_en_cours(demande, le)
    session.add_all([modification, demande])
    await session.flush()
    return Cloture(modification, demande, deja_fait=False)


async def prolonger(
    session: AsyncSession, numero: str, nouvelle_expiration: datetime, le: datetime
) -> Modification:
    """Move the expiry later; the reminder moves with it (same gap) unless already sent."""
    if nouvelle_expiration.tzinfo is None:
        raise DonneesInvalides(
            "La nouvelle date d'expiration doit préciser son fuseau horaire.",
            [
                {
                    "champ": "expire_le",
                    "message": "Le champ « expire_le » doit préciser le fuseau horaire (exemple : 2026-12-31T23:59:00+01:00).",
                }
            ],
        )
    modification = await charger_modification(session, numero, verrou=True)
    if modification.statut == StatutModification.OUVERTE and modification.expire_le == nouvelle_expiration:
        return modification
    _verifier_ouverte(modification)
    if nouvelle_expiration <= modification.expire_le or nouvelle_expiration <= le:
        raise DonneesInvalides(
            "La nouvelle date d'expiration doit être postérieure à l'actuelle.",
            [
                {
                    "champ": "expire_le",
                    "message": "Le champ « expire_le » doit être postérieur à l'échéance actuelle.",
                }
            ],
        )
    if nouvelle_expiration > le + PROLONGATION_MAX:
        raise DonneesInvalides(
            "La nouvelle date d'expiration est trop lointaine.",
            [
                {
                    "champ": "expire_le",
                    "message": "Le champ « expire_le » ne peut pas dépasser un an à compter d'aujourd'hui.",
                }
            ],
        )
    if modification.relance_envoyee_le is None:
        modification.relance_le = nouvelle_expiration - (modification.expire_le - modification.relance_le)
    modification.expire_le = nouvelle_expiration
    session.add(modification)
    await session.flush()
    return modification


async def noter_relance(session: AsyncSession, numero: str, le: datetime) -> Modification:
    """Record that the reminder went out (once); refused once the modification is closed."""
    modification = await charger_modification(session, numero, verrou=True)
    _verifier_ouverte(modification)
    if modification.relance_envoyee_le is None:
        modification.relance_envoyee_le = le
        session.add(modification)
        await session.flush()
    return modification
