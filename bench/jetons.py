"""The bench's API tokens, as production signs them: ES256 with a key of the bench's own,
published to the API processes as a JWKS file (production refuses HS256)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from modif_solde.api.auth import Role, generer_cle, jwk_public
from modif_solde.api.auth import emettre_jeton as _emettre

KID = "bench"
_CLE = generer_cle("ES256")


def ecrire_jwks(chemin: Path) -> Path:
    chemin.write_text(json.dumps({"keys": [jwk_public(_CLE, KID)]}))
    return chemin


def emettre_jeton(
    _secret: object, sub: str, role: Role, siret: str | None = None, duree: timedelta = timedelta(hours=12)
) -> str:
    """Same call as `modif_solde.api.auth.emettre_jeton`; the secret argument is ignored (the
    bench's callers keep their shape), the token is signed with the bench's ES256 key."""
    return _emettre(_CLE, sub, role, siret, duree, kid=KID)
