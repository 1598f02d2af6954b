"""Balance requests: import, lookup (scoped to an operator's SIRET), listing."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.db import on_rollback
from modif_solde.models.enums import StatutDemande
from modif_solde.models.regles import erreurs_en_francais
from modif_solde.models.schemas import DemandeImport
from modif_solde.models.tables import Demande, Historique, Operateur, Piece
from modif_solde.models.types import maintenant
from modif_solde.services.erreurs import Conflit, DonneesInvalides, Introuvable
from modif_solde.services.stockage import Stockage


def en_centimes(montant: Decimal) -> int:
    return int((montant * 100).to_integral_exact())


def lire_import(brut: bytes | str | dict[str, Any]) -> DemandeImport:
    """Parse and check an import document; every broken rule is reported at once."""
    try:
        donnees = json.loads(brut) if isinstance(brut, bytes | str) else brut
    except (ValueError, UnicodeDecodeError):
        raise DonneesInvalides(
            "Le fichier d'import n'est pas un JSON valide.",
            [{"champ": "corps", "message": "Le document n'est pas un JSON valide."}],
        ) from None
    try:
        return DemandeImport.model_validate(donnees)
    except ValidationError as exc:
        erreurs = erreurs_en_francais(exc)
        raise DonneesInvalides(f"La demande ne respecte pas {len(erreurs)} règle(s).", erreurs) from None


def refus_numero_pris(numero: str) -> Conflit:
    """The same words whether the number is the importer's own or another operator's: the
    answer never tells whose it is."""
    return Conflit(f"Le numéro de demande {numero} ne peut pas être importé : il est déjà enregistré.")


async def _operateur_id(session: AsyncSession, siret: str, identite: dict[str, str], le: datetime) -> int:
    """The SIRET's row, created if new. INSERT … ON CONFLICT DO NOTHING: two imports of a new
    SIRET at once both get the one row (the second waits for the first, never a duplicate-key
    error). An existing row is left as it is: each request carries its own identity."""
    dialecte = session.get_bind().dialect.name
    inserer = postgresql_insert if dialecte == "postgresql" else sqlite_insert
    await session.exec(
        inserer(Operateur)
        .values(siret=siret, cree_le=le, **identite)
        .on_conflict_do_nothing(index_elements=["siret"])
    )
    operateur_id = (await session.exec(select(Operateur.id).where(Operateur.siret == siret))).one()
    assert operateur_id is not None
    return operateur_id


async def importer_demande(
    session: AsyncSession, stockage: Stockage, donnees: DemandeImport, le: datetime | None = None
) -> Demande:
    """Create the request (with the operator's identity as filed), its operator's SIRET row if
    new, and its documents; version 1. A number already recorded is refused (Conflit), also
    when another import of it commits first."""
    le = le or maintenant()
    existante = (await session.exec(select(Demande.id).where(Demande.numero == donnees.numero))).first()
    if existante is not None:
        raise refus_numero_pris(donnees.numero)

    op = donnees.operateur
    identite = {
        "numero_ans": op.numero_ans,
        "denomination": op.denomination,
        "adresse_ligne": op.adresse.ligne,
        "code_postal": op.adresse.code_postal,
        "commune": op.adresse.commune,
        "courriel": op.courriel,
    }
    operateur_id = await _operateur_id(session, op.siret, identite, le)

    info, montants, banque = donnees.informations, donnees.montants, donnees.coordonnees_bancaires
    demande = Demande(
        numero=donnees.numero,
        statut=StatutDemande.EN_COURS,
        statut_modifie_le=le,
        date_depot=donnees.date_depot,
        operateur_id=operateur_id,
        operateur_numero_ans=op.numero_ans,
        operateur_denomination=op.denomination,
        operateur_adresse_ligne=op.adresse.ligne,
        operateur_code_postal=op.adresse.code_postal,
        operateur_commune=op.adresse.commune,
        operateur_courriel=op.courriel,
        dsr=donnees.dsr,
        contact_support_nom=info.contact_support_nom,
        contact_support_telephone=info.contact_support_telephone,
        contact_support_courriel=info.contact_support_courriel,
        site_documentation_url=info.site_documentation_url,
        bal_applicatives=donnees.bal.applicatives,
        bal_organisationnelles=donnees.bal.organisationnelles,
        bal_nominatives=donnees.bal.nominatives,
        avance_centimes=en_centimes(montants.avance),
        engagement_solde_centimes=en_centimes(montants.engagement_solde),
        solde_centimes=en_centimes(montants.solde),
        titulaire=banque.titulaire,
        iban=banque.iban,
        bic=banque.bic,
        version=1,
        importee_le=le,
    )
    session.add(demande)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Another import of this number committed after our check (PostgreSQL waits for it at
        # the insert, then reports the unique key); nothing of ours is written yet.
        if _viole_numero_unique(exc):
            raise refus_numero_pris(donnees.numero) from None
        raise
    assert demande.id is not None

    for piece in donnees.pieces:
        fichier = await stockage.ecrire(piece.contenu_base64)
        # Files are written before the commit: a rolled-back import must not leave them.
        on_rollback(session, partial(stockage.supprimer, fichier.cle))
        session.add(
            Piece(
                demande_id=demande.id,
                type=piece.type,
                nom_fichier=piece.nom_fichier,
                taille=fichier.taille,
                sha256=fichier.sha256,
                cle_stockage=fichier.cle,
                definitive=True,
                ajoutee_le=le,
            )
        )
    session.add(
        Historique(
            demande_id=demande.id,
            version=1,
            champ="demande",
            nouvelle_valeur=f"Demande importée ({len(donnees.pieces)} pièce(s))",
            applique_le=le,
        )
    )
    await session.flush()
    return demande


def _viole_numero_unique(exc: IntegrityError) -> bool:
    texte = str(exc.orig)
    return "ix_demande_numero" in texte or "demande.numero" in texte


async def charger_demande(session: AsyncSession, numero: str, siret: str | None = None) -> Demande:
    """The request, or Introuvable; an operator's SIRET scopes the lookup (another's is
    answered as if it did not exist)."""
    requete = select(Demande).where(Demande.numero == numero)
    if siret is not None:
        requete = requete.join(Operateur).where(Operateur.siret == siret)
    demande = (await session.exec(requete)).first()
    if demande is None:
        raise Introuvable(f"La demande {numero} est introuvable.")
    return demande
