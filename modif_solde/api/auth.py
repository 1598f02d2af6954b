"""Bearer tokens (JWT): who calls, with which role, and for an operator which SIRET.

In production the tokens are signed with asymmetric keys (RS256 or ES256) published as a JWKS,
read from a URL or a file; the key is chosen by the token's `kid` and the algorithm by the key's
type, never by the token alone. HS256 with a shared secret is for development only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from stdnum.fr import siret as stdnum_siret

from modif_solde.models.utilisateur import Role, Utilisateur

if TYPE_CHECKING:
    from modif_solde.config import Settings

__all__ = ["Role", "Utilisateur"]  # defined in models/utilisateur.py, read here from the token

journal = logging.getLogger(__name__)

EMETTEUR = "modif-solde"
AUDIENCE = "modif-solde-api"
ALGORITHME = "HS256"  # development only
# Clocks of the issuer and of the API may differ a little (iat, exp).
TOLERANCE = timedelta(seconds=30)
RSA_TAILLE_MIN = 2048


class JetonInvalide(Exception):
    pass


class ClesIndisponibles(Exception):
    """The JWKS could not be read and no earlier copy is known: the service's fault, not the
    caller's."""


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def algorithme_de(cle: PrivateKey | PublicKey) -> str:
    """The one algorithm a key type signs with: RS256 for RSA (2048 bits at least), ES256 for
    EC P-256. Anything else is refused."""
    if isinstance(cle, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if cle.key_size < RSA_TAILLE_MIN:
            raise ValueError(f"clé RSA de {cle.key_size} bits : {RSA_TAILLE_MIN} au moins")
        return "RS256"
    if isinstance(cle, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(cle.curve, ec.SECP256R1):
            raise ValueError(f"courbe {cle.curve.name} : seule P-256 (ES256) est acceptée")
        return "ES256"
    raise ValueError("type de clé non accepté : RSA (RS256) ou EC P-256 (ES256)")


def lire_cle_privee(pem: bytes) -> PrivateKey:
    try:
        cle = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("le fichier n'est pas une clé privée PEM lisible (sans mot de passe)") from exc
    if not isinstance(cle, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("type de clé non accepté : RSA (RS256) ou EC P-256 (ES256)")
    algorithme_de(cle)
    return cle


def emettre_jeton(
    cle: str | PrivateKey,
    sub: str,
    role: Role,
    siret: str | None = None,
    duree: timedelta = timedelta(hours=12),
    *,
    kid: str | None = None,
    emetteur: str = EMETTEUR,
    audience: str = AUDIENCE,
) -> str:
    """A token signed with `cle`: a shared secret (HS256, development) or a private key (RS256
    or ES256 by its type, with its `kid`)."""
    if role == Role.OPERATEUR and not (siret and stdnum_siret.is_valid(siret)):
        raise ValueError("un jeton opérateur exige un SIRET valide")
    maintenant = datetime.now(UTC)
    revendications: dict[str, object] = {
        "iss": emetteur,
        "aud": audience,
        "sub": sub,
        "role": role.value,
        "iat": maintenant,
        "exp": maintenant + duree,
        "jti": uuid.uuid4().hex,
    }
    if role == Role.OPERATEUR:
        revendications["siret"] = siret
    if isinstance(cle, str):
        return jwt.encode(revendications, cle, algorithm=ALGORITHME)
    if not kid:
        raise ValueError("un jeton signé d'une clé privée exige son identifiant (kid)")
    return jwt.encode(revendications, cle, algorithm=algorithme_de(cle), headers={"kid": kid})


# --- The verification keys (JWKS) -------------------------------------------------------------


def cles_du_jwks(document: Any) -> dict[str, tuple[PublicKey, str]]:
    """kid -> (public key, its one algorithm). Keys that cannot sign for us are left out: no kid,
    `use` other than `sig`, an `alg` other than the one of their type, private parts, RSA under
    2048 bits, curves other than P-256, symmetric keys (`oct`)."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("un JWKS est un objet JSON avec une liste « keys »")
    cles: dict[str, tuple[PublicKey, str]] = {}
    for donnees in document["keys"]:
        if not isinstance(donnees, dict):
            continue
        kid = donnees.get("kid")
        if not isinstance(kid, str) or not kid or donnees.get("use", "sig") != "sig" or "d" in donnees:
            continue
        if donnees.get("kty") not in ("RSA", "EC"):
            continue
        try:
            cle = jwt.PyJWK(donnees).key
            algorithme = algorithme_de(cle)
        except (jwt.PyJWTError, ValueError, TypeError):
            journal.warning("clé %r du JWKS ignorée (type ou taille non acceptés)", kid)
            continue
        if donnees.get("alg", algorithme) != algorithme:
            journal.warning(
                "clé %r du JWKS ignorée : alg %r pour une clé %s", kid, donnees.get("alg"), algorithme
            )
            continue
        cles[kid] = (cle, algorithme)
    return cles


class SourceFichier:
    """A JWKS file: read again as soon as it changes (inode, size, mtime), and on an unknown
    `kid` at most every `intervalle` seconds. A file that cannot be read keeps the last keys."""

    def __init__(self, chemin: Path, intervalle: float) -> None:
        self.chemin, self.intervalle = chemin, intervalle
        self._empreinte: tuple[int, int, int] | None = None
        self._cles: dict[str, tuple[PublicKey, str]] | None = None
        self._relu_le = float("-inf")
        self.recharger(premiere=True)

    def recharger(self, premiere: bool = False) -> None:
        self._relu_le = time.monotonic()
        try:
            etat = os.stat(self.chemin)
            empreinte = (etat.st_ino, etat.st_size, etat.st_mtime_ns)
            cles = cles_du_jwks(json.loads(self.chemin.read_bytes()))
        except (OSError, ValueError) as exc:
            if premiere:
                raise ValueError(f"JWKS illisible ({self.chemin}) : {exc}") from None
            journal.error("JWKS illisible (%s), les clés précédentes restent : %s", self.chemin, exc)
            return
        if cles != self._cles and self._cles is not None:
            journal.info("JWKS relu : clés %s", sorted(cles))
        self._cles, self._empreinte = cles, empreinte

    def _a_change(self) -> bool:
        try:
            etat = os.stat(self.chemin)
        except OSError:
            return False
        return (etat.st_ino, etat.st_size, etat.st_mtime_ns) != self._empreinte

    async def cle(self, kid: str) -> tuple[PublicKey, str] | None:
        """One stat, and a read when the file changed: quick enough for the event loop."""
        if self._a_change():
            self.recharger()
        cles = self._cles or {}
        if kid not in cles and time.monotonic() - self._relu_le >= self.intervalle:
            self.recharger()
            cles = self._cles or {}
        return cles.get(kid)


# A JWKS read: bounded in time and size (a key set is a few KiB).
DELAI_LECTURE = 5.0
TAILLE_JWKS_MAX = 1024 * 1024
# After a failed read, the next one waits 1 s, then 2, 4… up to this (±20 %, so that replicas
# do not all retry at once).
ATTENTE_MAX = 30.0
# How long an unknown `kid` waits for the refresh it started (a JWKS answers in tens of ms).
ATTENTE_KID_INCONNU = 0.5


class SourceUrl:
    """A JWKS at a URL, refreshed in one place (`_lire`), one refresh at a time, in the
    background: a reader never waits for it once keys are known.

    - Known `kid`: answered at once from the keys read, even past JWT_JWKS_CACHE (the stale keys
      serve while a refresh runs, or fails: a JWKS that hangs or fails changes no latency).
    - Unknown `kid`: starts a refresh (at most every `intervalle` seconds) and waits for it up to
      ATTENTE_KID_INCONNU; if the last read failed, it is refused at once.
    - No key read yet: waits for the first read (DELAI_LECTURE at most), then ClesIndisponibles.
    - A failed read is retried with backoff (1 s doubling to ATTENTE_MAX), never at every request.
    """

    def __init__(self, url: str, intervalle: float, duree_cache: float) -> None:
        self.url, self.intervalle, self.duree_cache = url, intervalle, duree_cache
        self._cles: dict[str, tuple[PublicKey, str]] | None = None
        self._lu_le = float("-inf")  # last successful read (monotonic)
        self._tente_le = float("-inf")  # last read started
        self._en_echec = False  # the last read failed
        self._attente = 0.0  # the current backoff
        self._pas_avant = float("-inf")
        self._tache: asyncio.Task[None] | None = None

    def demarrer(self) -> None:
        """The first read, at the API's start (in the background)."""
        self._rafraichir(kid_inconnu=False)

    async def arreter(self) -> None:
        if self._tache is not None and not self._tache.done():
            self._tache.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tache

    def _rafraichir(self, kid_inconnu: bool) -> asyncio.Task[None] | None:
        """The read in flight, after starting one if it is due; None if none runs."""
        boucle = asyncio.get_running_loop()
        if self._tache is not None and not self._tache.done() and self._tache.get_loop() is boucle:
            return self._tache
        maintenant = time.monotonic()
        if maintenant < self._pas_avant:
            return None
        perime = self._cles is None or maintenant >= self._lu_le + self.duree_cache
        if not perime and not (kid_inconnu and maintenant - self._tente_le >= self.intervalle):
            return None
        self._tente_le = maintenant
        self._tache = boucle.create_task(self._lire(), name="lecture du JWKS")
        return self._tache

    async def _lire(self) -> None:
        try:
            with anyio.fail_after(DELAI_LECTURE):
                cles = cles_du_jwks(await _telecharger(self.url))
        except Exception as exc:
            # Whatever the failure (timeout, HTTP, a document that is no JWKS, or anything
            # unforeseen), it is retried with backoff: never a read at every request.
            self._attente = min(max(2 * self._attente, 1.0), ATTENTE_MAX)
            self._pas_avant = time.monotonic() + self._attente * random.uniform(0.8, 1.2)  # noqa: S311
            self._en_echec = True
            journal.error(
                "JWKS injoignable (%s) : %s ; clés précédentes gardées, nouvel essai dans %.0f s",
                self.url,
                str(exc) or type(exc).__name__,
                self._attente,
            )
            return
        if self._cles is not None and cles != self._cles:
            journal.info("JWKS relu : clés %s", sorted(cles))
        self._cles, self._lu_le = cles, time.monotonic()
        self._en_echec, self._attente, self._pas_avant = False, 0.0, float("-inf")

    async def cle(self, kid: str) -> tuple[PublicKey, str] | None:
        inconnu = self._cles is not None and kid not in self._cles
        tache = self._rafraichir(kid_inconnu=inconnu)
        if self._cles is not None and kid in self._cles:
            return self._cles[kid]
        if tache is not None and not self._en_echec:
            attente = ATTENTE_KID_INCONNU if self._cles is not None else DELAI_LECTURE
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(tache), attente)
        if self._cles is None:
            raise ClesIndisponibles(f"JWKS jamais lu ({self.url})")
        return self._cles.get(kid)


async def _telecharger(url: str) -> Any:
    async with httpx.AsyncClient(timeout=DELAI_LECTURE, follow_redirects=False) as client:
        async with client.stream("GET", url, headers={"Accept": "application/json"}) as reponse:
            reponse.raise_for_status()
            corps = bytearray()
            async for morceau in reponse.aiter_bytes():
                corps += morceau
                if len(corps) > TAILLE_JWKS_MAX:
                    raise ValueError(f"JWKS de plus de {TAILLE_JWKS_MAX} octets")
    return json.loads(corps)


class Verificateur:
    """Checks a bearer token against the settings: the JWKS (by `kid`), and in development only
    the shared secret (HS256).

    A token already verified is not verified again while it is valid: the same string was
    signed by the same key, so the signature check (most of the cost of an API read) would give
    the same answer. A remembered token is still refused once it has expired, or once its key
    is no longer the one the JWKS gives for its `kid` (key withdrawn, or replaced: the JWKS read
    again). At most `taille_cache` tokens are kept, the least recently used dropped first."""

    def __init__(self, settings: Settings, taille_cache: int = 4096) -> None:
        self.emetteur, self.audience = settings.JWT_EMETTEUR, settings.JWT_AUDIENCE
        self.secret = settings.JWT_SECRET if settings.ENVIRONNEMENT == "developpement" else None
        intervalle = settings.JWT_JWKS_RELECTURE.total_seconds()
        self.source: SourceFichier | SourceUrl | None = None
        if settings.JWT_JWKS_FICHIER is not None:
            self.source = SourceFichier(settings.JWT_JWKS_FICHIER, intervalle)
        elif settings.JWT_JWKS_URL:
            self.source = SourceUrl(
                settings.JWT_JWKS_URL, intervalle, settings.JWT_JWKS_CACHE.total_seconds()
            )
        self.taille_cache = taille_cache
        # jeton → (utilisateur, expiration (epoch s), kid, the key that verified it). Used from
        # the event loop only (the checks never leave it): no lock.
        self._verifies: OrderedDict[str, tuple[Utilisateur, float, str | None, object]] = OrderedDict()

    def demarrer(self) -> None:
        """At the API's start: a JWKS at a URL is read in the background right away."""
        if isinstance(self.source, SourceUrl):
            self.source.demarrer()

    async def arreter(self) -> None:
        if isinstance(self.source, SourceUrl):
            await self.source.arreter()

    async def lire(self, jeton: str) -> Utilisateur:
        connu = self._verifies.get(jeton)
        if connu is not None:
            self._verifies.move_to_end(jeton)
            utilisateur, expire, kid, cle_connue = connu
            if (
                time.time() < expire + TOLERANCE.total_seconds()
                and await self._cle_actuelle(kid) is cle_connue
            ):
                return utilisateur
            self._verifies.pop(jeton, None)
        utilisateur, expire, kid, cle = await self._verifier(jeton)
        self._verifies[jeton] = (utilisateur, expire, kid, cle)
        while len(self._verifies) > self.taille_cache:
            self._verifies.popitem(last=False)
        return utilisateur

    async def _cle_actuelle(self, kid: str | None) -> object:
        if kid is None:
            return self.secret
        trouvee = await self.source.cle(kid) if self.source is not None else None
        return trouvee[0] if trouvee is not None else None

    async def _verifier(self, jeton: str) -> tuple[Utilisateur, float, str | None, object]:
        try:
            entete = jwt.get_unverified_header(jeton)
        except jwt.PyJWTError:
            raise JetonInvalide("en-tête illisible") from None
        if entete.get("alg") == ALGORITHME and self.secret is not None:
            revendications = _decoder(self.secret, jeton, ALGORITHME, self.emetteur, self.audience)
            return _utilisateur(revendications), float(revendications["exp"]), None, self.secret
        kid = entete.get("kid")
        if self.source is None or not isinstance(kid, str) or not kid or len(kid) > 200:
            raise JetonInvalide("clé inconnue")
        trouvee = await self.source.cle(kid)
        if trouvee is None:
            raise JetonInvalide("clé inconnue")
        cle, algorithme = trouvee
        revendications = _decoder(cle, jeton, algorithme, self.emetteur, self.audience)
        return _utilisateur(revendications), float(revendications["exp"]), kid, cle


def _decoder(
    cle: str | PublicKey, jeton: str, algorithme: str, emetteur: str, audience: str
) -> dict[str, Any]:
    try:
        revendications: dict[str, Any] = jwt.decode(
            jeton,
            cle,
            algorithms=[algorithme],
            issuer=emetteur,
            audience=audience,
            leeway=TOLERANCE,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as err:
        raise JetonInvalide(str(err)) from None
    if not isinstance(revendications.get("exp"), int | float):
        raise JetonInvalide("expiration illisible")
    return revendications


def _utilisateur(revendications: dict[str, Any]) -> Utilisateur:
    try:
        role = Role(str(revendications.get("role")))
    except ValueError:
        raise JetonInvalide("rôle inconnu") from None
    sub = revendications.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 200:
        raise JetonInvalide("sujet invalide")
    siret = revendications.get("siret")
    if role == Role.OPERATEUR:
        if not isinstance(siret, str) or not stdnum_siret.is_valid(siret):
            raise JetonInvalide("SIRET manquant ou invalide")
        return Utilisateur(sub=sub, role=role, siret=siret)
    return Utilisateur(sub=sub, role=role)


# --- Key pairs for operations (`modif-solde cles`) ---------------------------------------------


def generer_cle(algorithme: str) -> PrivateKey:
    if algorithme == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithme == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    raise ValueError("algorithme : ES256 ou RS256")


def pem_prive(cle: PrivateKey) -> bytes:
    return cle.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def jwk_public(cle: PrivateKey | PublicKey, kid: str) -> dict[str, Any]:
    publique = cle.public_key() if isinstance(cle, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) else cle
    algorithme = algorithme_de(publique)
    texte = (
        RSAAlgorithm.to_jwk(publique)
        if isinstance(publique, rsa.RSAPublicKey)
        else ECAlgorithm.to_jwk(publique)
    )
    donnees: dict[str, Any] = json.loads(texte)
    return {**donnees, "kid": kid, "use": "sig", "alg": algorithme}
