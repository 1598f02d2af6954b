"""Tokens signed with asymmetric keys published as a JWKS file: key chosen by `kid`, algorithm by
the key's type, `iss` and `aud` checked, a rotation without refusals; every refusal a French 401
problem+json that says nothing of why. The API runs over ASGI on a SQLite file; the route used
(`GET /api/v1/demandes`) reads the database only (the Temporal client is lazy, never reached)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from modif_solde.api.app import create_app
from modif_solde.api.auth import (
    ClesIndisponibles,
    JetonInvalide,
    PrivateKey,
    Role,
    SourceFichier,
    Verificateur,
    emettre_jeton,
    generer_cle,
    jwk_public,
)
from modif_solde.config import Settings
from modif_solde.migrations import migrer
from tests.processus import PAGES_LEGALES_PRODUCTION

SECRET = "secret-de-test-0123456789-0123456789-abcdef"
REFUS = "Le jeton d'accès est invalide ou expiré."


def ecrire(chemin: Path, document: Any) -> None:
    """Replace the file in one step, as `modif-solde cles` does."""
    tmp = chemin.with_suffix(".tmp")
    tmp.write_text(document if isinstance(document, str) else json.dumps(document))
    os.replace(tmp, chemin)


def ecrire_jwks(chemin: Path, cles: dict[str, PrivateKey]) -> None:
    ecrire(chemin, {"keys": [jwk_public(cle, kid) for kid, cle in cles.items()]})


def b64(donnees: bytes) -> str:
    return base64.urlsafe_b64encode(donnees).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def cle1() -> PrivateKey:
    return generer_cle("ES256")


@pytest.fixture(scope="module")
def cle2() -> PrivateKey:
    return generer_cle("RS256")


@pytest.fixture
def jwks(tmp_path: Path, cle1: PrivateKey) -> Path:
    chemin = tmp_path / "jwks.json"
    ecrire_jwks(chemin, {"cle-1": cle1})
    return chemin


Fabrique = Callable[..., AsyncIterator[httpx.AsyncClient]]


@pytest.fixture
def reglages(tmp_path: Path, jwks: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{tmp_path}/cles.db"
    migrer(url)
    return {
        "DATABASE_URL": url,
        "JWT_SECRET": SECRET,
        "JWT_JWKS_FICHIER": jwks,
        "JWT_JWKS_RELECTURE": timedelta(0),
        "STORAGE_DIR": tmp_path / "pieces",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
    }


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def http(reglages: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(Settings(ENVIRONNEMENT="developpement", **reglages)):
        yield client


@pytest.fixture
async def http_production(reglages: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        ENVIRONNEMENT="production",
        SESSION_SECRET="s" * 40,
        OIDC_CLIENT_SECRET="un-secret-client-de-test",
        OIDC_DISCOVERY_URL="https://fca.example/api/v2/.well-known/openid-configuration",
        PORTAIL_URL="https://portail.sante.example.fr",
        **PAGES_LEGALES_PRODUCTION,
        **reglages,
    )
    async for client in _client(settings):
        yield client


def entete(jeton: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jeton}"}


def signe(cle: PrivateKey, kid: str, **autres: Any) -> dict[str, str]:
    return entete(emettre_jeton(cle, "gestionnaire.test", Role.GESTIONNAIRE, kid=kid, **autres))


async def lister(http: httpx.AsyncClient, entetes: dict[str, str]) -> httpx.Response:
    return await http.get("/api/v1/demandes", headers=entetes)


def assert_refuse(reponse: httpx.Response) -> None:
    assert reponse.status_code == 401, reponse.text
    assert reponse.headers["content-type"].startswith("application/problem+json")
    assert reponse.headers["www-authenticate"].startswith("Bearer")
    # The same words whatever the reason: nothing of PyJWT's message, the key or the claims.
    assert reponse.json() == {
        "type": "about:blank",
        "title": "Authentification requise",
        "status": 401,
        "detail": REFUS,
    }


async def test_les_jetons_de_chaque_type_de_cle_sont_acceptes(
    http: httpx.AsyncClient, jwks: Path, cle1: PrivateKey, cle2: PrivateKey
) -> None:
    ecrire_jwks(jwks, {"cle-1": cle1, "cle-2": cle2})
    for cle, kid in ((cle1, "cle-1"), (cle2, "cle-2")):  # ES256, RS256
        reponse = await lister(http, signe(cle, kid))
        assert reponse.status_code == 200, reponse.text
    operateur = emettre_jeton(cle1, "op.test", Role.OPERATEUR, "50961588600025", kid="cle-1")
    assert (await lister(http, entete(operateur))).status_code == 200


async def test_rotation_ancienne_et_nouvelle_cle_pendant_le_recouvrement_puis_l_ancienne_refusee(
    http: httpx.AsyncClient, jwks: Path, cle1: PrivateKey, cle2: PrivateKey
) -> None:
    ancien = signe(cle1, "cle-1")
    assert (await lister(http, ancien)).status_code == 200
    assert_refuse(await lister(http, signe(cle2, "cle-2")))  # not published yet

    ecrire_jwks(jwks, {"cle-1": cle1, "cle-2": cle2})  # the overlap
    nouveau = signe(cle2, "cle-2")
    assert (await lister(http, nouveau)).status_code == 200
    assert (await lister(http, ancien)).status_code == 200

    ecrire_jwks(jwks, {"cle-2": cle2})  # the old key removed
    assert (await lister(http, nouveau)).status_code == 200
    assert_refuse(await lister(http, ancien))


async def test_un_kid_inconnu_est_refuse(http: httpx.AsyncClient, cle1: PrivateKey) -> None:
    assert_refuse(await lister(http, signe(cle1, "cle-inconnue")))
    sans_kid = jwt.encode({"sub": "x"}, cle1, algorithm="ES256")
    assert_refuse(await lister(http, entete(sans_kid)))


def test_un_kid_inconnu_relit_le_fichier_au_plus_une_fois_par_intervalle(
    jwks: Path, cle1: PrivateKey
) -> None:
    """A key added without the file's stamp changing (rewritten in place, same size, its mtime put
    back) is found by the re-read an unknown `kid` triggers, but not more often than
    JWT_JWKS_RELECTURE: unknown kids cannot make the API read the file at every request."""
    source = SourceFichier(jwks, intervalle=3600)
    assert asyncio.run(source.cle("cle-1")) is not None
    etat = jwks.stat()
    autre = generer_cle("ES256")  # a P-256 JWK has a fixed size: same size, other kid
    jwks.write_text(json.dumps({"keys": [jwk_public(autre, "cle-3")]}))
    os.utime(jwks, ns=(etat.st_atime_ns, etat.st_mtime_ns))
    assert (jwks.stat().st_ino, jwks.stat().st_size, jwks.stat().st_mtime_ns) == (
        etat.st_ino, etat.st_size, etat.st_mtime_ns,
    )  # fmt: skip
    assert asyncio.run(source.cle("cle-3")) is None  # read a moment ago: not again
    source._relu_le -= 3600  # the interval has passed (rather than waiting an hour)
    assert asyncio.run(source.cle("cle-3")) is not None
    assert asyncio.run(source.cle("cle-1")) is None


# --- Tokens already verified: not verified again while valid, never past their key or expiry ---


@pytest.fixture
def decodages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each signature check PyJWT makes (the real one, counted)."""
    appels: list[str] = []
    vrai = jwt.decode

    def compter(jeton: str, *args: Any, **kwargs: Any) -> Any:
        appels.append(jeton)
        return vrai(jeton, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", compter)
    return appels


def _verificateur_fichier(jwks: Path, taille_cache: int = 4096) -> Verificateur:
    return Verificateur(Settings(JWT_JWKS_FICHIER=jwks, JWT_JWKS_RELECTURE="PT0S"), taille_cache=taille_cache)


async def test_un_jeton_deja_verifie_n_est_pas_reverifie(
    jwks: Path, cle1: PrivateKey, decodages: list[str]
) -> None:
    verificateur = _verificateur_fichier(jwks)
    jeton = emettre_jeton(cle1, "operateur.test", Role.OPERATEUR, "50961588600025", kid="cle-1")
    for _ in range(5):
        utilisateur = await verificateur.lire(jeton)
        assert (utilisateur.role, utilisateur.siret) == (Role.OPERATEUR, "50961588600025")
    assert decodages == [jeton]


async def test_un_jeton_retenu_est_refuse_quand_sa_cle_est_remplacee_sous_le_meme_kid(
    jwks: Path, cle1: PrivateKey
) -> None:
    verificateur = _verificateur_fichier(jwks)
    jeton = emettre_jeton(cle1, "gestionnaire.test", Role.GESTIONNAIRE, kid="cle-1")
    assert (await verificateur.lire(jeton)).role == Role.GESTIONNAIRE
    ecrire_jwks(jwks, {"cle-1": generer_cle("ES256")})  # another key under the same kid
    with pytest.raises(JetonInvalide):
        await verificateur.lire(jeton)


async def test_un_jeton_retenu_est_refuse_une_fois_expire(jwks: Path, cle1: PrivateKey) -> None:
    verificateur = _verificateur_fichier(jwks)
    # Expired 29 s ago: still within the 30 s tolerance for clock differences, for one second.
    jeton = emettre_jeton(
        cle1, "gestionnaire.test", Role.GESTIONNAIRE, duree=timedelta(seconds=-29), kid="cle-1"
    )
    assert (await verificateur.lire(jeton)).role == Role.GESTIONNAIRE
    await asyncio.sleep(1.2)
    with pytest.raises(JetonInvalide):
        await verificateur.lire(jeton)


async def test_les_jetons_retenus_sont_bornes(jwks: Path, cle1: PrivateKey, decodages: list[str]) -> None:
    verificateur = _verificateur_fichier(jwks, taille_cache=2)
    jetons = [emettre_jeton(cle1, f"gestionnaire.{i}", Role.GESTIONNAIRE, kid="cle-1") for i in range(3)]
    for jeton in jetons:
        await verificateur.lire(jeton)
    await verificateur.lire(jetons[2])  # kept
    await verificateur.lire(jetons[0])  # the least recently used, dropped: checked again
    assert decodages == [*jetons, jetons[0]]


async def test_un_jeton_pour_une_autre_audience_est_refuse(http: httpx.AsyncClient, cle1: PrivateKey) -> None:
    assert_refuse(await lister(http, signe(cle1, "cle-1", audience="une-autre-api")))


async def test_un_autre_emetteur_est_refuse(http: httpx.AsyncClient, cle1: PrivateKey) -> None:
    assert_refuse(await lister(http, signe(cle1, "cle-1", emetteur="https://ailleurs.example")))


async def test_un_jeton_expire_est_refuse(http: httpx.AsyncClient, cle1: PrivateKey) -> None:
    assert_refuse(await lister(http, signe(cle1, "cle-1", duree=timedelta(minutes=-5))))


async def test_alg_none_est_refuse(http: httpx.AsyncClient) -> None:
    revendications = jwt.decode(
        emettre_jeton(SECRET, "gestionnaire.test", Role.GESTIONNAIRE), options={"verify_signature": False}
    )
    for kid in ("cle-1", None):
        entetes = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
        jeton = f"{b64(json.dumps(entetes).encode())}.{b64(json.dumps(revendications).encode())}."
        assert_refuse(await lister(http, entete(jeton)))


async def test_hs256_signe_avec_la_cle_publique_est_refuse(
    http: httpx.AsyncClient,
    http_production: httpx.AsyncClient,
    cle2: PrivateKey,
    jwks: Path,
    cle1: PrivateKey,
) -> None:
    """The confusion attack: the public key (PEM or JWK text) used as an HMAC secret."""
    ecrire_jwks(jwks, {"cle-1": cle1, "cle-2": cle2})
    revendications = jwt.decode(
        emettre_jeton(cle2, "gestionnaire.test", Role.GESTIONNAIRE, kid="cle-2"),
        options={"verify_signature": False},
    )
    publique = cle2.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (publique, json.dumps(jwk_public(cle2, "cle-2")).encode()):
        entetes = {"alg": "HS256", "typ": "JWT", "kid": "cle-2"}
        signature_entree = f"{b64(json.dumps(entetes).encode())}.{b64(json.dumps(revendications).encode())}"
        mac = hmac.new(secret, signature_entree.encode(), hashlib.sha256).digest()
        jeton = f"{signature_entree}.{b64(mac)}"
        assert_refuse(await lister(http, entete(jeton)))
        assert_refuse(await lister(http_production, entete(jeton)))


async def test_l_algorithme_vient_de_la_cle_pas_du_jeton(
    http: httpx.AsyncClient, cle2: PrivateKey, jwks: Path
) -> None:
    """An RSA key signs RS256 only: a PS256 token of the very same key is refused."""
    ecrire_jwks(jwks, {"cle-2": cle2})
    revendications = jwt.decode(
        emettre_jeton(cle2, "gestionnaire.test", Role.GESTIONNAIRE, kid="cle-2"),
        options={"verify_signature": False},
    )
    ps256 = jwt.encode(revendications, cle2, algorithm="PS256", headers={"kid": "cle-2"})
    assert_refuse(await lister(http, entete(ps256)))


async def test_une_cle_annoncee_pour_un_autre_algorithme_est_ignoree(
    http: httpx.AsyncClient, jwks: Path, cle2: PrivateKey
) -> None:
    jwk = {**jwk_public(cle2, "cle-2"), "alg": "PS256"}
    ecrire(jwks, {"keys": [jwk, {"kty": "oct", "kid": "sym", "k": b64(SECRET.encode())}]})
    assert_refuse(await lister(http, signe(cle2, "cle-2")))
    hs = jwt.encode({"sub": "x", "role": "gestionnaire"}, SECRET, algorithm="HS256", headers={"kid": "sym"})
    assert_refuse(await lister(http, entete(hs)))


async def test_la_production_refuse_hs256_meme_avec_le_bon_secret(
    http: httpx.AsyncClient, http_production: httpx.AsyncClient, cle1: PrivateKey
) -> None:
    dev = entete(emettre_jeton(SECRET, "gestionnaire.test", Role.GESTIONNAIRE))
    assert (await lister(http, dev)).status_code == 200  # development: still accepted
    assert_refuse(await lister(http_production, dev))
    assert (await lister(http_production, signe(cle1, "cle-1"))).status_code == 200


async def test_un_jwks_abime_garde_les_cles_precedentes(
    http: httpx.AsyncClient, jwks: Path, cle1: PrivateKey
) -> None:
    """A half-written or broken file does not lock everyone out."""
    assert (await lister(http, signe(cle1, "cle-1"))).status_code == 200
    ecrire(jwks, '{"keys": [')
    assert (await lister(http, signe(cle1, "cle-1"))).status_code == 200


def test_un_jwks_illisible_au_demarrage_est_refuse_en_francais(
    reglages: dict[str, Any], tmp_path: Path
) -> None:
    manquant = tmp_path / "absent.json"
    with pytest.raises(ValueError, match="JWKS illisible"):
        create_app(Settings(ENVIRONNEMENT="developpement", **{**reglages, "JWT_JWKS_FICHIER": manquant}))


class ServeurJwks:
    """A real HTTP server on loopback publishing a JWKS, counting its fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.lectures = 0
        self.en_panne = False
        serveur = self

        class Gestionnaire(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                serveur.lectures += 1
                if serveur.en_panne:
                    self.send_error(503)
                    return
                corps = json.dumps(serveur.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(corps)))
                self.end_headers()
                self.wfile.write(corps)

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Gestionnaire)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publier(self, cles: dict[str, PrivateKey]) -> None:
        self.document = {"keys": [jwk_public(cle, kid) for kid, cle in cles.items()]}


@pytest.fixture
def serveur_jwks() -> Iterator[ServeurJwks]:
    serveur = ServeurJwks()
    try:
        yield serveur
    finally:
        serveur.httpd.shutdown()
        serveur.httpd.server_close()


def _verificateur_url(url: str, relecture: timedelta, cache: timedelta = timedelta(hours=1)) -> Verificateur:
    return Verificateur(
        Settings(
            ENVIRONNEMENT="developpement",
            JWT_JWKS_URL=url,
            JWT_JWKS_RELECTURE=relecture,
            JWT_JWKS_CACHE=cache,
        )
    )


def _jeton(cle: PrivateKey, kid: str) -> str:
    return emettre_jeton(cle, "gestionnaire.test", Role.GESTIONNAIRE, kid=kid)


async def test_jwks_par_url_garde_en_cache_et_relit_pour_un_kid_inconnu(
    serveur_jwks: ServeurJwks, cle1: PrivateKey, cle2: PrivateKey
) -> None:
    serveur_jwks.publier({"cle-1": cle1})
    verificateur = _verificateur_url(serveur_jwks.url, relecture=timedelta(0))
    for _ in range(3):
        assert (await verificateur.lire(_jeton(cle1, "cle-1"))).role == Role.GESTIONNAIRE
    assert serveur_jwks.lectures == 1  # kept in cache

    serveur_jwks.publier({"cle-1": cle1, "cle-2": cle2})  # the rotation: key 2 published
    assert (
        await verificateur.lire(_jeton(cle2, "cle-2"))
    ).role == Role.GESTIONNAIRE  # unknown kid: read again
    assert serveur_jwks.lectures == 2
    assert (await verificateur.lire(_jeton(cle1, "cle-1"))).role == Role.GESTIONNAIRE
    assert serveur_jwks.lectures == 2

    serveur_jwks.publier({"cle-2": cle2})
    # Key 1 withdrawn: refused once the cache is read again (here by an unknown kid's re-read).
    with pytest.raises(JetonInvalide):
        await verificateur.lire(_jeton(cle1, "cle-inconnue"))
    with pytest.raises(JetonInvalide):
        await verificateur.lire(_jeton(cle1, "cle-1"))


async def test_jwks_par_url_un_kid_inconnu_ne_relit_pas_a_chaque_requete(
    serveur_jwks: ServeurJwks, cle1: PrivateKey
) -> None:
    serveur_jwks.publier({"cle-1": cle1})
    verificateur = _verificateur_url(serveur_jwks.url, relecture=timedelta(hours=1))
    for _ in range(5):
        with pytest.raises(JetonInvalide):
            await verificateur.lire(_jeton(cle1, "invente"))
    assert serveur_jwks.lectures == 1


async def test_jwks_par_url_en_panne_garde_les_cles_ou_repond_indisponible(
    serveur_jwks: ServeurJwks, cle1: PrivateKey
) -> None:
    serveur_jwks.publier({"cle-1": cle1})
    verificateur = _verificateur_url(
        serveur_jwks.url, relecture=timedelta(0), cache=timedelta(microseconds=1)
    )
    assert (await verificateur.lire(_jeton(cle1, "cle-1"))).role == Role.GESTIONNAIRE
    serveur_jwks.en_panne = True
    # The cache has expired and the URL fails: the keys read before stay in use, the refresh
    # runs beside the request.
    for _ in range(10):
        assert (await verificateur.lire(_jeton(cle1, "cle-1"))).role == Role.GESTIONNAIRE
        await asyncio.sleep(0.01)
    # Retried with backoff (the next attempt a second later), not at each of those requests.
    assert serveur_jwks.lectures == 2
    # An unknown kid is refused at once while the last read failed.
    with pytest.raises(JetonInvalide):
        await verificateur.lire(_jeton(cle1, "autre"))
    assert serveur_jwks.lectures == 2
    # Never read at all: the service's fault, not the token's.
    with pytest.raises(ClesIndisponibles):
        await _verificateur_url(serveur_jwks.url, relecture=timedelta(0)).lire(_jeton(cle1, "cle-1"))


async def test_jwks_par_url_injoignable_repond_503_en_francais(
    reglages: dict[str, Any], serveur_jwks: ServeurJwks, cle1: PrivateKey
) -> None:
    serveur_jwks.en_panne = True
    sans_fichier = {k: v for k, v in reglages.items() if k != "JWT_JWKS_FICHIER"}
    settings = Settings(ENVIRONNEMENT="developpement", JWT_JWKS_URL=serveur_jwks.url, **sans_fichier)
    async for http in _client(settings):
        reponse = await lister(http, signe(cle1, "cle-1"))
        assert reponse.status_code == 503
        assert reponse.headers["retry-after"] == "5"
        assert (
            reponse.json()["detail"]
            == "Les clés de vérification des jetons sont momentanément indisponibles."
        )
        serveur_jwks.en_panne = False
        serveur_jwks.publier({"cle-1": cle1})
        # Read again after the backoff (a second after one failure): the service recovers alone.
        reprise = [(await lister(http, signe(cle1, "cle-1"))).status_code]
        while reprise[-1] == 503 and len(reprise) < 100:
            await asyncio.sleep(0.05)
            reprise.append((await lister(http, signe(cle1, "cle-1"))).status_code)
        assert reprise[-1] == 200 and len(reprise) < 60, reprise
