"""What the workflow, its activities and its callers exchange: names and payloads only.

Pydantic models (the client and worker use Temporal's pydantic data converter). A field is
only ever added with a default, so histories already recorded keep replaying.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, Field

from modif_solde.formats import format_date_heure_fr
from modif_solde.models.enums import StatutEnvoi, StatutModification, TypeCourriel
from modif_solde.models.regles import MOTIF_RETRAIT_MAX

WORKFLOW_MODIFICATION = "ModificationWorkflow"

# Activity names: the workflow calls them by name so that it never imports DB or SMTP code.
OUVRIR = "ouvrir_modification"
CONFIRMER = "confirmer_modification"
CLOTURER = "cloturer_modification"
PROLONGER = "prolonger_modification"
NOTER_RELANCE = "noter_relance"
ENVOYER_COURRIEL = "envoyer_courriel"
NOTER_ECHEC_COURRIEL = "noter_echec_courriel"

# Error types carried by ApplicationError from activities and update handlers.
ERREUR_CONFLIT = "Conflit"
ERREUR_DONNEES_INVALIDES = "DonneesInvalides"
ERREUR_INTROUVABLE = "Introuvable"
ERREURS_DU_DOMAINE = [
    ERREUR_CONFLIT,
    ERREUR_DONNEES_INVALIDES,
    ERREUR_INTROUVABLE,
    "BrouillonPerime",
    "PieceTropGrande",
    "TypeDeContenuRefuse",
    "ErreurDomaine",
]


def message_echeance_passee(modification_numero: str, expire_le: datetime) -> str:
    """The refusal of an operator's action past the deadline, the same from the workflow and the services."""
    return (
        f"Le délai de la modification {modification_numero} a expiré le {format_date_heure_fr(expire_le)} "
        "(heure de Paris) : elle ne peut plus être complétée, confirmée ni abandonnée."
    )


class ModificationEntree(BaseModel):
    """The workflow's input. Durations are read from settings by the starter, never inside."""

    demande_numero: str
    modification_numero: str
    commentaire: str
    champs: list[str]
    ouverte_par: str
    relance_apres: timedelta
    expiration_apres: timedelta
    # An e-mail the SMTP server keeps refusing for the time being (4xx, unreachable) is retried
    # with backoff this long, then marked `echec`: a workflow never outlives its modification
    # for an e-mail. Three days: a weekend outage plus a working day to fix it.
    abandon_courriel_apres: timedelta = timedelta(days=3)


class ModificationResultat(BaseModel):
    modification_numero: str
    statut: StatutModification | None
    motif: str | None = None


class OuvertureActivite(BaseModel):
    demande_numero: str
    modification_numero: str
    commentaire: str
    champs: list[str]
    ouverte_par: str
    ouverte_le: AwareDatetime
    relance_le: AwareDatetime
    expire_le: AwareDatetime


class OuvertureFaite(BaseModel):
    demande_numero: str
    modification_numero: str
    operateur_siret: str
    statut: StatutModification
    ouverte_le: AwareDatetime
    relance_le: AwareDatetime
    expire_le: AwareDatetime


class ClotureActivite(BaseModel):
    modification_numero: str
    statut: StatutModification
    le: AwareDatetime
    issue: str
    # The draft version the operator confirmed (If-Match); None: no condition.
    version_brouillon: int | None = None


class ClotureFaite(BaseModel):
    modification_numero: str
    statut: StatutModification
    cloturee_le: AwareDatetime
    version_appliquee: int | None = None


class ProlongationActivite(BaseModel):
    modification_numero: str
    expire_le: AwareDatetime
    le: AwareDatetime


class Echeances(BaseModel):
    relance_le: AwareDatetime
    expire_le: AwareDatetime
    relance_envoyee: bool


class RelanceActivite(BaseModel):
    modification_numero: str
    le: AwareDatetime


class CourrielActivite(BaseModel):
    modification_numero: str
    type: TypeCourriel
    # Tells apart two e-mails of one kind (two extensions): part of the idempotency key.
    discriminant: str = ""


class CourrielEnvoye(BaseModel):
    """What became of an e-mail: sent, refused for good (with the server's answer), or nothing
    to send (`statut` None: a reminder for a modification closed meanwhile)."""

    cle: str = ""
    statut: StatutEnvoi | None = None
    erreur: str | None = None


class EchecCourrielActivite(BaseModel):
    """The workflow gives up an e-mail whose retries ran out: marked failed with this reason."""

    modification_numero: str
    type: TypeCourriel
    discriminant: str = ""
    erreur: str


# Update arguments and answers.
class ActionOperateur(BaseModel):
    par: str = Field(default="", max_length=200)
    # Confirm only the draft at this version (If-Match); None: whatever the draft is.
    version_brouillon: int | None = None


class Retrait(BaseModel):
    par: str = Field(default="", max_length=200)
    motif: str = Field(default="", max_length=MOTIF_RETRAIT_MAX)


class Prolongation(BaseModel):
    expire_le: AwareDatetime
    par: str = Field(default="", max_length=200)


class EtatModification(BaseModel):
    """What an update answers and the `etat` query returns."""

    modification_numero: str
    demande_numero: str
    statut: StatutModification | None
    ouverte_le: datetime | None = None
    relance_le: datetime | None = None
    expire_le: datetime | None = None
    relance_envoyee: bool = False
    version_appliquee: int | None = None
