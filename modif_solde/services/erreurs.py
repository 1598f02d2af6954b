"""The domain's errors: one hierarchy, raised by the services and the use cases (cycle.py),
mapped once to problem+json (api/problemes.py), once to the pages' messages (pages/erreurs.py),
and to non-retryable Temporal failures in the activities. `statut`: the HTTP status a web
caller answers."""

from __future__ import annotations


class ErreurDomaine(Exception):
    """A refusal the user can understand; `message` is in French."""

    titre = "Requête refusée"
    statut = 409

    def __init__(self, message: str, erreurs: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.erreurs = erreurs or []


class Introuvable(ErreurDomaine):
    titre = "Ressource introuvable"
    statut = 404


class Conflit(ErreurDomaine):
    """The transition is not allowed in the current state (or the thing exists already)."""

    titre = "Action impossible dans l'état actuel"
    statut = 409


class DonneesInvalides(ErreurDomaine):
    """One or more rules are broken; `erreurs` lists them, one per field."""

    titre = "Données invalides"
    statut = 422


class BrouillonPerime(ErreurDomaine):
    """The draft changed since the caller read it (If-Match): nothing was done."""

    titre = "Brouillon modifié entre-temps"
    statut = 412


class PieceTropGrande(ErreurDomaine):
    titre = "Pièce trop volumineuse"
    statut = 413


class TypeDeContenuRefuse(ErreurDomaine):
    titre = "Type de pièce non accepté"
    statut = 415


class AccesRefuse(ErreurDomaine):
    """The caller's role or SIRET does not allow this action (an operator importing another
    SIRET's request)."""

    titre = "Accès refusé"
    statut = 403


class Indisponible(ErreurDomaine):
    """A service the action needs does not answer for the time being: worth a retry, never the
    caller's fault (answered 503 with Retry-After)."""

    titre = "Service momentanément indisponible"
    statut = 503


class MoteurIndisponible(Indisponible):
    """The workflow engine (Temporal) does not answer within the bounded wait, or cannot be reached."""

    def __init__(self) -> None:
        super().__init__(
            "Le traitement des modifications ne répond pas pour le moment ; réessayez dans quelques instants."
        )


class CycleArrete(Conflit):
    """A modification still open in the database whose workflow has ended (terminated or
    cancelled from the Temporal UI): only operations can repair it."""

    def __init__(self, numero: str) -> None:
        super().__init__(
            f"Le cycle de la modification {numero} s'est arrêté dans Temporal sans la clore : aucune "
            "action n'est possible. L'exploitation doit lancer la vérification (`modif-solde verifier`)."
        )


class StockageIndisponible(Exception):
    """The documents' store cannot be reached or refuses the service's requests: not the user's
    fault (so no ErreurDomaine: an activity retries it), answered 503."""

    message = "Le stockage des pièces est momentanément indisponible : réessayez dans quelques minutes."
