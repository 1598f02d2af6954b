"""The portal's session (a signed cookie), its timeouts, CSRF tokens and the logged-in user."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Form, Request
from itsdangerous import BadSignature, URLSafeSerializer
from sqlmodel.ext.asyncio.session import AsyncSession
from stdnum.fr import siret as stdnum_siret

from modif_solde.api.auth import Role, Utilisateur
from modif_solde.api.problemes import Probleme
from modif_solde.config import Settings
from modif_solde.db import unit_of_work
from modif_solde.journal import noter_appelant
from modif_solde.services.gestionnaires import est_gestionnaire

COOKIE = "modif_solde_session"
_SEL_CSRF = "modif-solde-csrf"


class ConnexionRequise(Exception):
    """No (or an expired) session: the page sends the user to the login, then back to `retour`."""

    def __init__(self, retour: str) -> None:
        super().__init__(retour)
        self.retour = retour


def retour_sur(retour: str | None, defaut: str = "/demandes") -> str:
    """Only a local path: no scheme, no host, no `//` or backslash trick (no open redirect)."""
    if not retour or not retour.startswith("/") or retour.startswith(("//", "/\\")):
        return defaut
    if any(c in retour for c in "\\\r\n\t") or any(ord(c) < 32 for c in retour):
        return defaut
    morceaux = urlsplit(retour)
    if morceaux.scheme or morceaux.netloc:
        return defaut
    return retour


def url_connexion(retour: str) -> str:
    return f"/connexion?retour={quote(retour, safe='/')}"


def ouvrir(request: Request, identite: dict[str, Any]) -> None:
    """A new session at login: whatever was there is dropped and the identifier is new."""
    maintenant = int(time.time())
    request.session.clear()
    request.session.update(
        {**identite, "sid": secrets.token_urlsafe(32), "cree": maintenant, "vu": maintenant}
    )


def fermer(request: Request) -> None:
    request.session.clear()


def active(request: Request, settings: Settings) -> dict[str, Any] | None:
    """The session's content, or None (and the session cleared) past either timeout."""
    session = request.session
    if "sid" not in session:
        return None
    maintenant = int(time.time())
    cree, vu = int(session.get("cree", 0)), int(session.get("vu", 0))
    if (
        maintenant - cree > settings.SESSION_DUREE_MAX.total_seconds()
        or maintenant - vu > settings.SESSION_INACTIVITE.total_seconds()
    ):
        session.clear()
        return None
    session["vu"] = maintenant
    return dict(session)


def jeton_csrf(request: Request) -> str:
    """Bound to this session's identifier: useless in another session, void after logout."""
    settings: Settings = request.app.state.settings
    return str(
        URLSafeSerializer(settings.SESSION_SECRET, salt=_SEL_CSRF).dumps(request.session.get("sid", ""))
    )


def verifier_csrf(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """Every form that changes something carries the session's token; checked here, once."""
    settings: Settings = request.app.state.settings
    sid = request.session.get("sid")
    try:
        valide = bool(sid) and URLSafeSerializer(settings.SESSION_SECRET, salt=_SEL_CSRF).loads(csrf) == sid
    except BadSignature:
        valide = False
    if not valide:
        raise Probleme(
            403,
            "Le formulaire a expiré ou ne vient pas de ce site. Rechargez la page et recommencez.",
            titre="Formulaire refusé",
        )


CsrfDep = Depends(verifier_csrf)


def _identite(request: Request) -> dict[str, Any]:
    """The session's content, or ConnexionRequise."""
    settings: Settings = request.app.state.settings
    donnees = active(request, settings)
    if donnees is None:
        chemin = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise ConnexionRequise(retour_sur(chemin) if request.method == "GET" else "/demandes")
    # Who asked: on this request's log lines, and in the workflow's and activities' for its actions.
    if isinstance(sub := donnees.get("sub"), str):
        noter_appelant(sub)
    return donnees


async def _utilisateur(session: AsyncSession, donnees: dict[str, Any]) -> Utilisateur:
    """A gestionnaire only if the service's list says so, checked each time (in `session`)."""
    if await est_gestionnaire(session, donnees.get("email")):
        return Utilisateur(sub=donnees["sub"], role=Role.GESTIONNAIRE)
    siret = donnees.get("siret")
    if not isinstance(siret, str) or not stdnum_siret.is_valid(siret):
        raise Probleme(403, "Votre compte n'est rattaché à aucun SIRET valide.")
    return Utilisateur(sub=donnees["sub"], role=Role.OPERATEUR, siret=siret)


async def utilisateur_portail(request: Request) -> Utilisateur:
    """Who is logged in; a gestionnaire only if the service's list says so, checked each time."""
    donnees = _identite(request)
    async with unit_of_work(request.app.state.sessions_lecture) as session:
        return await _utilisateur(session, donnees)


@dataclass(frozen=True)
class LecturePortail:
    utilisateur: Utilisateur
    session: AsyncSession


async def lecture_portail(request: Request) -> AsyncIterator[LecturePortail]:
    """For the pages that only read: who is logged in, checked in the same read transaction as
    the page's own reads (one transaction and one connection per page, not two)."""
    donnees = _identite(request)
    async with unit_of_work(request.app.state.sessions_lecture) as session:
        yield LecturePortail(await _utilisateur(session, donnees), session)


LecturePortailDep = Annotated[LecturePortail, Depends(lecture_portail, scope="function")]


PortailDep = Annotated[Utilisateur, Depends(utilisateur_portail)]


def exiger_operateur(utilisateur: PortailDep) -> Utilisateur:
    if utilisateur.role != Role.OPERATEUR:
        raise Probleme(403, "Cette action est réservée à l'opérateur de la demande.")
    return utilisateur


OperateurPortailDep = Annotated[Utilisateur, Depends(exiger_operateur)]


def exiger_gestionnaire(utilisateur: PortailDep) -> Utilisateur:
    if utilisateur.role != Role.GESTIONNAIRE:
        raise Probleme(403, "Cette page est réservée aux gestionnaires.", titre="Accès refusé")
    return utilisateur


GestionnairePortailDep = Annotated[Utilisateur, Depends(exiger_gestionnaire)]
