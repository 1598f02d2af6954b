"""What one page costs the API process: its SQL statements and its CPU time, in-process.

    .venv/bin/python -m bench.cout_page [--appels 2000] [--base sqlite|postgresql]

A rich request (3 closed modifications, an open one, documents, history, e-mails) in a fresh
database; each page is called through the app over ASGI (httpx, no network, no server), as an
operator and as a gestionnaire; CPU is this process's (time.process_time), so the figures
include httpx's client side (the same for every page) and, on SQLite, the database's own work
(it runs in the process), not PostgreSQL's. The first line is the floor: a bare FastAPI app
answering the request page's JSON after one hand-written query."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI, Response
from sqlalchemy import text

from bench.portail import ouvrir_session
from modif_solde.api.app import create_app
from modif_solde.api.auth import Role, emettre_jeton
from modif_solde.config import Settings
from modif_solde.db import compter_requetes, create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.pages.session import COOKIE
from modif_solde.services import gestionnaires
from modif_solde.services.stockage import StockageDossier
from tests.lecture_riche import creer_demande_riche

SECRET = "secret-du-banc-0123456789-0123456789-abcdef"  # noqa: S105 (a bench's own database)
SESSION_SECRET = "secret-de-session-du-banc-0123456789-abcdef"  # noqa: S105
SIRET = "50961588600025"
COURRIEL_GESTIONNAIRE = "gestionnaire@asp.example"
PG_ADMIN = os.environ.get("MODIF_SOLDE_TEST_PG_ADMIN", "postgresql://127.0.0.1:5432/postgres")
EXEMPLE = Path(__file__).resolve().parents[1] / "modif_solde" / "demo" / "demande-FINMSS009266.json"


def fastapi_nu(url: str, reponses: dict[str, bytes]) -> FastAPI:
    """The floor: a bare FastAPI app (no middleware, no authentication) answering the same JSON
    from the same database after one hand-written query (the request's row by its number)."""
    app = FastAPI()
    moteur = create_engine(url, lecture_seule=True)
    requete = text("SELECT id, numero, statut, version FROM demande WHERE numero = :numero")

    @app.get("/nu/{numero}")
    async def nu(numero: str) -> Response:
        async with moteur.connect() as conn:
            ligne = (await conn.execute(requete, {"numero": numero})).first()
        assert ligne is not None
        return Response(reponses[numero], media_type="application/json")

    app.state.moteur = moteur
    return app


async def preparer(base: str, dossier: Path) -> str:
    if base == "sqlite":
        url = f"sqlite+aiosqlite:///{dossier}/banc.db"
    else:
        nom = f"modif_solde_cout_page_{os.getpid()}"
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{nom}"')
        await conn.execute(f'CREATE DATABASE "{nom}"')
        await conn.close()
        url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{nom}"
    await asyncio.to_thread(migrer, url)
    return url


async def mesurer(base: str, appels: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        dossier = Path(tmp)
        url = await preparer(base, dossier)
        engine = create_engine(url)
        stockage = StockageDossier(dossier / "pieces")
        factory = session_factory(engine)
        numero = await creer_demande_riche(factory, stockage, json.loads(EXEMPLE.read_text()), n=3)
        async with unit_of_work(factory) as session:
            await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
        await engine.dispose()
        settings = Settings(
            DATABASE_URL=url,
            JWT_SECRET=SECRET,
            SESSION_SECRET=SESSION_SECRET,
            STORAGE_DIR=stockage.racine,
            ENVIRONNEMENT="developpement",
        )
        app = create_app(settings)
        api_op = {"Authorization": f"Bearer {emettre_jeton(SECRET, 'op', Role.OPERATEUR, SIRET)}"}
        api_ge = {"Authorization": f"Bearer {emettre_jeton(SECRET, 'ge', Role.GESTIONNAIRE)}"}
        page_op = {
            "Cookie": f"{COOKIE}={await ouvrir_session(url, 'op', SIRET, 'operateur@sci-voiture.example')}"
        }
        page_ge = {"Cookie": f"{COOKIE}={await ouvrir_session(url, 'ge', SIRET, COURRIEL_GESTIONNAIRE)}"}
        cas = [
            ("API page, opérateur", f"/api/v1/demandes/{numero}", api_op),
            ("API page, gestionnaire", f"/api/v1/demandes/{numero}", api_ge),
            ("API liste, opérateur", "/api/v1/demandes", api_op),
            ("API liste, gestionnaire", "/api/v1/demandes", api_ge),
            ("Portail mes demandes, opérateur", "/demandes", page_op),
            ("Portail file, gestionnaire", "/demandes", page_ge),
            ("Portail demande, opérateur", f"/demandes/{numero}", page_op),
            ("Portail demande, gestionnaire", f"/demandes/{numero}", page_ge),
            ("Portail modification, opérateur", f"/modifications/{numero}M4", page_op),
            ("Portail modification, gestionnaire", f"/modifications/{numero}M4", page_ge),
        ]
        async with app.router.lifespan_context(app):
            state = app.state
            moteurs = (state.engine, getattr(state, "engine_lecture", state.sessions_lecture.kw["bind"]))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                reponse_page = await client.get(f"/api/v1/demandes/{numero}", headers=api_op)
                nu = fastapi_nu(url, {numero: reponse_page.content})
                transport_nu = httpx.ASGITransport(app=nu)
                async with httpx.AsyncClient(transport=transport_nu, base_url="http://test") as client_nu:
                    cas.insert(0, ("FastAPI nu, une requête écrite à la main", f"/nu/{numero}", {}))
                    print(f"{base}: {appels} appels par page")
                    for nom, chemin, entetes in cas:
                        c = client_nu if chemin.startswith("/nu/") else client
                        with compter_requetes(*moteurs, nu.state.moteur) as requetes:
                            reponse = await c.get(chemin, headers=entetes)
                        assert reponse.status_code == 200, (chemin, reponse.status_code, reponse.text[:300])
                        for _ in range(min(50, appels)):
                            await c.get(chemin, headers=entetes)
                        debut, mur = time.process_time(), time.perf_counter()
                        for _ in range(appels):
                            await c.get(chemin, headers=entetes)
                        cpu = (time.process_time() - debut) / appels * 1000
                        duree = (time.perf_counter() - mur) / appels * 1000
                        print(
                            f"  {nom:42} {len(requetes):2} requêtes SQL  {cpu:5.2f} ms CPU  {duree:6.2f} ms"
                        )
                    await nu.state.moteur.dispose()
        if base == "postgresql":
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "modif_solde_cout_page_{os.getpid()}" WITH (FORCE)')
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appels", type=int, default=2000)
    parser.add_argument("--base", choices=["sqlite", "postgresql"], action="append")
    arguments = parser.parse_args()
    for base in arguments.base or ["sqlite", "postgresql"]:
        asyncio.run(mesurer(base, arguments.appels))


if __name__ == "__main__":
    main()
