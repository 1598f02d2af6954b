"""Bearer tokens (JWT, HS256): who calls, with which role, and for an operator which SIRET."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt
from stdnum.fr import siret as stdnum_siret

EMETTEUR = "modif-solde"
ALGORITHME = "HS256"


class Role(StrEnum):
    OPERATEUR = "operateur"
    GESTIONNAIRE = "gestionnaire"


@dataclass(frozen=True)
class Utilisateur:
    sub: str
    role: Role
    siret: str | None = None

    @property
    def perimetre_siret(self) -> str | None:
        """The SIRET an operator's lookups are scoped to; None for a gestionnaire (sees all)."""
        return self.siret if self.role == Role.OPERATEUR else None

    @property
    def voit_interne(self) -> bool:
        """Whether the gestionnaires' own data is shown (who opened, the withdrawal's reason,
        their notices): to gestionnaires only."""
        return self.role == Role.GESTIONNAIRE


class JetonInvalide(Exception):
    pass


def emettre_jeton(
    secret: str, sub: str, role: Role, siret: str | None = None, duree: timedelta = timedelta(hours=12)
) -> str:
    if role == Role.OPERATEUR and not (siret and stdnum_siret.is_valid(siret)):
        raise ValueError("un jeton opérateur exige un SIRET valide")
    maintenant = datetime.now(UTC)
    revendications: dict[str, object] = {
        "iss": EMETTEUR,
        "sub": sub,
        "role": role.value,
        "iat": maintenant,
        "exp": maintenant + duree,
        "jti": uuid.uuid4().hex,
    }
    if role == Role.OPERATEUR:
        revendications["siret"] = siret
    return jwt.encode(revendications, secret, algorithm=ALGORITHME)


def lire_jeton(secret: str, jeton: str) -> Utilisateur:
    try:
        revendications = jwt.decode(
            jeton,
            secret,
            algorithms=[ALGORITHME],
            issuer=EMETTEUR,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
    except jwt.PyJWTError as err:
        raise JetonInvalide(str(err)) from None
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
