"""Who acts: the caller's role and, for an operator, its SIRET (read from the JWT by the API,
from the portal's session by the pages)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
