"""A document of type AUTRE_S is shown as `AUTRE_S` everywhere: request page, e-mails, history."""

from __future__ import annotations

from sqlmodel import select

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande, Historique
from modif_solde.services import envoi, lecture
from modif_solde.services import modifications as svc
from modif_solde.services.stockage import Stockage
from tests.services.test_modifications import Echeances, flux, ouverture


async def test_autre_s_sans_numero_de_demande_partout(
    factory: SessionFactory, stockage: Stockage, demande: Demande, echeances: Echeances, pdf: bytes
) -> None:
    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(echeances))
        await svc.ajouter_piece(session, stockage, "FINMSS009266M1", "AUTRE_S", "a.pdf", flux(pdf), 1 << 20)
        await svc.ajouter_piece(
            session, stockage, "FINMSS009266M1", "MSS_GUIDE_PDF_API", "b.pdf", flux(pdf), 1 << 20
        )
        await svc.confirmer(session, "FINMSS009266M1", echeances[0])
    async with factory() as session:
        page = await lecture.page_demande(session, demande)
        modification = await svc.charger_modification(session, "FINMSS009266M1")
        contexte = await envoi.contexte(session, modification, "https://portail.example")
        lignes = (
            await session.exec(select(Historique.nouvelle_valeur).where(Historique.champ == "pieces"))
        ).all()
    affiches = {(p.nom_fichier, p.type_affiche) for p in page.pieces}
    assert ("a.pdf", "AUTRE_S") in affiches
    assert ("b.pdf", "MSS_GUIDE_PDF_API_FINMSS009266") in affiches
    # The seed's own AUTRE_S document, imported.
    assert {t for _, t in affiches if t.startswith("AUTRE_S")} == {"AUTRE_S"}
    assert sorted(p["type"] for p in contexte.pieces_ajoutees) == [
        "AUTRE_S",
        "MSS_GUIDE_PDF_API_FINMSS009266",
    ]
    assert sorted(lignes) == ["AUTRE_S : a.pdf", "MSS_GUIDE_PDF_API_FINMSS009266 : b.pdf"]
