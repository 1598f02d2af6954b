"""HTTP's side of errors, one table for the API (problem+json) and the pages (HTML)."""

from __future__ import annotations

from modif_solde.services.erreurs import ErreurDomaine, Indisponible

TITRES_HTTP = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Ressource introuvable",
    405: "Méthode non autorisée",
    409: "Conflit",
    412: "Précondition échouée",
    413: "Contenu trop volumineux",
    415: "Type de contenu non accepté",
    422: "Données invalides",
    500: "Erreur interne",
    503: "Service momentanément indisponible",
}

# An unavailability is worth a retry, a few seconds later.
REESSAYER = {"Retry-After": "5"}


def entetes_de(erreur: ErreurDomaine) -> dict[str, str]:
    return dict(REESSAYER) if isinstance(erreur, Indisponible) else {}


class Probleme(Exception):
    """An HTTP refusal raised by the web layer itself (authentication, role, session)."""

    def __init__(
        self, statut: int, detail: str, titre: str | None = None, entetes: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.statut = statut
        self.detail = detail
        self.titre = titre or TITRES_HTTP.get(statut, "Erreur")
        self.entetes = entetes or {}
