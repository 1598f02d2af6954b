"""A request with everything its pages show: `n` closed modifications (confirmed, each with
history rows, a document and e-mails, one of them internal), then an open one with a draft and a
document of its own. Written straight to the tables (the pages only read them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutEnvoi, StatutModification, TypeCourriel
from modif_solde.models.tables import Courriel, Historique, Modification, Piece
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.stockage import Stockage

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def _courriel(demande_id: int, modification_id: int, type_: TypeCourriel, cle: str, le: datetime) -> Courriel:
    return Courriel(
        demande_id=demande_id,
        modification_id=modification_id,
        type=type_,
        destinataire="contact@operateur.example",
        sujet=f"Sujet {cle} — é",
        corps_texte=f"Corps {cle}",
        corps_html=f"<p>Corps {cle}</p>",
        cle_idempotence=cle,
        message_id=f"<{cle}@test>",
        cree_le=le,
        envoye_le=le + timedelta(seconds=3),
        statut_envoi=StatutEnvoi.ENVOYE,
    )


async def creer_demande_riche(
    factory: SessionFactory, stockage: Stockage, seed: dict[str, Any], n: int = 1
) -> str:
    """The request's number; `n` closed modifications before the open one."""
    async with unit_of_work(factory) as session:
        demande = await importer_demande(session, stockage, lire_import(seed))
        assert demande.id is not None
        numero = demande.numero
        demande_id = demande.id
        for rang in range(1, n + 2):
            ouverte = rang == n + 1
            le = T0 + timedelta(days=30 * rang)
            modification = Modification(
                numero=f"{numero}M{rang}",
                demande_id=demande_id,
                rang=rang,
                commentaire=f"Commentaire {rang}\nsur deux lignes",
                champs_attendus=["contact_support_telephone", "site_documentation_url"],
                statut=StatutModification.OUVERTE if ouverte else StatutModification.CONFIRMEE,
                brouillon={"contact_support_telephone": f"01 02 03 04 {rang:02d}"} if ouverte else {},
                ouverte_par="gestionnaire.test",
                ouverte_le=le,
                relance_le=le + timedelta(days=10),
                expire_le=le + timedelta(days=20),
                relance_envoyee_le=le + timedelta(days=10) if rang % 2 else None,
                cloturee_le=None if ouverte else le + timedelta(days=5),
                issue=None if ouverte else f"Confirmée par l'opérateur {rang}",
                version_appliquee=None if ouverte else rang + 1,
                brouillon_version=rang,
            )
            session.add(modification)
            await session.flush()
            assert modification.id is not None
            session.add(
                Piece(
                    demande_id=demande_id,
                    modification_id=modification.id,
                    type="AUTRE_S",
                    nom_fichier=f"piece-{rang}.pdf",
                    taille=1000 + rang,
                    sha256=f"{rang:064d}",
                    cle_stockage=f"{numero}-cle-{rang}",
                    definitive=not ouverte,
                    ajoutee_le=le + timedelta(days=1),
                )
            )
            session.add_all(
                [
                    _courriel(
                        demande_id, modification.id, TypeCourriel.INVITATION, f"{numero}-inv-{rang}", le
                    ),
                    _courriel(
                        demande_id,
                        modification.id,
                        TypeCourriel.CONFIRMATION_GESTIONNAIRES,
                        f"{numero}-cg-{rang}",
                        le + timedelta(days=5),
                    ),
                ]
            )
            if not ouverte:
                for champ, ancienne, nouvelle in [
                    ("informations.contact_support_telephone", f"ancien {rang}", f"nouveau {rang}"),
                    ("informations.contact_support_nom", None, f"Nom {rang}"),
                    ("pieces", None, f"piece-{rang}.pdf"),
                ]:
                    session.add(
                        Historique(
                            demande_id=demande_id,
                            version=rang + 1,
                            modification_id=modification.id,
                            champ=champ,
                            ancienne_valeur=ancienne,
                            nouvelle_valeur=nouvelle,
                            applique_le=le + timedelta(days=5),
                        )
                    )
        demande.version = n + 1
        demande.statut = StatutDemande.A_MODIFIER
        session.add(demande)
    return numero
