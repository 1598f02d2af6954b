"""The guide's second way into a modification: while its request is « en cours », the operator
reports an error or omission (what is wrong, which expected items). The report waits in the
gestionnaires' work queue until one of them opens a modification from it (comment and expected
items pre-filled) or answers that none is needed: the operator is then told by e-mail, logged
on the request like the cycle's e-mails."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutEnvoi
from modif_solde.models.regles import CONTROLE_MULTILIGNE
from modif_solde.models.tables import Courriel, Demande, Modification, Signalement
from modif_solde.services import envoi
from modif_solde.services.courriels import SUJET_LONGUEUR_MAX, environnement
from modif_solde.services.demandes import charger_demande
from modif_solde.services.erreurs import Conflit, DonneesInvalides, Introuvable
from modif_solde.services.modifications import CHAMPS_ATTENDUS_POSSIBLES

DESCRIPTION_MAX = 2000
REPONSE_MAX = 2000
TYPE_COURRIEL_SANS_SUITE = "signalement_sans_suite"
# Multi-line text: line feeds and tabs allowed, other control characters not.


class StatutSignalement(StrEnum):
    NOUVEAU = "nouveau"
    MODIFICATION_OUVERTE = "modification_ouverte"
    SANS_SUITE = "sans_suite"


def _texte(nom: str, valeur: Any, maximum: int) -> tuple[str | None, dict[str, str] | None]:
    """A multi-line text, required and bounded: its clean value or the error naming it."""
    if not isinstance(valeur, str) or not valeur.strip():
        return None, {"champ": nom, "message": f"Le champ « {nom} » est obligatoire."}
    texte = valeur.strip().replace("\r\n", "\n")
    if len(texte) > maximum:
        return None, {
            "champ": nom,
            "message": f"Le champ « {nom} » ne doit pas dépasser {maximum} caractères ({len(texte)} saisis).",
        }
    if CONTROLE_MULTILIGNE.search(texte):
        return None, {
            "champ": nom,
            "message": f"Le champ « {nom} » ne doit pas contenir de caractère de contrôle.",
        }
    return texte, None


def verifier(description: Any, champs: Any) -> tuple[str, list[str]]:
    """What is wrong (multi-line text) and which expected items (the gestionnaire's vocabulary)."""
    erreurs: list[dict[str, str]] = []
    texte, erreur = _texte("description", description, DESCRIPTION_MAX)
    if erreur:
        erreurs.append(erreur)
    if not isinstance(champs, list) or not champs:
        erreurs.append(
            {"champ": "champs", "message": "Le champ « champs » doit lister au moins un élément concerné."}
        )
    else:
        for i, champ in enumerate(champs):
            if champ not in CHAMPS_ATTENDUS_POSSIBLES:
                erreurs.append(
                    {
                        "champ": f"champs.{i}",
                        "message": f"Le champ « champs.{i} » doit valoir l'une des valeurs : "
                        f"{', '.join(CHAMPS_ATTENDUS_POSSIBLES)}.",
                    }
                )
    if erreurs:
        raise DonneesInvalides("Le signalement est invalide.", erreurs)
    assert texte is not None and isinstance(champs, list)
    return texte, list(dict.fromkeys(champs))


async def signaler(
    session: AsyncSession,
    demande_numero: str,
    siret: str | None,
    description: Any,
    champs: Any,
    par: str,
    le: datetime,
) -> Signalement:
    """The operator's report on its own request (`siret` scopes it), only while « en cours »."""
    texte, elements = verifier(description, champs)
    demande = await charger_demande(session, demande_numero, siret)
    if demande.statut != StatutDemande.EN_COURS:
        raise Conflit(
            f"La demande {demande_numero} n'est pas « en cours » : une erreur ou un oubli ne peut être "
            "signalé que tant qu'elle l'est. Si une modification est ouverte, faites vos corrections dans celle-ci."
        )
    assert demande.id is not None
    signalement = Signalement(demande_id=demande.id, description=texte, champs=elements, par=par, cree_le=le)
    session.add(signalement)
    await session.flush()
    return signalement


async def de_la_demande(session: AsyncSession, demande_numero: str) -> list[Signalement]:
    """A request's reports, newest first."""
    return list(
        (
            await session.exec(
                select(Signalement)
                .join(Demande, col(Demande.id) == Signalement.demande_id)
                .where(Demande.numero == demande_numero)
                .order_by(col(Signalement.cree_le).desc(), col(Signalement.id).desc())
            )
        ).all()
    )


async def de_la_demande_avec_modifications(
    session: AsyncSession, demande_numero: str
) -> list[tuple[Signalement, str | None]]:
    """A request's reports, newest first, each with the number of the modification opened from
    it (one statement: the request page's)."""
    lignes = (
        await session.exec(
            select(Signalement, Modification.numero)
            .join(Demande, col(Demande.id) == Signalement.demande_id)
            .outerjoin(Modification, col(Modification.id) == Signalement.modification_id)
            .where(Demande.numero == demande_numero)
            .order_by(col(Signalement.cree_le).desc(), col(Signalement.id).desc())
        )
    ).all()
    return [(s, n) for s, n in lignes]


def en_attente_clause() -> Any:
    """The requests with a report waiting for a gestionnaire (a filter of the work queue)."""
    return col(Demande.id).in_(
        select(Signalement.demande_id).where(Signalement.statut == StatutSignalement.NOUVEAU)
    )


async def demandes_en_attente(session: AsyncSession, numeros: Sequence[str]) -> set[str]:
    """Of these requests, those with a report waiting (the work queue's badge)."""
    if not numeros:
        return set()
    lignes = (
        await session.exec(
            select(Demande.numero)
            .join(Signalement, col(Signalement.demande_id) == Demande.id)
            .where(col(Demande.numero).in_(list(numeros)), Signalement.statut == StatutSignalement.NOUVEAU)
        )
    ).all()
    return set(lignes)


async def charger(
    session: AsyncSession, signalement_id: int, demande_numero: str | None = None
) -> Signalement:
    signalement = await session.get(Signalement, signalement_id)
    if signalement is not None and demande_numero is not None:
        demande = await session.get_one(Demande, signalement.demande_id)
        if demande.numero != demande_numero:
            signalement = None
    if signalement is None:
        raise Introuvable(f"Le signalement {signalement_id} est introuvable.")
    return signalement


def _exiger_nouveau(signalement: Signalement) -> None:
    if signalement.statut != StatutSignalement.NOUVEAU:
        raise Conflit(f"Le signalement {signalement.id} a déjà été traité.")


async def rattacher(
    session: AsyncSession, signalement_id: int, modification_numero: str, par: str, le: datetime
) -> Signalement:
    """The modification a gestionnaire opened from this report."""
    signalement = await session.get_one(Signalement, signalement_id, with_for_update=True)
    _exiger_nouveau(signalement)
    modification = (
        await session.exec(select(Modification).where(Modification.numero == modification_numero))
    ).one()
    signalement.statut = StatutSignalement.MODIFICATION_OUVERTE
    signalement.modification_id = modification.id
    signalement.traite_par, signalement.traite_le = par, le
    session.add(signalement)
    await session.flush()
    return signalement


def _sujet(demande_numero: str) -> str:
    sujet = f"Votre signalement sur la demande de solde {demande_numero} : aucune modification nécessaire"
    return sujet[:SUJET_LONGUEUR_MAX]


async def repondre_sans_suite(
    session: AsyncSession, signalement_id: int, reponse: Any, par: str, le: datetime, lien_base: str
) -> Courriel:
    """The gestionnaire's answer that no modification is needed: the report is closed and the
    e-mail that tells the operator is logged on the request, to be sent (`envoyer`) once this
    transaction is committed."""
    texte, erreur = _texte("reponse", reponse, REPONSE_MAX)
    if erreur:
        raise DonneesInvalides("La réponse est invalide.", [erreur])
    assert texte is not None
    signalement = await session.get(Signalement, signalement_id, with_for_update=True)
    if signalement is None:
        raise Introuvable(f"Le signalement {signalement_id} est introuvable.")
    _exiger_nouveau(signalement)
    demande = await session.get_one(Demande, signalement.demande_id)
    signalement.statut = StatutSignalement.SANS_SUITE
    signalement.reponse = texte
    signalement.traite_par, signalement.traite_le = par, le
    session.add(signalement)
    sujet = _sujet(demande.numero)
    variables = {
        "sujet": sujet,
        "demande_numero": demande.numero,
        "denomination": demande.operateur_denomination,
        "signale_le": signalement.cree_le,
        "description": signalement.description,
        "champs": signalement.champs,
        "reponse": texte,
        "lien": f"{lien_base.rstrip('/')}/demandes/{demande.numero}",
    }
    cle = f"{demande.numero}:signalement:{signalement_id}:sans_suite"
    courriel = Courriel(
        demande_id=demande.id,  # type: ignore[arg-type]
        modification_id=None,
        type=TYPE_COURRIEL_SANS_SUITE,
        destinataire=demande.operateur_courriel,
        sujet=sujet,
        corps_texte=environnement.get_template(f"{TYPE_COURRIEL_SANS_SUITE}.txt.j2").render(variables),
        corps_html=environnement.get_template(f"{TYPE_COURRIEL_SANS_SUITE}.html.j2").render(variables),
        cle_idempotence=cle,
        message_id=envoi.message_id(cle),
        cree_le=le,
        tentatives=1,
        derniere_tentative_le=le,
    )
    session.add(courriel)
    await session.flush()
    return courriel


async def envoyer(
    sessions: SessionFactory,
    expediteur: envoi.Expediteur,
    adresse_expediteur: str,
    courriel_id: int,
    le: datetime,
) -> StatutEnvoi:
    """Send a logged answer once; the outcome is noted on its row (`echec` for a final refusal,
    the server's answer kept while `en_attente`)."""
    async with unit_of_work(sessions) as session:
        courriel = await session.get_one(Courriel, courriel_id)
        message = envoi.construire_message(courriel, adresse_expediteur)
    try:
        await expediteur.envoyer(message)
    except envoi.EnvoiRefuse as refus:
        async with unit_of_work(sessions) as session:
            await envoi.noter_erreur(session, courriel_id, refus.reponse, definitive=True)
        return StatutEnvoi.ECHEC
    except Exception as err:
        async with unit_of_work(sessions) as session:
            await envoi.noter_erreur(session, courriel_id, envoi.reponse_du_serveur(err), definitive=False)
        return StatutEnvoi.EN_ATTENTE
    async with unit_of_work(sessions) as session:
        courriel = await session.get_one(Courriel, courriel_id)
        await envoi.marquer_envoye(session, courriel, le)
    return StatutEnvoi.ENVOYE
