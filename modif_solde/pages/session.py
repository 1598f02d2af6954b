"""The portal's session: an opaque identifier in a cookie, the session itself in the database
(services/sessions_portail.py); its timeouts, its CSRF token and the logged-in user.

A second cookie, Starlette's signed one (`modif_solde_transit`, 15 minutes), carries only what
lives between two requests and identifies nobody: the login under way (state, nonce, PKCE
verifier, the page to come back to) and the message the next page shows once."""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Form, Request, Response
from sqlmodel.ext.asyncio.session import AsyncSession
from stdnum.fr import siret as stdnum_siret

from modif_solde.config import Settings
from modif_solde.db import unit_of_work
from modif_solde.journal import noter_appelant
from modif_solde.models.types import maintenant
from modif_solde.models.utilisateur import Role, Utilisateur
from modif_solde.pages import etat
from modif_solde.services import sessions_portail
from modif_solde.services.sessions_portail import Duree, Identite, SessionOuverte
from modif_solde.web.problemes import Probleme

COOKIE = "modif_solde_session"
COOKIE_TRANSIT = "modif_solde_transit"
DUREE_TRANSIT = 15 * 60
# Where the session read by a dependency is kept for the page's layout (name, CSRF token).
_ETAT = "session_portail"


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


def _duree(settings: Settings) -> Duree:
    return Duree(inactivite=settings.SESSION_INACTIVITE, maximum=settings.SESSION_DUREE_MAX)


async def lire(request: Request, session: AsyncSession) -> SessionOuverte | None:
    """The request's session, read in `session` (the caller's transaction), kept for the layout."""
    ouverte = await sessions_portail.lire(
        session, request.cookies.get(COOKIE), _duree(etat.reglages(request)), maintenant()
    )
    setattr(request.state, _ETAT, ouverte)
    return ouverte


async def _noter_activite(request: Request, ouverte: SessionOuverte) -> None:
    """At most once a minute per session: a short write transaction of its own."""
    le = maintenant()
    if sessions_portail.activite_a_noter(ouverte, le):
        async with unit_of_work(etat.ecriture(request)) as session:
            await sessions_portail.noter_activite(session, ouverte, _duree(etat.reglages(request)), le)


async def session_active(request: Request) -> SessionOuverte | None:
    """The session, or None; in a read transaction of its own (for the pages that read nothing
    else: the home page, the login)."""
    if COOKIE not in request.cookies:
        return None
    async with unit_of_work(etat.lecture_seule(request)) as session:
        ouverte = await lire(request, session)
    if ouverte is not None:
        await _noter_activite(request, ouverte)
    return ouverte


async def ouvrir(request: Request, identite: Identite) -> str:
    """A new session at login (the browser's previous one ended); the cookie's identifier."""
    async with unit_of_work(etat.ecriture(request)) as session:
        return await sessions_portail.ouvrir(
            session,
            identite,
            _duree(etat.reglages(request)),
            maintenant(),
            remplace=request.cookies.get(COOKIE),
        )


async def fermer(request: Request, ouverte: SessionOuverte) -> None:
    async with unit_of_work(etat.ecriture(request)) as session:
        await sessions_portail.fermer(session, ouverte.cle)
        await sessions_portail.purger_expirees(session, maintenant())


def poser_cookie(reponse: Response, settings: Settings, jeton: str) -> None:
    reponse.set_cookie(
        COOKIE,
        jeton,
        max_age=int(settings.SESSION_DUREE_MAX.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.ENVIRONNEMENT != "developpement",
    )


def effacer_cookie(reponse: Response, settings: Settings) -> None:
    reponse.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="lax", secure=settings.ENVIRONNEMENT != "developpement"
    )


def session_de_la_page(request: Request) -> SessionOuverte | None:
    """The session a dependency read for this request, if any (the layout's name and token)."""
    ouverte: SessionOuverte | None = getattr(request.state, _ETAT, None)
    return ouverte


def _connexion_requise(request: Request) -> ConnexionRequise:
    chemin = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return ConnexionRequise(retour_sur(chemin) if request.method == "GET" else "/demandes")


async def session_courante(request: Request) -> SessionOuverte:
    """The session, or ConnexionRequise; for the routes that change something (a short read
    transaction of its own, shared by the CSRF check and the user: FastAPI runs it once)."""
    ouverte = await session_active(request)
    if ouverte is None:
        raise _connexion_requise(request)
    return ouverte


SessionCouranteDep = Annotated[SessionOuverte, Depends(session_courante)]


async def session_facultative(request: Request) -> SessionOuverte | None:
    return await session_active(request)


SessionFacultativeDep = Annotated[SessionOuverte | None, Depends(session_facultative)]


def jeton_csrf(request: Request) -> str:
    """The session's own random token: useless in another session, void once it has ended."""
    ouverte = session_de_la_page(request)
    return masquer_csrf(ouverte.csrf) if ouverte is not None else ""


def masquer_csrf(csrf: str) -> str:
    """The token as a page carries it: XORed with fresh random bytes, the bytes beside it. Pages
    are compressed (pages/compression.py): a secret that never repeats from one answer to the
    next leaves BREACH (guessing it from compressed sizes) nothing to converge on."""
    jeton = csrf.encode()
    masque = secrets.token_bytes(len(jeton))
    return base64.urlsafe_b64encode(
        masque + bytes(a ^ b for a, b in zip(masque, jeton, strict=True))
    ).decode()


def _demasquer(envoye: str) -> bytes:
    try:
        brut = base64.urlsafe_b64decode(envoye.encode())
    except (ValueError, UnicodeEncodeError):
        return b""
    moitie = len(brut) // 2
    return bytes(a ^ b for a, b in zip(brut[:moitie], brut[moitie:], strict=False))


def csrf_valide(ouverte: SessionOuverte, csrf: str) -> bool:
    """The token as a page carried it (masked), or as it is."""
    if not csrf:
        return False
    attendu = ouverte.csrf.encode()
    return hmac.compare_digest(_demasquer(csrf), attendu) or hmac.compare_digest(csrf.encode(), attendu)


def refus_csrf() -> Probleme:
    return Probleme(
        403,
        "Le formulaire a expiré ou ne vient pas de ce site. Rechargez la page et recommencez.",
        titre="Formulaire refusé",
    )


async def verifier_csrf(ouverte: SessionCouranteDep, csrf: Annotated[str, Form()] = "") -> None:
    """Every form that changes something carries the session's token; checked here, once."""
    if not csrf_valide(ouverte, csrf):
        raise refus_csrf()


CsrfDep = Depends(verifier_csrf)


def _utilisateur(ouverte: SessionOuverte) -> Utilisateur:
    """A gestionnaire only if the service's list says so (read with the session, each time)."""
    # Who asked: on this request's log lines, and in the workflow's and activities' for its actions.
    noter_appelant(ouverte.sub)
    if ouverte.gestionnaire:
        return Utilisateur(sub=ouverte.sub, role=Role.GESTIONNAIRE)
    if not isinstance(ouverte.siret, str) or not stdnum_siret.is_valid(ouverte.siret):
        raise Probleme(403, "Votre compte n'est rattaché à aucun SIRET valide.")
    return Utilisateur(sub=ouverte.sub, role=Role.OPERATEUR, siret=ouverte.siret)


async def utilisateur_portail(ouverte: SessionCouranteDep) -> Utilisateur:
    """Who is logged in; a gestionnaire only if the service's list says so, checked each time."""
    return _utilisateur(ouverte)


@dataclass(frozen=True)
class LecturePortail:
    utilisateur: Utilisateur
    session: AsyncSession


async def lecture_portail(request: Request) -> AsyncIterator[LecturePortail]:
    """For the pages that only read: the session (with the gestionnaires' list) is read in the
    page's own read transaction, one statement (one transaction and one connection per page);
    "last seen" is written at most once a minute."""
    async with unit_of_work(etat.lecture_seule(request)) as session:
        ouverte = await lire(request, session) if COOKIE in request.cookies else None
        if ouverte is None:
            raise _connexion_requise(request)
        utilisateur = _utilisateur(ouverte)
        await _noter_activite(request, ouverte)
        yield LecturePortail(utilisateur, session)


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
