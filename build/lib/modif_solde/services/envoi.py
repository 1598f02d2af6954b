"""Automatic e-mails: logged on the request before sending, sent once over SMTP (aiosmtplib).

The log row carries an idempotency key (modification + kind): it is created once, with the
rendered subject and bodies, and marked `envoye` once the SMTP server accepted the message, or
`echec` with the server's answer when it refused for good. A retried activity finds it marked
and sends nothing again; it always resends the same content with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as insert_postgresql
from sqlalchemy.dialects.sqlite import insert as insert_sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde import compteurs as metriques
from modif_solde.models.enums import StatutEnvoi, TypeCourriel
from modif_solde.models.schemas import type_affiche
from modif_solde.models.tables import Courriel, Demande, Historique, Modification, Operateur, Piece
from modif_solde.services import attendus
from modif_solde.services.courriels import ContexteCourriel, CourrielRendu
from modif_solde.services.erreurs import Introuvable

journal = logging.getLogger(__name__)


class Expediteur(Protocol):
    async def envoyer(self, message: Message) -> None: ...


class EnvoiRefuse(Exception):
    """The SMTP server refused the message for good (5xx), or the configuration forbids sending
    it: trying again would get the same answer. `reponse` is the server's code and message."""

    def __init__(self, reponse: str) -> None:
        super().__init__(reponse)
        self.reponse = reponse


def reponse_du_serveur(err: BaseException) -> str:
    """The server's answer (code and message) carried by an aiosmtplib error, or the error itself."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused) and err.recipients:
        return "; ".join(f"{r.code} {r.message} ({r.recipient})" for r in err.recipients)
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return f"{err.code} {err.message}"
    if isinstance(err, TimeoutError):
        return "délai dépassé : le serveur SMTP ne répond pas"
    return str(err) or type(err).__name__


def est_definitif(err: BaseException) -> bool:
    """A 5xx reply is final (RFC 5321 §4.2.1): the same message would be refused again."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        return bool(err.recipients) and all(r.code >= 500 for r in err.recipients)
    return isinstance(err, aiosmtplib.SMTPResponseException) and err.code >= 500


class ExpediteurSmtp:
    """Sends through the server named by an URL: smtp://[user:password@]host[:port][?starttls=1],
    or smtps:// for implicit TLS. With `starttls=1` the upgrade is required: a server that does
    not offer it gets nothing, rather than the message in clear.

    Bounds: each SMTP command `delai` (10 s), the whole exchange (connect, TLS, login, send)
    `delai_total` (20 s), both well under the e-mail activity's start-to-close timeout (30 s):
    an attempt is over before Temporal could start the next one, so the two never both send."""

    def __init__(
        self,
        url: str,
        delai: float = 10.0,
        delai_total: float = 20.0,
        contexte_tls: ssl.SSLContext | None = None,
    ) -> None:
        parties = urlsplit(url)
        if parties.scheme not in ("smtp", "smtps"):
            raise ValueError("MODIF_SOLDE_SMTP_URL doit commencer par smtp:// ou smtps://")
        options = parse_qs(parties.query)
        self.delai = delai
        self.delai_total = delai_total
        self._hote = parties.hostname or "127.0.0.1"
        self._starttls_exige = options.get("starttls", ["0"])[0] in ("1", "true", "oui")
        self._options: dict[str, Any] = {
            "hostname": self._hote,
            "port": parties.port or (465 if parties.scheme == "smtps" else 25),
            "username": unquote(parties.username) if parties.username else None,
            "password": unquote(parties.password) if parties.password else None,
            "use_tls": parties.scheme == "smtps",
            "timeout": delai,
            # None: the system's trusted CAs, certificates checked.
            "tls_context": contexte_tls,
        }
        if self._starttls_exige:
            # Done by hand below, so that a server without STARTTLS is a clear, final refusal.
            self._options["start_tls"] = False
        else:
            # Let aiosmtplib use STARTTLS when the server offers it, except on loopback sinks.
            self._options["start_tls"] = False if self._hote in ("127.0.0.1", "localhost") else None

    async def envoyer(self, message: Message) -> None:
        try:
            async with asyncio.timeout(self.delai_total):
                if "local_hostname" not in self._options:
                    # The name given in EHLO: aiosmtplib would look it up (a thread and a DNS
                    # query) at every connection; this machine's name does not change.
                    self._options["local_hostname"] = await asyncio.to_thread(socket.getfqdn)
                if self._starttls_exige:
                    await self._envoyer_avec_starttls(message)
                else:
                    await aiosmtplib.send(message, **self._options)
        except aiosmtplib.SMTPException as err:
            if est_definitif(err):
                raise EnvoiRefuse(reponse_du_serveur(err)) from err
            raise

    async def _envoyer_avec_starttls(self, message: Message) -> None:
        options = dict(self._options)
        identifiant, mot_de_passe = options.pop("username"), options.pop("password")
        client = aiosmtplib.SMTP(**options)
        await client.connect()
        try:
            await client.ehlo()
            if not client.supports_extension("starttls"):
                reponse = (
                    f"le serveur SMTP {self._hote} ne propose pas STARTTLS, exigé par "
                    "MODIF_SOLDE_SMTP_URL (?starttls=1) : aucun courriel n'est envoyé en clair"
                )
                journal.error("configuration SMTP : %s", reponse)
                raise EnvoiRefuse(reponse)
            await client.starttls()
            if identifiant:
                await client.login(identifiant, mot_de_passe or "")
            await client.send_message(message)
        finally:
            client.close()


def cle_idempotence(modification_numero: str, type_courriel: TypeCourriel, discriminant: str = "") -> str:
    return ":".join(p for p in (modification_numero, type_courriel.value, discriminant) if p)


def message_id(cle: str) -> str:
    return f"<{hashlib.sha256(cle.encode()).hexdigest()[:40]}@modif-solde>"


# The kinds whose templates list the applied changes and the documents added (_blocs).
_AVEC_CHANGEMENTS = {TypeCourriel.CONFIRMATION, TypeCourriel.CONFIRMATION_GESTIONNAIRES}


async def charger_pour_courriel(
    session: AsyncSession, modification_numero: str
) -> tuple[Modification, Demande, Operateur]:
    """The modification, its request and its operator in one query (the e-mail activity)."""
    ligne = (
        await session.exec(
            select(Modification, Demande, Operateur)
            .join(Demande, col(Demande.id) == Modification.demande_id)
            .join(Operateur, col(Operateur.id) == Demande.operateur_id)
            .where(Modification.numero == modification_numero)
        )
    ).first()
    if ligne is None:
        raise Introuvable(f"La modification {modification_numero} est introuvable.")
    return ligne


async def contexte(
    session: AsyncSession,
    modification: Modification,
    lien_base: str,
    type_courriel: TypeCourriel | None = None,
) -> ContexteCourriel:
    """What the templates need, read from the database as it is now. With `type_courriel`,
    the changes and documents are read only for the kinds whose templates show them."""
    demande = await session.get_one(Demande, modification.demande_id)
    operateur = await session.get_one(Operateur, demande.operateur_id)
    if type_courriel == TypeCourriel.RELANCE:
        # The reminder recalls only what is still expected, as it stands when it is sent.
        restants = attendus.restants(await attendus.etat_modification(session, modification))
        return replace(
            _contexte(modification, demande, operateur, lien_base, [], []), champs_attendus=restants
        )
    if type_courriel is not None and type_courriel not in _AVEC_CHANGEMENTS:
        return _contexte(modification, demande, operateur, lien_base, [], [])
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
    return _contexte(modification, demande, operateur, lien_base, historique, pieces)


def _contexte(
    modification: Modification,
    demande: Demande,
    operateur: Operateur,
    lien_base: str,
    historique: Sequence[Historique],
    pieces: Sequence[Piece],
) -> ContexteCourriel:
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


async def consigner_et_tenter(
    session: AsyncSession,
    modification: Modification,
    type_courriel: TypeCourriel,
    destinataire: str,
    rendu: CourrielRendu,
    cle: str,
    le: datetime,
) -> tuple[Courriel, bool]:
    """The log row for this key and this attempt, in one statement: created on the first call
    (its first attempt counted), or, if it is still waiting, its attempt counted, with the
    content logged the first time (what is sent again is what was logged). Returns the row and
    whether it is to be sent; a row already sent or failed is read back and not to be sent."""
    dialecte = session.get_bind().dialect.name
    insert = insert_postgresql if dialecte == "postgresql" else insert_sqlite
    table = Courriel.__table__  # type: ignore[attr-defined]
    requete = insert(Courriel).values(
        demande_id=modification.demande_id,
        modification_id=modification.id,
        type=type_courriel.value,
        destinataire=destinataire,
        sujet=rendu.sujet,
        corps_texte=rendu.texte,
        corps_html=rendu.html,
        cle_idempotence=cle,
        message_id=message_id(cle),
        cree_le=le,
        tentatives=1,
        statut_envoi=StatutEnvoi.EN_ATTENTE.value,
        derniere_tentative_le=le,
    )
    upsert = requete.on_conflict_do_update(
        index_elements=[table.c.cle_idempotence],
        set_={"tentatives": table.c.tentatives + 1, "derniere_tentative_le": le},
        where=(table.c.statut_envoi == StatutEnvoi.EN_ATTENTE.value) & table.c.envoye_le.is_(None),
    ).returning(Courriel)
    courriel = (await session.exec(upsert.execution_options(populate_existing=True))).scalar_one_or_none()
    if courriel is not None:
        return courriel, True
    # Already sent, or given up: the row as it is, nothing to send.
    existant = (await session.exec(select(Courriel).where(Courriel.cle_idempotence == cle))).one()
    return existant, False


async def marquer_envoye(session: AsyncSession, courriel: Courriel, le: datetime) -> None:
    """The SMTP server accepted it: `envoye`, in one statement (a row already marked keeps its
    date, and is not counted twice)."""
    resultat = await session.exec(
        update(Courriel)
        .where(col(Courriel.id) == courriel.id, col(Courriel.envoye_le).is_(None))
        .values(envoye_le=le, statut_envoi=StatutEnvoi.ENVOYE.value, erreur_envoi=None)
    )
    if resultat.rowcount == 1:
        metriques.courriel(courriel.type, "envoye")


# The bodies in quoted-printable UTF-8, as the modern policy wrote them; the message itself is
# built with the email package's compat32 classes: the modern policy's header parsing and
# refolding cost about 4 ms per message, five times the rest of its building (bench profile).
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _sans_saut_de_ligne(valeur: str) -> str:
    """A header's value never holds a line break: nothing can be smuggled in after it."""
    if "\r" in valeur or "\n" in valeur:
        raise ValueError("saut de ligne dans un en-tête de courriel")
    return valeur


def _entete(valeur: str) -> str | Header:
    """A header's text, non-ASCII as RFC 2047 encoded words."""
    valeur = _sans_saut_de_ligne(valeur)
    return valeur if valeur.isascii() else Header(valeur, "utf-8")


def _adresse(valeur: str) -> str:
    """An address, with its display name encoded if it has one (« Portail <ne-pas-repondre@…> »)."""
    nom, adresse = parseaddr(_sans_saut_de_ligne(valeur))
    if not adresse:
        return valeur
    return formataddr((nom, adresse), charset="utf-8") if nom else adresse


def _partie(corps: str, sous_type: str) -> MIMENonMultipart:
    partie = MIMENonMultipart("text", sous_type)
    partie.set_payload(corps, _UTF8_QP)
    return partie


def construire_message(courriel: Courriel, expediteur: str) -> Message:
    message = MIMEMultipart("alternative")
    # compat32 takes a Header as a value (typeshed says str only).
    entetes: dict[str, Any] = {
        "From": _adresse(expediteur),
        "To": _adresse(courriel.destinataire),
        "Subject": _entete(courriel.sujet),
        "Date": format_datetime(courriel.cree_le),
        "Message-ID": _entete(courriel.message_id or make_msgid(domain="modif-solde")),
        "X-Modif-Solde-Cle": _entete(courriel.cle_idempotence),
        "Auto-Submitted": "auto-generated",
    }
    for nom, valeur in entetes.items():
        message[nom] = valeur
    message.attach(_partie(courriel.corps_texte, "plain"))
    message.attach(_partie(courriel.corps_html, "html"))
    return message


async def noter_erreur(session: AsyncSession, courriel_id: int, erreur: str, definitive: bool) -> Courriel:
    """Record the server's answer: final (`echec`), or the last temporary one (still `en_attente`).
    A row already sent or failed keeps its outcome."""
    courriel = await session.get_one(Courriel, courriel_id, with_for_update=True)
    if courriel.statut_envoi == StatutEnvoi.EN_ATTENTE:
        courriel.erreur_envoi = erreur[:2000]
        if definitive:
            courriel.statut_envoi = StatutEnvoi.ECHEC
        session.add(courriel)
        await session.flush()
        metriques.courriel(courriel.type, "echec" if definitive else "reessai")
    return courriel


async def noter_echec_par_cle(session: AsyncSession, cle: str, erreur: str) -> Courriel | None:
    """Give up an e-mail still waiting (the workflow's last word after its retries): `echec`,
    with the reason and the last temporary answer the server gave."""
    courriel = (
        await session.exec(select(Courriel).where(Courriel.cle_idempotence == cle).with_for_update())
    ).first()
    if courriel is None or courriel.statut_envoi != StatutEnvoi.EN_ATTENTE:
        return courriel
    assert courriel.id is not None
    derniere = courriel.erreur_envoi
    return await noter_erreur(
        session,
        courriel.id,
        f"{erreur} (dernière réponse : {derniere})" if derniere else erreur,
        definitive=True,
    )
