"""What the API answers: the request page, the modification, lists (read models)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class Adresse(BaseModel):
    ligne: str
    code_postal: str
    commune: str


class OperateurVue(BaseModel):
    siret: str
    numero_ans: str
    denomination: str
    adresse: Adresse


class Informations(BaseModel):
    contact_support_nom: str | None
    contact_support_telephone: str
    contact_support_courriel: str
    site_documentation_url: str


class Bal(BaseModel):
    applicatives: int
    organisationnelles: int
    nominatives: int


class Montant(BaseModel):
    valeur: str = Field(description="Décimal en chaîne, point décimal", examples=["65254.97"])
    affichage: str = Field(description="Format français", examples=["65 254,97 €"])


class Montants(BaseModel):
    avance: Montant
    engagement_solde: Montant
    solde: Montant


class CoordonneesBancaires(BaseModel):
    titulaire: str
    iban_masque: str = Field(examples=["FR76 •••• •••• •••• •••• •••0 189"])
    bic: str


class PieceVue(BaseModel):
    id: str
    type: str
    type_affiche: str = Field(examples=["MSS_RESU_TEST_TECH_FINMSS009266"])
    nom_fichier: str
    taille: int
    sha256: str
    ajoutee_le: datetime
    origine: str = Field(description="« import » ou le numéro de la modification qui l'a ajoutée")
    definitive: bool = Field(
        description="Faux tant qu'elle n'est que dans le brouillon d'une modification ouverte"
    )
    supprimable: bool
    url: str


class Changement(BaseModel):
    champ: str
    valeur_actuelle: str | None
    nouvelle_valeur: str | None


class ModificationVue(BaseModel):
    numero: str
    demande_numero: str
    statut: str
    commentaire: str
    champs_attendus: list[str]
    ouverte_par: str | None = Field(
        description="Le gestionnaire qui l'a ouverte ; pour les gestionnaires seulement (null pour un opérateur)"
    )
    ouverte_le: datetime
    relance_le: datetime
    expire_le: datetime
    relance_envoyee_le: datetime | None
    cloturee_le: datetime | None
    issue: str | None = Field(
        description="L'issue de la modification close : telle qu'enregistrée pour un gestionnaire (qui, et le motif d'un retrait), une phrase par statut pour un opérateur"
    )
    version_appliquee: int | None
    brouillon_version: int = Field(
        description="La version du brouillon (son ETag, sans guillemets) : changée par chaque modification du brouillon ou de ses pièces"
    )
    changements: list[Changement]
    pieces_ajoutees: list[PieceVue]


class ModificationResume(BaseModel):
    numero: str
    statut: str
    relance_le: datetime
    expire_le: datetime
    relance_envoyee: bool


class LigneHistorique(BaseModel):
    version: int
    champ: str
    ancienne_valeur: str | None
    nouvelle_valeur: str | None
    applique_le: datetime
    modification: str | None


class CourrielVue(BaseModel):
    id: int
    type: str
    destinataire: str
    sujet: str
    cree_le: datetime
    envoye_le: datetime | None
    modification: str | None
    corps_texte: str
    corps_html: str
    statut_envoi: str = "en_attente"  # en_attente, envoye or echec
    erreur_envoi: str | None = None  # the SMTP server's answer when it refused


_SUIVANT = "Le curseur de la page suivante (à passer en `curseur`), null à la dernière page"


class PageCourriels(BaseModel):
    elements: list[CourrielVue]
    suivant: str | None = Field(description=_SUIVANT)


class PageHistorique(BaseModel):
    elements: list[LigneHistorique]
    suivant: str | None = Field(description=_SUIVANT)


class DemandeResume(BaseModel):
    numero: str
    type: str
    statut: str
    statut_modifie_le: datetime
    date_depot: date
    operateur: OperateurVue
    modification_ouverte: ModificationResume | None


class ListeDemandes(BaseModel):
    total: int
    demandes: list[DemandeResume]


class DemandePage(BaseModel):
    numero: str
    type: str
    statut: str
    statut_modifie_le: datetime
    date_depot: date
    operateur: OperateurVue
    dsr: str
    informations: Informations
    bal: Bal
    montants: Montants
    coordonnees_bancaires: CoordonneesBancaires
    pieces: list[PieceVue]
    version: int
    historique: PageHistorique = Field(description="La première page de l'historique")
    courriels: PageCourriels = Field(description="La première page du journal des courriels")
    modification_ouverte: ModificationVue | None
    purgee_le: datetime | None = Field(
        default=None,
        description="Quand, la durée de conservation passée, ses données personnelles, les corps de ses courriels et ses pièces ont été supprimés ; null sinon",
    )
