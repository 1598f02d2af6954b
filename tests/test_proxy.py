"""The reverse proxy's configuration (deploiement/nginx/modif-solde.conf): `nginx -t` with
Debian's nginx, then nginx run for real on loopback in front of a real `modif-solde api`, with
a certificate made by the test: TLS, HSTS, the redirect, the request id, compression, the body
limit and the rate limits (429 with Retry-After). Only what Docker gives differs: the upstream's
name (api:8000 → the test's API) and the ports and paths (the test's own)."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from modif_solde.pages.statiques import url_statique
from tests.fautes.conftest import attendre
from tests.processus import Processus, commande_modif_solde, port_libre

RACINE = Path(__file__).resolve().parents[1]
CONFIGURATION = RACINE / "deploiement" / "nginx" / "modif-solde.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def configuration(dossier: Path, amont: str, http: int, https: int) -> Path:
    """The repository's file inside an `http` block of its own, Docker's names and paths replaced."""
    autorite = trustme.CA()
    certificat = autorite.issue_cert("modif-solde.test", "127.0.0.1")
    certificat.private_key_pem.write_to_path(str(dossier / "privkey.pem"))
    certificat.cert_chain_pems[0].write_to_path(str(dossier / "fullchain.pem"))
    autorite.cert_pem.write_to_path(str(dossier / "ca.pem"))
    texte = CONFIGURATION.read_text(encoding="utf-8")
    remplacements = {
        "set $amont http://api:8000;": f"set $amont http://{amont};",
        "listen 8080 default_server;": f"listen 127.0.0.1:{http} default_server;",
        "listen 8443 ssl default_server;": f"listen 127.0.0.1:{https} ssl default_server;",
        "/etc/nginx/certificats/": f"{dossier}/",
        "access_log /dev/stdout modif_solde;": f"access_log {dossier}/acces.log modif_solde;",
    }
    for avant, apres in remplacements.items():
        assert avant in texte, avant
        texte = texte.replace(avant, apres)
    (dossier / "modif-solde.conf").write_text(texte, encoding="utf-8")
    principal = dossier / "nginx.conf"
    principal.write_text(
        f"""
pid {dossier}/nginx.pid;
error_log {dossier}/erreurs.log warn;
daemon off;
events {{}}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {dossier}/corps;
    proxy_temp_path {dossier}/proxy;
    fastcgi_temp_path {dossier}/fastcgi;
    uwsgi_temp_path {dossier}/uwsgi;
    scgi_temp_path {dossier}/scgi;
    include {dossier}/modif-solde.conf;
}}
""",
        encoding="utf-8",
    )
    return principal


def test_nginx_accepte_la_configuration(tmp_path: Path) -> None:
    principal = configuration(tmp_path, "api:8000", port_libre(), port_libre())
    # The upstream by Docker's name, as in compose: a variable, so nothing is resolved at start.
    resultat = subprocess.run(  # noqa: S603
        [NGINX, "-t", "-c", str(principal)], capture_output=True, text=True, timeout=30, check=False
    )
    assert resultat.returncode == 0, resultat.stderr
    assert "syntax is ok" in resultat.stderr and "test is successful" in resultat.stderr
    assert "[warn]" not in resultat.stderr, resultat.stderr


@dataclass
class Proxy:
    https: str
    http: str
    ca: Path
    dossier: Path


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[Proxy]:
    port_api, port_http, port_https = port_libre(), port_libre(), port_libre()
    env = {
        "MODIF_SOLDE_ENVIRONNEMENT": "developpement",
        "MODIF_SOLDE_DATABASE_URL": f"sqlite:///{tmp_path}/proxy.db",
        "MODIF_SOLDE_TEMPORAL_ADDRESS": f"127.0.0.1:{port_libre()}",
        "MODIF_SOLDE_STORAGE_DIR": str(tmp_path / "pieces"),
        "MODIF_SOLDE_LOG_FORMAT": "json",
    }
    api = Processus(
        "api",
        commande_modif_solde("api", "--host", "127.0.0.1", "--port", str(port_api)),
        tmp_path / "api.log",
        env,
    )
    nginx = Processus(
        "nginx",
        [NGINX, "-c", str(configuration(tmp_path, f"127.0.0.1:{port_api}", port_http, port_https))],
        tmp_path / "nginx.log",
    )
    api.demarrer()
    nginx.demarrer()
    try:
        async with httpx.AsyncClient(verify=False) as client:  # noqa: S501 (waiting only)

            async def pret() -> bool:
                try:
                    return (await client.get(f"https://127.0.0.1:{port_https}/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await attendre(pret, 60, f"nginx et l'API répondent : {api.sortie()} {nginx.sortie()}")
        yield Proxy(
            f"https://127.0.0.1:{port_https}", f"http://127.0.0.1:{port_http}", tmp_path / "ca.pem", tmp_path
        )
    finally:
        nginx.tuer()
        api.tuer()


def _client(proxy: Proxy) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=proxy.https, verify=ssl.create_default_context(cafile=str(proxy.ca)), timeout=30
    )


async def test_tls_hsts_redirection_et_identifiant_de_requete(proxy: Proxy) -> None:
    async with httpx.AsyncClient() as clair:
        r = await clair.get(f"{proxy.http}/demandes?statut=a_modifier")
        assert r.status_code == 308
        assert r.headers["Location"].startswith("https://") and r.headers["Location"].endswith(
            "/demandes?statut=a_modifier"
        )
    async with _client(proxy) as client:
        r = await client.get("/healthz")
        assert r.status_code == 200 and r.json() == {"statut": "ok"}
        assert r.headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
        assert "nginx/" not in r.headers.get("Server", "")
        # Made by nginx, passed to the service and returned once.
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])
        assert r.headers.get_list("X-Request-ID") == [r.headers["X-Request-ID"]]
        r = await client.get("/healthz", headers={"X-Request-ID": "client-0123456789"})
        assert r.headers["X-Request-ID"] == "client-0123456789"
        r = await client.get("/healthz", headers={"X-Request-ID": "x"})
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])
        # The service logged the very id nginx logged.
        r = await client.get("/readyz", headers={"X-Request-ID": "suivi-0123456789"})

    def journalisee() -> bool:
        acces = [json.loads(ligne) for ligne in (proxy.dossier / "acces.log").read_text().splitlines()]
        return any(e["requete_id"] == "suivi-0123456789" and e["chemin"] == "/readyz" for e in acces)

    await attendre(journalisee, 10, "nginx journalise l'id")
    await attendre(
        lambda: "suivi-0123456789" in (proxy.dossier / "api.log").read_text(), 10, "l'API journalise l'id"
    )


async def test_compression_et_cache_des_fichiers_du_json_et_des_pages(proxy: Proxy) -> None:
    feuille = url_statique("vendor/dsfr/portail/dsfr.min.css")
    async with _client(proxy) as client:
        # The service's precompressed files pass the proxy as they are, with their year of cache.
        for codage in ("br", "gzip"):
            r = await client.get(feuille, headers={"Accept-Encoding": codage})
            assert r.status_code == 200 and r.headers["Content-Encoding"] == codage
            assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert r.headers["Vary"] == "Accept-Encoding"
        r = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
        r = await client.get("/api/v1/demandes", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 401 and "Content-Encoding" not in r.headers  # a small problem+json
        # The pages: gzipped by the service (their CSRF token masked per answer), once.
        r = await client.get("/", headers={"Accept-Encoding": "gzip"})
        assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip"
        assert "<html" in r.text


async def test_corps_trop_gros_refuse_par_le_proxy(proxy: Proxy) -> None:
    async with _client(proxy) as client:
        r = await client.post(
            "/api/v1/modifications/FINMSS000001M1/confirmer", content=b"x" * (2 * 1024 * 1024)
        )
        assert r.status_code == 413
        assert r.headers["Content-Type"] == "application/problem+json"
        assert r.json()["detail"] == "Le corps de la requête dépasse la taille maximale."
        assert r.headers["Strict-Transport-Security"]
        # A document of 5 MiB passes the proxy (the service answers: no token).
        r = await client.post("/api/v1/modifications/FINMSS000001M1/pieces", content=b"x" * (5 * 1024 * 1024))
        assert r.status_code == 401


async def test_limite_de_debit_429_avec_retry_after(proxy: Proxy) -> None:
    async with _client(proxy) as client:
        statuts = [(await client.post("/api/v1/demandes", json={})).status_code for _ in range(12)]
        # The burst (5) plus the one the rate allows, then refused by the proxy, never by the service.
        assert statuts[:6] == [401] * 6 and set(statuts[6:]) == {429}, statuts
        r = await client.post("/api/v1/demandes", json={})
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "60"
        assert r.headers["Content-Type"] == "application/problem+json"
        assert r.json()["title"] == "Trop de requêtes"
        assert r.headers["Strict-Transport-Security"] and r.headers["X-Request-ID"]
        # The list (GET) and the other routes are not limited by the import's zone.
        assert (await client.get("/api/v1/demandes")).status_code == 401
        assert (await client.get("/healthz")).status_code == 200
        # The opening of a modification (API and back-office form) has its own zone: burst of 10.
        ouvertures = [
            (await client.post("/api/v1/demandes/FINMSS000001/modifications", json={})).status_code
            for _ in range(14)
        ]
        assert ouvertures[:11] == [401] * 11 and set(ouvertures[11:]) == {429}, ouvertures
        r = await client.post("/demandes/FINMSS000001/modifications", data={})
        assert r.status_code == 429 and r.headers["Retry-After"] == "60"
        # The login has its own zone.
        connexions = [(await client.get("/connexion")).status_code for _ in range(14)]
        assert 429 in connexions and connexions[0] != 429
