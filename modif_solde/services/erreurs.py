"""The domain's errors: one hierarchy, mapped to HTTP in one handler and to non-retryable
Temporal failures in the activities."""

from __future__ import annotations


class ErreurDomaine(Exception):
    """A refusal the user can understand; `message` is in French."""

    titre = "Requête refusée"

    def __init__(self, message: str, erreurs: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.erreurs = erreurs or []


class Introuvable(ErreurDomaine):
    titre = "Ressource introuvable"


class Conflit(ErreurDomaine):
    """The transition is not allowed in the current state (or the thing exists already)."""

    titre = "Action impossible dans l'état actuel"


class DonneesInvalides(ErreurDomaine):
    """One or more rules are broken; `erreurs` lists them, one per field."""

    titre = "Données invalides"


class BrouillonPerime(ErreurDomaine):
    """The draft changed since the caller read it (If-Match): nothing was done."""

    titre = "Brouillon modifié entre-temps"


class PieceTropGrande(ErreurDomaine):
    titre = "Pièce trop volumineuse"


class TypeDeContenuRefuse(ErreurDomaine):
    titre = "Type de pièce non accepté"


class StockageIndisponible(Exception):
    """The documents' store cannot be reached or refuses the service's requests: not the user's
    fault (so no ErreurDomaine: an activity retries it), answered 503."""

    message = "Le stockage des pièces est momentanément indisponible : réessayez dans quelques minutes."


ERREURS_PAR_NOM: dict[str, type[ErreurDomaine]] = {
    cls.__name__: cls
    for cls in (
        ErreurDomaine,
        Introuvable,
        Conflit,
        DonneesInvalides,
        BrouillonPerime,
        PieceTropGrande,
        TypeDeContenuRefuse,
    )
}
