"""Automatic e-mails: logged on the request before sending, sent once over SMTP (aiosmtplib).

The log row carries an idempotency key (modification + kind): it is created once, with the
rendered subject and bodies, and marked sent once the SMTP server accepted the message. A
retried activity finds it marked and sends nothing again; it always resends the same content
with the same Message-ID.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models.enums import TypeCourriel
from modif_solde.models.schemas import type_affiche
from modif_solde.models.tables import Courriel, Demande, Historique, Modification, Operateur, Piece
from modif_solde.services.courriels import ContexteCourriel, CourrielRendu

journal = logging.getLogger(__name__)


class Expediteur(Protocol):
    async def envoyer(self, message: EmailMessage) -> None: ...


class ExpediteurSmtp:
    """Sends through the server named by an URL: smtp://[user:password@]host[:port][?starttls=1],
    or smtps:// for implicit TLS."""

    def __init__(self, url: str, delai: float = 15.0) -> None:
        parties = urlsplit(url)
        if parties.scheme not in ("smtp", "smtps"):
            raise ValueError("MODIF_SOLDE_SMTP_URL doit commencer par smtp:// ou smtps://")
        options = parse_qs(parties.query)
        self._options: dict[str, Any] = {
            "hostname": parties.hostname or "127.0.0.1",
            "port": parties.port or (465 if parties.scheme == "smtps" else 25),
            "username": unquote(parties.username) if parties.username else None,
            "password": unquote(parties.password) if parties.password else None,
            "use_tls": parties.scheme == "smtps",
            "start_tls": options.get("starttls", ["0"])[0] in ("1", "true", "oui") or None,
            "timeout": delai,
        }
        if self._options["start_tls"] is None:
            # Let aiosmtplib use STARTTLS when the server offers it, except on loopback sinks.
            self._options["start_tls"] = (
                False if self._options["hostname"] in ("127.0.0.1", "localhost") else None
            )

    async def envoyer(self, message: EmailMessage) -> None:
        await aiosmtplib.send(message, **self._options)


def cle_idempotence(modification_numero: str, type_courriel: TypeCourriel, discriminant: str = "") -> str:
    return ":".join(p for p in (modification_numero, type_courriel.value, discriminant) if p)


def message_id(cle: str) -> str:
    return f"<{hashlib.sha256(cle.encode()).hexdigest()[:40]}@modif-solde>"


async def contexte(session: AsyncSession, modification: Modification, lien_base: str) -> ContexteCourriel:
    """What the templates need, read from the database as it is now."""
    demande = await session.get_one(Demande, modification.demande_id)
    operateur = await session.get_one(Operateur, demande.operateur_id)
    historique = (
        await session.exec(
            select(Historique)
            .where(Historique.modification_id == modification.id)
            .where(col(Historique.champ).startswith("informations."))
            .order_by(col(Historique.id))
        )
    ).all()
    pieces = (
        await session.exec(
            select(Piece).where(Piece.modification_id == modification.id).order_by(col(Piece.ajoutee_le))
        )
    ).all()
    return ContexteCourriel(
        demande_numero=demande.numero,
        modification_numero=modification.numero,
        denomination=demande.operateur_denomination,
        siret=operateur.siret,
        commentaire=modification.commentaire,
        champs_attendus=list(modification.champs_attendus),
        ouverte_le=modification.ouverte_le,
        relance_le=modification.relance_le,
        expire_le=modification.expire_le,
        lien=f"{lien_base.rstrip('/')}/demandes/{demande.numero}",
        changements=[
            {
                "champ": h.champ.removeprefix("informations."),
                "valeur_actuelle": h.ancienne_valeur,
                "nouvelle_valeur": h.nouvelle_valeur,
            }
            for h in historique
        ],
        pieces_ajoutees=[
            {"type": type_affiche(p.type, demande.numero), "nom_fichier": p.nom_fichier}
            for p in pieces
            if p.definitive
        ],
    )


async def consigner(
    session: AsyncSession,
    modification: Modification,
    type_courriel: TypeCourriel,
    destinataire: str,
    rendu: CourrielRendu,
    cle: str,
) -> Courriel:
    """The log row for this key: created on first call, returned unchanged afterwards."""
    existant = (await session.exec(select(Courriel).where(Courriel.cle_idempotence == cle))).first()
    if existant is not None:
        return existant
    courriel = Courriel(
        demande_id=modification.demande_id,
        modification_id=modification.id,
        type=type_courriel.value,
        destinataire=destinataire,
        sujet=rendu.sujet,
        corps_texte=rendu.texte,
        corps_html=rendu.html,
        cle_idempotence=cle,
        message_id=message_id(cle),
    )
    session.add(courriel)
    await session.flush()
    return courriel


def construire_message(courriel: Courriel, expediteur: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = expediteur
    message["To"] = courriel.destinataire
    message["Subject"] = courriel.sujet
    message["Date"] = format_datetime(courriel.cree_le)
    message["Message-ID"] = courriel.message_id or make_msgid(domain="modif-solde")
    message["X-Modif-Solde-Cle"] = courriel.cle_idempotence
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(courriel.corps_texte)
    message.add_alternative(courriel.corps_html, subtype="html")
    return message


async def noter_tentative(session: AsyncSession, courriel_id: int) -> Courriel:
    courriel = await session.get_one(Courriel, courriel_id, with_for_update=True)
    courriel.tentatives += 1
    session.add(courriel)
    await session.flush()
    return courriel


async def noter_envoi(session: AsyncSession, courriel_id: int, le: datetime) -> None:
    courriel = await session.get_one(Courriel, courriel_id, with_for_update=True)
    if courriel.envoye_le is None:
        courriel.envoye_le = le
        session.add(courriel)
        await session.flush()
