"""The tables: operator, balance request, documents, modification, version history, e-mail log,
the gestionnaires' list and the portal's sessions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from modif_solde.models.enums import StatutDemande, StatutEnvoi, StatutModification
from modif_solde.models.types import UTCDateTime, maintenant


class Operateur(SQLModel, table=True):
    """The SIRET that owns requests; its identity columns are those of its first import (each
    request carries the identity it was filed with)."""

    __tablename__ = "operateur"

    id: int | None = Field(default=None, primary_key=True)
    siret: str = Field(max_length=14, unique=True, index=True)
    numero_ans: str = Field(max_length=50)
    denomination: str = Field(max_length=200)
    adresse_ligne: str = Field(max_length=200)
    code_postal: str = Field(max_length=10)
    commune: str = Field(max_length=100)
    courriel: str = Field(max_length=254)
    cree_le: datetime = Field(default_factory=maintenant, sa_type=UTCDateTime, nullable=False)


class Demande(SQLModel, table=True):
    __tablename__ = "demande"
    __table_args__ = (
        # The work queue filtered by status, in number order (its requests without an open modification).
        Index("ix_demande_statut_numero", "statut", "numero"),
        # The daily purge's candidates: requests not yet purged, by their last closing.
        Index(
            "ix_demande_a_purger",
            "statut_modifie_le",
            sqlite_where=text("purgee_le IS NULL AND statut = 'en_cours'"),
            postgresql_where=text("purgee_le IS NULL AND statut = 'en_cours'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    numero: str = Field(max_length=20, unique=True, index=True)
    type: str = Field(default="solde", max_length=20)
    statut: str = Field(default=StatutDemande.EN_COURS, max_length=30, index=True)
    statut_modifie_le: datetime = Field(default_factory=maintenant, sa_type=UTCDateTime, nullable=False)
    date_depot: date
    operateur_id: int = Field(foreign_key="operateur.id", index=True)
    # The operator's identity as filed with this request: shown on its page and used as the
    # e-mails' recipient. A later import of the same SIRET leaves it as it is.
    operateur_numero_ans: str = Field(max_length=50)
    operateur_denomination: str = Field(max_length=200)
    operateur_adresse_ligne: str = Field(max_length=200)
    operateur_code_postal: str = Field(max_length=10)
    operateur_commune: str = Field(max_length=100)
    operateur_courriel: str = Field(max_length=254)
    dsr: str = Field(max_length=100)
    contact_support_nom: str | None = Field(default=None, max_length=200)
    contact_support_telephone: str = Field(max_length=40)
    contact_support_courriel: str = Field(max_length=254)
    site_documentation_url: str = Field(max_length=2048)
    bal_applicatives: int
    bal_organisationnelles: int
    bal_nominatives: int
    # Amounts in cents: exact on every database.
    avance_centimes: int = Field(sa_type=BigInteger)
    engagement_solde_centimes: int = Field(sa_type=BigInteger)
    solde_centimes: int = Field(sa_type=BigInteger)
    titulaire: str = Field(max_length=200)
    iban: str = Field(max_length=34)
    bic: str = Field(max_length=11)
    version: int = Field(default=1)
    importee_le: datetime = Field(default_factory=maintenant, sa_type=UTCDateTime, nullable=False)
    # Set once its retention period was over and `purger` erased its personal data, e-mails and
    # documents (services/conservation.py); what is left is its number, amounts and cycle dates.
    purgee_le: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class Modification(SQLModel, table=True):
    __tablename__ = "modification"
    __table_args__ = (
        UniqueConstraint("demande_id", "rang", name="uq_modification_demande_rang"),
        # At most one open modification per request, enforced by the database itself.
        Index(
            "uq_modification_ouverte_par_demande",
            "demande_id",
            unique=True,
            sqlite_where=text("statut = 'ouverte'"),
            postgresql_where=text("statut = 'ouverte'"),
        ),
        # The work queue's order: open modifications by deadline, small since only open ones are in it.
        Index(
            "ix_modification_ouverte_expire_le",
            "expire_le",
            "demande_id",
            sqlite_where=text("statut = 'ouverte'"),
            postgresql_where=text("statut = 'ouverte'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    numero: str = Field(max_length=30, unique=True, index=True)
    demande_id: int = Field(foreign_key="demande.id", index=True)
    rang: int
    commentaire: str = Field(sa_column=Column(Text, nullable=False))
    champs_attendus: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    statut: str = Field(default=StatutModification.OUVERTE, max_length=20, index=True)
    brouillon: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ouverte_par: str = Field(max_length=200)
    # Indexed (and `cloturee_le`): the steering dashboard reads a period through them.
    ouverte_le: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    relance_le: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expire_le: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    relance_envoyee_le: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    cloturee_le: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True, index=True)
    issue: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    version_appliquee: int | None = None
    # Bumped by every change of the draft (fields or documents): the draft's ETag.
    brouillon_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class Piece(SQLModel, table=True):
    __tablename__ = "piece"

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, primary_key=True, max_length=32)
    demande_id: int = Field(foreign_key="demande.id", index=True)
    # Null: came with the import; set: added during that modification.
    modification_id: int | None = Field(default=None, foreign_key="modification.id", index=True)
    type: str = Field(max_length=64)
    nom_fichier: str = Field(max_length=255)
    type_contenu: str = Field(default="application/pdf", max_length=100)
    taille: int = Field(sa_type=BigInteger)
    sha256: str = Field(max_length=64)
    cle_stockage: str = Field(max_length=64, unique=True)
    # False while it sits in an open modification's draft; true once imported or confirmed.
    definitive: bool = True
    ajoutee_le: datetime = Field(default_factory=maintenant, sa_type=UTCDateTime, nullable=False)


class Historique(SQLModel, table=True):
    """One applied change of a request: field, old value, new value, when, which modification."""

    __tablename__ = "historique"

    id: int | None = Field(default=None, primary_key=True)
    demande_id: int = Field(foreign_key="demande.id", index=True)
    version: int
    modification_id: int | None = Field(default=None, foreign_key="modification.id")
    champ: str = Field(max_length=100)
    ancienne_valeur: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    nouvelle_valeur: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    applique_le: datetime = Field(default_factory=maintenant, sa_type=UTCDateTime, nullable=False)


class Courriel(SQLModel, table=True):
    """An automatic e-mail, logged on its request; the idempotency key keeps a retry from
    sending twice what the SMTP server already accepted."""

    __tablename__ = "courriel"
    __table_args__ = (
        # The steering dashboard's failed e-mails over a period, by kind.
        Index(
            "ix_courriel_echec_cree_le",
            "cree_le",
            "type",
            sqlite_where=text("statut_envoi = 'echec'"),
            postgresql_where=text("statut_envoi = 'echec'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    demande_id: int = Field(foreign_key="demande.id", index=True)
    modification_id: int | None = Field(default=None, foreign_key="modification.id")
    type: str = Field(max_length=40)
    destinataire: str = Field(max_length=254)
    sujet: str = Field(max_length=300)
    corps_texte: str = Field(sa_column=Column(Text, nullable=False))
    corps_html: str = Field(sa_column=Column(Text, nullable=False))
    cle_idempotence: str = Field(max_length=200, unique=True)
    message_id: str = Field(max_length=300)
    cree_le: datetime = Field(default_factory=maintenant, sa_type=UTCDateTime, nullable=False)
    envoye_le: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    tentatives: int = 0
    # `echec`: refused for good by the server (or unreachable too long); the reason, as the
    # server gave it, in `erreur_envoi`. While `en_attente`, it holds the last temporary failure.
    statut_envoi: str = Field(
        default=StatutEnvoi.EN_ATTENTE,
        max_length=20,
        sa_column_kwargs={"server_default": StatutEnvoi.EN_ATTENTE.value},
    )
    erreur_envoi: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    derniere_tentative_le: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class IdempotenceAction(SQLModel, table=True):
    """An Idempotency-Key a caller gave an action on a modification: the same key serves only
    that action (its outcome is kept by Temporal, under the update id the key makes)."""

    __tablename__ = "idempotence_action"

    cle: str = Field(primary_key=True, max_length=200)
    modification_numero: str = Field(max_length=30)
    action: str = Field(max_length=20)
    par: str = Field(max_length=200)
    # SHA-256 of the action's content (the update's argument).
    empreinte: str = Field(max_length=64)
    cree_le: datetime = Field(default_factory=maintenant, sa_type=UTCDateTime, nullable=False)


class Gestionnaire(SQLModel, table=True):
    """Who is a gestionnaire: the service's own list (by e-mail address), never a claim alone."""

    __tablename__ = "gestionnaire"

    id: int | None = Field(default=None, primary_key=True)
    courriel: str = Field(max_length=254, unique=True, index=True)
    ajoute_le: datetime = Field(default_factory=maintenant, sa_type=UTCDateTime, nullable=False)


class SessionPortail(SQLModel, table=True):
    """A portal session. The browser's cookie holds an opaque random identifier, whose SHA-256 is
    this row's key (the database holds no usable cookie); who is logged in, and the ID token
    the provider's logout asks for, stay here. Deleted at logout, when its gestionnaire is
    removed, and once expired (swept at each login)."""

    __tablename__ = "session_portail"

    id: str = Field(primary_key=True, max_length=64)
    sub: str = Field(max_length=200)
    # Normalized as the gestionnaires' list is: the list is joined on it at every page.
    courriel: str | None = Field(default=None, max_length=254, index=True)
    siret: str | None = Field(default=None, max_length=14)
    prenom: str | None = Field(default=None, max_length=200)
    nom_usage: str | None = Field(default=None, max_length=200)
    id_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # The forms' anti-CSRF token: random, of this session alone.
    csrf: str = Field(max_length=64)
    cree_le: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Written at most once a minute; expire_le follows it (inactivity, within the maximum duration).
    vu_le: datetime = Field(sa_type=UTCDateTime, nullable=False)
    expire_le: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class Purge(SQLModel, table=True):
    """The trace of one request's purge: what was erased, counted, never the data itself."""

    __tablename__ = "purge"

    id: int | None = Field(default=None, primary_key=True)
    demande_numero: str = Field(max_length=20, index=True)
    # The request's last closing (its last status change back to `en_cours`, or its import).
    derniere_cloture_le: datetime = Field(sa_type=UTCDateTime, nullable=False)
    purgee_le: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # The retention period in force (ISO 8601), as the deployer set it that day.
    duree_conservation: str = Field(max_length=40)
    modifications: int
    courriels: int
    historiques: int
    pieces: int
    octets: int = Field(sa_type=BigInteger)


class Signalement(SQLModel, table=True):
    """An error or omission the operator reports on its request while it is « en cours » (the
    guide's second way into a modification): what is wrong, which expected items; then the
    gestionnaire's outcome, a modification opened from it or an answer that none is needed."""

    __tablename__ = "signalement"

    id: int | None = Field(default=None, primary_key=True)
    demande_id: int = Field(foreign_key="demande.id", index=True)
    # nouveau, modification_ouverte or sans_suite
    statut: str = Field(default="nouveau", max_length=30, index=True)
    description: str = Field(sa_column=Column(Text, nullable=False))
    champs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    par: str = Field(max_length=200)
    cree_le: datetime = Field(sa_type=UTCDateTime, nullable=False)
    traite_par: str | None = Field(default=None, max_length=200)
    traite_le: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    # The gestionnaire's answer when no modification is needed (sent to the operator).
    reponse: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    modification_id: int | None = Field(default=None, foreign_key="modification.id")
