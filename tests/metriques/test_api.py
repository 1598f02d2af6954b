"""The API's /metrics: its protection, and requests counted by route template and status."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.models.tables import Demande
from tests.api.conftest import GESTIONNAIRE
from tests.metriques.lecture import etiquettes_avec_un_numero, lire, valeur
from tests.processus import pages_legales_production
from tests.workflows.conftest import Banc

JETON = "jeton-des-metriques-0123456789-abcdef"
REQUETES = "modif_solde_http_requetes_total"


async def _client(settings: Settings, banc: Banc) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, client=banc.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def http(settings: Settings, banc: Banc, factory: object) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(settings.model_copy(update={"METRIQUES_JETON": JETON}), banc):
        yield client


async def metriques(http: httpx.AsyncClient) -> str:
    r = await http.get("/metrics", headers={"Authorization": f"Bearer {JETON}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return r.text


async def test_sans_le_jeton_metrics_est_refuse(http: httpx.AsyncClient) -> None:
    for entetes in ({}, {"Authorization": "Bearer mauvais-jeton"}, {"Authorization": JETON}):
        r = await http.get("/metrics", headers=entetes)
        assert r.status_code == 401, entetes
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "modif_solde" not in r.text
    assert "modif_solde_http_requetes_total" in await metriques(http)


async def test_en_production_sans_jeton_reglé_metrics_n_est_pas_servi(
    settings: Settings, banc: Banc, factory: object
) -> None:
    production = settings.model_copy(
        update={
            "ENVIRONNEMENT": "production",
            "METRIQUES_JETON": None,
            # What production asks of the portal's login, so that the app starts.
            "SESSION_SECRET": "un-secret-de-session-de-plus-de-32-caracteres",
            "OIDC_CLIENT_SECRET": "un-secret-client-fourni-par-le-fournisseur",
            "OIDC_DISCOVERY_URL": "https://fca.example/api/v2/.well-known/openid-configuration",
            # The API's tokens in production: a JWKS (never read by this test).
            "JWT_JWKS_URL": "https://127.0.0.1:9/jwks.json",
            "PORTAIL_URL": "https://portail.sante.example.fr",
            **pages_legales_production(),
        }
    )
    async for http in _client(production, banc):
        r = await http.get("/metrics")
        assert r.status_code == 404
        assert "MODIF_SOLDE_METRIQUES_JETON" in r.json()["detail"]
    developpement = production.model_copy(update={"ENVIRONNEMENT": "developpement"})
    async for http in _client(developpement, banc):
        r = await http.get("/metrics")
        assert r.status_code == 200 and "modif_solde_modifications_ouvertes" in r.text


async def test_chaque_requete_compte_sous_le_modele_de_sa_route(
    http: httpx.AsyncClient, demande: Demande
) -> None:
    avant = lire(await metriques(http))
    assert (await http.get("/api/v1/demandes/FINMSS009266", headers=GESTIONNAIRE)).status_code == 200
    assert (await http.get("/api/v1/demandes/FINMSS009266", headers=GESTIONNAIRE)).status_code == 200
    assert (await http.get("/api/v1/demandes/FINMSS000001", headers=GESTIONNAIRE)).status_code == 404
    assert (await http.get("/api/v1/demandes/FINMSS009266")).status_code == 401
    assert (await http.get("/pas/une/route/FINMSS009266")).status_code == 404
    # The portal's pages and static files too.
    page = await http.get("/demandes/FINMSS009266")
    assert (await http.get("/static/portail.css")).status_code == 200
    assert (await http.get("/static/FINMSS009266/absent.css")).status_code == 404
    apres = lire(await metriques(http))

    def delta(route: str, statut: str) -> float:
        cle = {"methode": "GET", "route": route, "statut": statut}
        return valeur(apres, REQUETES, **cle) - valeur(avant, REQUETES, **cle)

    assert delta("/api/v1/demandes/{numero}", "200") == 2
    assert delta("/api/v1/demandes/{numero}", "404") == 1
    assert delta("/api/v1/demandes/{numero}", "401") == 1
    assert delta("aucune", "404") == 1
    assert delta("/demandes/{numero}", str(page.status_code)) == 1
    assert delta("/static/{path}", "200") == 1
    assert delta("/static/{path}", "404") == 1
    duree = "modif_solde_http_duree_secondes_count"
    route = {"methode": "GET", "route": "/api/v1/demandes/{numero}"}
    assert valeur(apres, duree, **route) - valeur(avant, duree, **route) == 4
    assert etiquettes_avec_un_numero(apres) == []
