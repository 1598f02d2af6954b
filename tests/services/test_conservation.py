"""Retention (RGPD), on SQLite and PostgreSQL: a request closed for longer than the retention
period loses its personal data, its e-mails' bodies and its documents (rows and files); its
numbers, amounts and cycle dates stay, and a trace counts what went. A request still open, closed
too recently, or whose cycle still runs in Temporal is left."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, StatutModification
from modif_solde.models.tables import (
    Courriel,
    Demande,
    Historique,
    IdempotenceAction,
    Modification,
    Operateur,
    Piece,
    Purge,
)
from modif_solde.models.types import maintenant
from modif_solde.services import modifications as svc
from modif_solde.services.conservation import purger
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.erreurs import Conflit
from modif_solde.services.stockage import StockageDossier
from tests.services.test_modifications import Echeances, flux, ouverture

CONSERVATION = timedelta(days=365)


async def _vieillir(factory: SessionFactory, numero: str, jours: int) -> None:
    """As if the request's last closing had happened `jours` days ago."""
    async with unit_of_work(factory) as session:
        await session.exec(  # type: ignore[call-overload]
            update(Demande)
            .where(col(Demande.numero) == numero)
            .values(statut_modifie_le=maintenant() - timedelta(days=jours))
        )


@pytest.fixture
async def close(
    factory: SessionFactory, demande: Demande, echeances: Echeances, stockage: StockageDossier, pdf: bytes
) -> Modification:
    """The seed's request after a confirmed modification: a changed phone number in its history,
    a document added, an e-mail logged, a status line, an Idempotency-Key kept."""
    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(echeances))
    async with unit_of_work(factory) as session:
        await svc.mettre_a_jour_brouillon(
            session, "FINMSS009266M1", {"contact_support_telephone": "06 12 34 56 78"}
        )
        await svc.ajouter_piece(
            session, stockage, "FINMSS009266M1", "AUTRE_S", "attestation-durand.pdf", flux(pdf), 1 << 20
        )
    async with unit_of_work(factory) as session:
        cloture = await svc.confirmer(session, "FINMSS009266M1", maintenant())
        assert demande.id is not None
        session.add(
            Courriel(
                demande_id=demande.id,
                modification_id=cloture.modification.id,
                type="confirmation",
                destinataire="operateur@sci-voiture.example",
                sujet="Confirmation de la modification FINMSS009266M1",
                corps_texte="Bonjour Camille Durand, …",
                corps_html="<p>Bonjour Camille Durand, …</p>",
                cle_idempotence="FINMSS009266M1:confirmation",
                message_id="<FINMSS009266M1.confirmation@modif-solde.invalid>",
                erreur_envoi="550 boîte operateur@sci-voiture.example inconnue",
            )
        )
        # As `verifier --reparer` writes it: a status is not personal data.
        session.add(
            Historique(
                demande_id=demande.id,
                version=2,
                champ="statut",
                ancienne_valeur="a_modifier",
                nouvelle_valeur="en_cours",
            )
        )
        session.add(
            IdempotenceAction(
                cle="cle-1",
                modification_numero="FINMSS009266M1",
                action="confirmer",
                par="operateur.durand",
                empreinte="0" * 64,
            )
        )
        return cloture.modification


async def test_une_demande_close_depuis_la_duree_perd_ses_donnees_personnelles(
    factory: SessionFactory, close: Modification, stockage: StockageDossier
) -> None:
    async with factory() as session:
        cles = list((await session.exec(select(Piece.cle_stockage))).all())
    assert cles and all(stockage.chemin(c).exists() for c in cles)
    await _vieillir(factory, "FINMSS009266", 366)

    rapport = await purger(factory, stockage, CONSERVATION, en_cours=set())

    assert [p.numero for p in rapport.purgees] == ["FINMSS009266"] and rapport.reportees == []
    purgee = rapport.purgees[0]
    assert (purgee.modifications, purgee.courriels, purgee.pieces) == (1, 1, len(cles))
    assert not any(stockage.chemin(c).exists() for c in cles)
    async with factory() as session:
        demande = (await session.exec(select(Demande))).one()
        # Gone: whoever could be reached or identified.
        assert (
            demande.contact_support_nom,
            demande.contact_support_telephone,
            demande.contact_support_courriel,
        ) == (None, "", "")
        assert (demande.operateur_courriel, demande.titulaire, demande.iban, demande.bic) == ("", "", "", "")
        assert demande.purgee_le is not None
        # Kept: the funding file's record (number, company, amounts, status, dates).
        assert (demande.numero, demande.statut, demande.version) == (
            "FINMSS009266",
            StatutDemande.EN_COURS,
            2,
        )
        assert (demande.operateur_denomination, demande.solde_centimes) == ("SCI VOITURE", 5858830)
        assert demande.site_documentation_url == "https://lien_site_web.fr"
        modification = (await session.exec(select(Modification))).one()
        assert (
            modification.commentaire,
            modification.brouillon,
            modification.ouverte_par,
            modification.issue,
        ) == ("", {}, "", None)
        assert (modification.numero, modification.statut) == ("FINMSS009266M1", StatutModification.CONFIRMEE)
        assert modification.cloturee_le is not None and modification.champs_attendus == [
            "contact_support_telephone",
            "pieces",
        ]
        courriel = (await session.exec(select(Courriel))).one()
        assert (courriel.destinataire, courriel.corps_texte, courriel.corps_html, courriel.erreur_envoi) == (
            "",
            "",
            "",
            None,
        )
        assert courriel.type == "confirmation" and courriel.sujet.startswith("Confirmation")
        historique = (await session.exec(select(Historique))).all()
        # Which field changed, in which version, when: kept; the values: erased, but a status's.
        assert {h.champ for h in historique} == {
            "demande",
            "informations.contact_support_telephone",
            "pieces",
            "statut",
        }
        for ligne in historique:
            attendu = ("a_modifier", "en_cours") if ligne.champ == "statut" else (None, None)
            assert (ligne.ancienne_valeur, ligne.nouvelle_valeur) == attendu, ligne
        assert (await session.exec(select(Piece))).all() == []
        assert (await session.exec(select(IdempotenceAction))).all() == []
        assert (await session.exec(select(Operateur.courriel))).one() == ""
        trace = (await session.exec(select(Purge))).one()
        assert (trace.demande_numero, trace.duree_conservation) == ("FINMSS009266", "P365D")
        assert (trace.modifications, trace.courriels, trace.pieces, trace.octets) == (
            1,
            1,
            len(cles),
            purgee.octets,
        )
        assert trace.derniere_cloture_le < trace.purgee_le - CONSERVATION

    # A second run finds nothing; a new modification cannot be opened on what is left.
    assert (await purger(factory, stockage, CONSERVATION, en_cours=set())).purgees == []
    async with unit_of_work(factory) as session:
        with pytest.raises(Conflit, match=r"ont été supprimées le .* \(durée de conservation atteinte\)"):
            await svc.verifier_ouvrable(session, (await session.exec(select(Demande))).one())


async def test_ce_qui_n_est_pas_clos_depuis_la_duree_reste(
    factory: SessionFactory,
    close: Modification,
    stockage: StockageDossier,
    seed: dict[str, object],
    echeances: Echeances,
) -> None:
    # Closed, but not long enough ago.
    await _vieillir(factory, "FINMSS009266", 364)
    # Another request of the same operator, open (à modifier) for long: never purged while open.
    async with unit_of_work(factory) as session:
        await importer_demande(session, stockage, lire_import({**seed, "numero": "FINMSS000002"}))
    async with unit_of_work(factory) as session:
        await svc.ouvrir(
            session, replace(ouverture(echeances), demande_numero="FINMSS000002", numero="FINMSS000002M1")
        )
    await _vieillir(factory, "FINMSS000002", 1000)
    rapport = await purger(factory, stockage, CONSERVATION, en_cours=set())
    assert rapport.purgees == []
    async with factory() as session:
        assert all(d.purgee_le is None for d in (await session.exec(select(Demande))).all())


async def test_un_cycle_encore_en_cours_dans_temporal_reporte_la_purge(
    factory: SessionFactory, close: Modification, stockage: StockageDossier, seed: dict[str, object]
) -> None:
    """A closed cycle's workflow stays a moment to send its closing e-mails, which it logs."""
    async with unit_of_work(factory) as session:
        await importer_demande(session, stockage, lire_import({**seed, "numero": "FINMSS000003"}))
    await _vieillir(factory, "FINMSS009266", 400)
    await _vieillir(factory, "FINMSS000003", 400)
    rapport = await purger(factory, stockage, CONSERVATION, en_cours={"FINMSS009266M1"})
    assert [p.numero for p in rapport.purgees] == ["FINMSS000003"]
    assert rapport.reportees == [
        "demande FINMSS009266 : le cycle FINMSS009266M1 est encore en cours dans Temporal"
    ]
    async with factory() as session:
        demandes = {d.numero: d for d in (await session.exec(select(Demande))).all()}
        # The operator's e-mail stays while one of its requests keeps its data.
        assert (await session.exec(select(Operateur.courriel))).one() == "operateur@sci-voiture.example"
    assert demandes["FINMSS009266"].purgee_le is None and demandes["FINMSS000003"].purgee_le is not None
