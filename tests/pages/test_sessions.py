"""The portal's sessions live in the database: the cookie is an opaque random identifier, logout
ends the session for every copy of that cookie, removing a gestionnaire ends that person's
sessions, expired ones are swept, and "last seen" costs a write at most once a minute. Pages
that only read, through the real OpenID provider, on both databases."""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import func, select

from modif_solde.db import SessionFactory, compter_requetes, unit_of_work
from modif_solde.models.tables import Demande, SessionPortail
from modif_solde.models.types import maintenant
from modif_solde.pages import session as sess
from modif_solde.services import gestionnaires
from tests.pages.conftest import (
    COURRIEL_GESTIONNAIRE,
    GESTIONNAIRE,
    OPERATEUR,
    jeton_csrf,
    parametres,
    se_connecter,
)


def client(appli_lecture: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=appli_lecture, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def portail(appli_lecture: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client(appli_lecture) as c:
        yield c


async def lignes(factory: SessionFactory) -> list[SessionPortail]:
    async with factory() as session:
        return list((await session.exec(select(SessionPortail))).all())


async def test_a_cookie_copied_before_logout_opens_nothing_after_it(
    appli_lecture: FastAPI, portail: httpx.AsyncClient, demande: Demande
) -> None:
    await se_connecter(portail, OPERATEUR)
    page = await portail.get("/demandes")
    assert "FINMSS009266" in page.text
    copie = dict(portail.cookies.items())
    csrf = jeton_csrf(page.text)

    sortie = await portail.post("/deconnexion", data={"csrf": csrf})
    assert sortie.status_code == 303 and "/oauth2/end_session?" in sortie.headers["location"]

    async with client(appli_lecture) as autre:
        autre.cookies.update(copie)
        refus = await autre.get("/demandes")
        assert refus.status_code == 303 and refus.headers["location"].startswith("/connexion")
        # Its form token posts nothing either: the session it belonged to is gone.
        envoi = await autre.post("/deconnexion", data={"csrf": csrf})
        assert envoi.status_code == 303 and envoi.headers["location"] == "/"
        assert (await autre.get("/demandes/FINMSS009266")).status_code == 303


async def test_the_cookie_is_an_opaque_identifier_and_the_identity_stays_on_the_server(
    portail: httpx.AsyncClient, factory: SessionFactory
) -> None:
    await se_connecter(portail, OPERATEUR)
    page = await portail.get("/demandes")

    valeur = portail.cookies[sess.COOKIE]
    assert len(valeur) <= 64
    lisible = base64.urlsafe_b64decode(valeur + "=" * (-len(valeur) % 4))
    for revele in (b"operateur", b"50961588600025", b"sci-voiture", b"Durand", b"eyJ"):
        assert revele not in lisible and revele.decode() not in valeur
    # No other cookie carries the identity either (the login's own cookie is gone or holds none).
    for nom, contenu in portail.cookies.items():
        assert "sci-voiture" not in contenu and "eyJhbGciOi" not in contenu, nom

    (ligne,) = await lignes(factory)
    assert ligne.id != valeur  # its SHA-256, not the cookie itself
    assert (ligne.sub, ligne.siret, ligne.courriel) == (
        OPERATEUR,
        "50961588600025",
        "operateur@sci-voiture.example",
    )
    assert ligne.id_token and ligne.id_token.count(".") == 2
    # Logout sends the stored ID token to the provider, and deletes the row.
    sortie = await portail.post("/deconnexion", data={"csrf": jeton_csrf(page.text)})
    assert parametres(sortie.headers["location"])["id_token_hint"] == ligne.id_token
    assert await lignes(factory) == []
    assert sess.COOKIE not in portail.cookies


async def test_removing_a_gestionnaire_ends_its_sessions(
    portail: httpx.AsyncClient, factory: SessionFactory, engine: Any, demande: Demande
) -> None:
    async with unit_of_work(factory) as session:
        await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
    await se_connecter(portail, GESTIONNAIRE)
    assert "File de travail" in (await portail.get("/demandes")).text

    processus = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modif_solde.cli", "gestionnaire", "retirer", COURRIEL_GESTIONNAIRE.upper(),
        env={"MODIF_SOLDE_DATABASE_URL": engine.url.render_as_string(hide_password=False), "PATH": ""},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    sortie, erreurs = await asyncio.wait_for(processus.communicate(), timeout=60)
    assert processus.returncode == 0, erreurs.decode()
    assert sortie.decode().strip() == (
        f"{COURRIEL_GESTIONNAIRE.upper()} n'est plus gestionnaire ; 1 session du portail fermée."
    )

    # Logged out, not an operator of the SIRET its identity also carries.
    refus = await portail.get("/demandes")
    assert refus.status_code == 303 and refus.headers["location"].startswith("/connexion")
    assert await lignes(factory) == []


async def test_expired_sessions_are_swept_at_login(
    portail: httpx.AsyncClient,
    appli_lecture: FastAPI,
    factory: SessionFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await se_connecter(portail, OPERATEUR)
    async with client(appli_lecture) as autre:
        await se_connecter(autre, GESTIONNAIRE)
    assert len(await lignes(factory)) == 2

    plus_tard = maintenant() + timedelta(minutes=31)
    monkeypatch.setattr(sess, "maintenant", lambda: plus_tard)
    async with client(appli_lecture) as troisieme:
        await se_connecter(troisieme, OPERATEUR)

    # Both past their 30 minutes of inactivity: gone; the new one alone remains.
    (restante,) = await lignes(factory)
    assert restante.cree_le == plus_tard


async def test_last_seen_costs_one_write_a_minute_and_no_second_read(
    portail: httpx.AsyncClient,
    appli_lecture: FastAPI,
    factory: SessionFactory,
    demande: Demande,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await se_connecter(portail, OPERATEUR)
    (avant,) = await lignes(factory)

    def ecritures(requetes: list[str]) -> list[str]:
        return [r for r in requetes if r.lstrip().upper().startswith("UPDATE SESSION_PORTAIL")]

    for secondes in (5, 30, 59):
        monkeypatch.setattr(sess, "maintenant", lambda s=secondes: avant.vu_le + timedelta(seconds=s))
        with compter_requetes(appli_lecture.state.engine, appli_lecture.state.engine_lecture) as requetes:
            assert (await portail.get("/demandes/FINMSS009266")).status_code == 200
        assert ecritures(requetes) == []
        # One read transaction for the page: the session is looked up in it, beside the
        # gestionnaire list, in one statement.
        assert len([r for r in requetes if "session_portail" in r]) == 1
    monkeypatch.setattr(sess, "maintenant", lambda: avant.vu_le + timedelta(seconds=61))
    with compter_requetes(appli_lecture.state.engine, appli_lecture.state.engine_lecture) as requetes:
        assert (await portail.get("/demandes/FINMSS009266")).status_code == 200
    assert len(ecritures(requetes)) == 1
    (apres,) = await lignes(factory)
    assert apres.vu_le == avant.vu_le + timedelta(seconds=61)
    assert apres.expire_le == apres.vu_le + timedelta(minutes=30)


async def test_each_login_is_a_new_session(portail: httpx.AsyncClient, factory: SessionFactory) -> None:
    await se_connecter(portail, OPERATEUR)
    premier = portail.cookies[sess.COOKIE]
    csrf = jeton_csrf((await portail.get("/demandes")).text)
    await portail.post("/deconnexion", data={"csrf": csrf})
    await se_connecter(portail, OPERATEUR)

    assert portail.cookies[sess.COOKIE] != premier
    assert jeton_csrf((await portail.get("/demandes")).text) != csrf
    async with factory() as session:
        assert (await session.exec(select(func.count()).select_from(SessionPortail))).one() == 1
