"""Status values and document kinds, as fixed by the contract (API.md)."""

from datetime import timedelta
from enum import StrEnum


class StatutDemande(StrEnum):
    EN_COURS = "en_cours"
    A_MODIFIER = "a_modifier"


class StatutModification(StrEnum):
    OUVERTE = "ouverte"
    CONFIRMEE = "confirmee"
    RENONCEE = "renoncee"
    EXPIREE = "expiree"
    RETIREE = "retiree"


class TypePieceAjoutable(StrEnum):
    """Document types an operator may add during a modification."""

    MSS_RESU_TEST_TECH = "MSS_RESU_TEST_TECH"
    MSS_GUIDE_PDF_API = "MSS_GUIDE_PDF_API"
    AUTRE_S = "AUTRE_S"


class StatutEnvoi(StrEnum):
    """Where an e-mail stands: waiting (or being retried), accepted by the server, given up."""

    EN_ATTENTE = "en_attente"
    ENVOYE = "envoye"
    ECHEC = "echec"


class TypeCourriel(StrEnum):
    INVITATION = "invitation"
    RELANCE = "relance"
    EXPIRATION = "expiration"
    CONFIRMATION = "confirmation"
    CONFIRMATION_GESTIONNAIRES = "confirmation_gestionnaires"
    RENONCIATION = "renonciation"
    RETRAIT = "retrait"
    PROLONGATION = "prolongation"


CHAMPS_EDITABLES: tuple[str, ...] = (
    "contact_support_nom",
    "contact_support_telephone",
    "contact_support_courriel",
    "site_documentation_url",
)

# An extension is a matter of weeks; a year bounds typing errors (2207 for 2027).
PROLONGATION_MAX = timedelta(days=365)
