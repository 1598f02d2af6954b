"""Import of balance requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from sqlmodel import select

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande
from modif_solde.models.tables import Demande, Historique, Operateur, Piece
from modif_solde.services.demandes import (
    charger_demande,
    importer_demande,
    lire_import,
    lister_demandes,
)
from modif_solde.services.erreurs import Conflit, DonneesInvalides, Introuvable
from modif_solde.services.stockage import Stockage


async def test_l_exemple_s_importe_tel_quel(
    factory: SessionFactory, stockage: Stockage, seed: dict[str, Any]
) -> None:
    async with unit_of_work(factory) as session:
        await importer_demande(session, stockage, lire_import(seed))
    async with factory() as session:
        demande = await charger_demande(session, "FINMSS009266")
        operateur = await session.get_one(Operateur, demande.operateur_id)
        pieces = (await session.exec(select(Piece).where(Piece.demande_id == demande.id))).all()
        historique = (await session.exec(select(Historique))).all()
    assert demande.statut == StatutDemande.EN_COURS
    assert (demande.avance_centimes, demande.engagement_solde_centimes, demande.solde_centimes) == (
        666667,
        6525497,
        5858830,
    )
    assert (demande.bal_applicatives, demande.bal_organisationnelles, demande.bal_nominatives) == (
        1000,
        10,
        10,
    )
    assert demande.site_documentation_url == "https://lien_site_web.fr"
    assert demande.contact_support_telephone == "06 00 00 00 00"
    assert demande.date_depot.isoformat() == "2023-06-05"
    assert (operateur.siret, operateur.denomination, operateur.commune) == (
        "50961588600025",
        "SCI VOITURE",
        "AMIENS",
    )
    assert sorted(p.type for p in pieces) == [
        "AUTRE_S",
        "MSS_GUIDE_PDF_API",
        "MSS_RESU_TEST_TECH",
        "decision_attribution",
    ]
    contenu = base64.b64decode(seed["pieces"][0]["contenu_base64"])
    premiere = next(p for p in pieces if p.nom_fichier == "capture-ecran-au-depot.pdf")
    assert premiere.sha256 == hashlib.sha256(contenu).hexdigest()
    assert premiere.taille == len(contenu)
    # Stored under a generated key, never under the user's file name.
    assert stockage.lire(premiere.cle_stockage) == contenu
    assert "capture" not in str(stockage.chemin(premiere.cle_stockage))
    assert [(h.version, h.champ) for h in historique] == [(1, "demande")]


async def test_meme_numero_deux_fois_refuse(
    factory: SessionFactory, stockage: Stockage, demande: Demande, seed: dict[str, Any]
) -> None:
    fichiers_avant = sorted(stockage.racine.rglob("*"))
    with pytest.raises(Conflit, match="existe déjà"):
        async with unit_of_work(factory) as session:
            await importer_demande(session, stockage, lire_import(seed))
    assert sorted(stockage.racine.rglob("*")) == fichiers_avant


@pytest.mark.parametrize(
    ("chemin", "valeur", "champ"),
    [
        (
            ("pieces", 0, "contenu_base64"),
            base64.b64encode(b"MZ\x90\x00 pas un pdf").decode(),
            "pieces.0.contenu_base64",
        ),
        (("pieces", 1, "contenu_base64"), "@@pas du base64@@", "pieces.1.contenu_base64"),
        (("pieces", 2, "type"), "../etc/passwd", "pieces.2.type"),
        (("numero",), "FINMSS00926", "numero"),
        (("date_depot",), "05/06/2023", "date_depot"),
        (("operateur", "adresse", "code_postal"), "8002", "operateur.adresse.code_postal"),
    ],
)
async def test_import_refuse_sans_rien_ecrire(
    factory: SessionFactory,
    stockage: Stockage,
    donnees: dict[str, Any],
    chemin: tuple[Any, ...],
    valeur: Any,
    champ: str,
) -> None:
    cible = donnees
    for cle in chemin[:-1]:
        cible = cible[cle]
    cible[chemin[-1]] = valeur
    with pytest.raises(DonneesInvalides) as exc:
        lire_import(donnees)
    assert [e["champ"] for e in exc.value.erreurs] == [champ]
    async with factory() as session:
        assert (await session.exec(select(Demande))).all() == []


async def test_piece_trop_grande_refusee(donnees: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from modif_solde.config import get_settings

    monkeypatch.setenv("MODIF_SOLDE_PIECE_TAILLE_MAX", "100")
    get_settings.cache_clear()
    try:
        with pytest.raises(DonneesInvalides) as exc:
            lire_import(donnees)
    finally:
        get_settings.cache_clear()
    assert {e["champ"] for e in exc.value.erreurs} == {f"pieces.{i}.contenu_base64" for i in range(4)}
    assert "taille maximale" in exc.value.erreurs[0]["message"]


def test_json_illisible() -> None:
    with pytest.raises(DonneesInvalides) as exc:
        lire_import(b"{pas du json")
    assert exc.value.erreurs == [{"champ": "corps", "message": "Le document n'est pas un JSON valide."}]


def test_nom_de_fichier_reduit_a_son_dernier_composant(donnees: dict[str, Any]) -> None:
    donnees["pieces"][0]["nom_fichier"] = "../../etc/passwd.pdf"
    donnees["pieces"][1]["nom_fichier"] = "C:\\Users\\x\\guide.pdf"
    demande = lire_import(donnees)
    assert [p.nom_fichier for p in demande.pieces[:2]] == ["passwd.pdf", "guide.pdf"]


async def test_un_operateur_ne_voit_que_ses_demandes(factory: SessionFactory, demande: Demande) -> None:
    async with factory() as session:
        assert (await charger_demande(session, "FINMSS009266", siret="50961588600025")).id == demande.id
        with pytest.raises(Introuvable):
            await charger_demande(session, "FINMSS009266", siret="73282932000074")
        liste, total = await lister_demandes(session, statut=StatutDemande.EN_COURS, siret="50961588600025")
        assert (total, [d.numero for d in liste]) == (1, ["FINMSS009266"])
        assert (await lister_demandes(session, siret="73282932000074"))[1] == 0
        assert (await lister_demandes(session, statut=StatutDemande.A_MODIFIER))[1] == 0
