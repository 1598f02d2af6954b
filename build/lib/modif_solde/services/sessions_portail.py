"""The portal's sessions, kept in the database: opened at login, read at every page (with the
gestionnaires' list, in the page's own transaction), ended at logout or when a gestionnaire is
removed, swept once expired. The browser holds only an opaque random identifier."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models.tables import Gestionnaire, SessionPortail

# "Last seen" is written at most this often: a page that only reads costs no write, and the
# inactivity timeout is counted to the minute.
VU_AU_PLUS_TOUTES_LES = timedelta(minutes=1)
# A cookie longer than this is none of ours (token_urlsafe(32) gives 43 characters).
JETON_LONGUEUR_MAX = 64


@dataclass(frozen=True)
class Identite:
    """Who logged in, as the provider said (ID token and userinfo), and its ID token."""

    sub: str
    courriel: str | None
    siret: str | None
    prenom: str | None
    nom_usage: str | None
    id_token: str | None


@dataclass(frozen=True)
class Duree:
    inactivite: timedelta
    maximum: timedelta

    def expiration(self, cree_le: datetime, vu_le: datetime) -> datetime:
        return min(cree_le + self.maximum, vu_le + self.inactivite)


@dataclass(frozen=True)
class SessionOuverte(Identite):
    """A valid session as a page reads it, with whether its e-mail is on the gestionnaires' list."""

    cle: str
    csrf: str
    cree_le: datetime
    vu_le: datetime
    gestionnaire: bool


def cle_de(jeton: str) -> str:
    """The row's key: the SHA-256 of the cookie's identifier (a leaked table opens nothing)."""
    return hashlib.sha256(jeton.encode()).hexdigest()


async def ouvrir(
    session: AsyncSession, identite: Identite, duree: Duree, le: datetime, remplace: str | None = None
) -> str:
    """A new session; the identifier to put in the cookie. The browser's previous session, if
    any (`remplace`, its cookie), ends here: the identifier is new at each login. Expired
    sessions are swept in the same transaction."""
    if remplace:
        await session.exec(delete(SessionPortail).where(col(SessionPortail.id) == cle_de(remplace)))
    await purger_expirees(session, le)
    jeton = secrets.token_urlsafe(32)
    session.add(
        SessionPortail(
            id=cle_de(jeton),
            sub=identite.sub,
            courriel=identite.courriel,
            siret=identite.siret,
            prenom=identite.prenom,
            nom_usage=identite.nom_usage,
            id_token=identite.id_token,
            csrf=secrets.token_urlsafe(32),
            cree_le=le,
            vu_le=le,
            expire_le=duree.expiration(le, le),
        )
    )
    await session.flush()
    return jeton


async def lire(session: AsyncSession, jeton: str | None, duree: Duree, le: datetime) -> SessionOuverte | None:
    """The session of this cookie, if it exists and has not expired; one statement, joined with
    the gestionnaires' list (decided here at every page, never by a claim). Expiry is computed
    with the current settings (a shorter timeout applies at once); `expire_le` serves the sweep."""
    if not jeton or len(jeton) > JETON_LONGUEUR_MAX:
        return None
    requete = (
        select(SessionPortail, col(Gestionnaire.id).is_not(None))
        .outerjoin(Gestionnaire, col(Gestionnaire.courriel) == col(SessionPortail.courriel))
        .where(col(SessionPortail.id) == cle_de(jeton))
    )
    ligne = (await session.exec(requete)).first()
    if ligne is None:
        return None
    s, gestionnaire = ligne
    if le >= min(s.expire_le, duree.expiration(s.cree_le, s.vu_le)):
        return None
    return SessionOuverte(
        cle=s.id,
        sub=s.sub,
        courriel=s.courriel,
        siret=s.siret,
        prenom=s.prenom,
        nom_usage=s.nom_usage,
        id_token=s.id_token,
        csrf=s.csrf,
        cree_le=s.cree_le,
        vu_le=s.vu_le,
        gestionnaire=bool(gestionnaire),
    )


def activite_a_noter(ouverte: SessionOuverte, le: datetime) -> bool:
    return le - ouverte.vu_le >= VU_AU_PLUS_TOUTES_LES


async def noter_activite(session: AsyncSession, ouverte: SessionOuverte, duree: Duree, le: datetime) -> None:
    """Push the inactivity timeout back (within the maximum duration)."""
    await session.exec(
        update(SessionPortail)
        .where(col(SessionPortail.id) == ouverte.cle)
        .values(vu_le=le, expire_le=duree.expiration(ouverte.cree_le, le))
    )


async def fermer(session: AsyncSession, cle: str) -> None:
    await session.exec(delete(SessionPortail).where(col(SessionPortail.id) == cle))


async def fermer_pour_courriel(session: AsyncSession, courriel: str) -> int:
    """End every session of this (normalized) address: the number ended."""
    resultat = await session.exec(delete(SessionPortail).where(col(SessionPortail.courriel) == courriel))
    return int(resultat.rowcount or 0)


async def purger_expirees(session: AsyncSession, le: datetime) -> int:
    """Delete the expired sessions (their identity and ID token with them): the number deleted."""
    resultat = await session.exec(delete(SessionPortail).where(col(SessionPortail.expire_le) <= le))
    return int(resultat.rowcount or 0)
