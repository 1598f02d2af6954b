"""Import of balance requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, text
from sqlmodel import select
from temporalio.testing import ActivityEnvironment

from modif_solde.activities.modification import ActivitesModification
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutDemande, TypeCourriel
from modif_solde.models.tables import Courriel, Demande, Historique, Operateur, Piece
from modif_solde.services import envoi, lecture
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import (
    charger_demande,
    importer_demande,
    lire_import,
)
from modif_solde.services.erreurs import Conflit, DonneesInvalides, Introuvable
from modif_solde.services.stockage import Stockage
from modif_solde.workflows.contrat import CourrielActivite
from tests.services.test_modifications import Echeances, ouverture
from tests.workflows.conftest import ServeurSmtp, activites, serveur_smtp, smtp  # noqa: F401

AUTRE_SIRET = "73282932000074"
REFUS_NUMERO_PRIS = "Le numéro de demande FINMSS009266 ne peut pas être importé : il est déjà enregistré."


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
    with pytest.raises(Conflit, match="déjà enregistré"):
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
        vue = await lecture.liste(session, StatutDemande.EN_COURS, "50961588600025", 100, 0)
        assert (vue.total, [d.numero for d in vue.demandes]) == (1, ["FINMSS009266"])
        assert (await lecture.liste(session, None, "73282932000074", 100, 0)).total == 0
        assert (await lecture.liste(session, StatutDemande.A_MODIFIER, None, 100, 0)).total == 0


def fichiers(stockage: Stockage) -> set[Path]:
    return {f for f in stockage.racine.rglob("*") if f.is_file()}


def _autre_identite(seed: dict[str, Any], numero: str, siret: str = "50961588600025") -> dict[str, Any]:
    """Another request of the same (or another) SIRET, filed under another name and address."""
    donnees = copy.deepcopy(seed)
    donnees["numero"] = numero
    donnees["operateur"] = {
        "siret": siret,
        "numero_ans": "pbrMSS0099",
        "denomination": "SCI VOITURE RENOMMÉE",
        "adresse": {"ligne": "1 rue Neuve", "code_postal": "75001", "commune": "PARIS"},
        "courriel": "nouveau@sci-voiture.example",
    }
    donnees["pieces"] = donnees["pieces"][:1]
    return donnees


async def test_un_import_ne_reecrit_pas_l_identite_des_autres_demandes(
    factory: SessionFactory,
    stockage: Stockage,
    demande: Demande,
    seed: dict[str, Any],
    echeances: Echeances,
    activites: ActivitesModification,  # noqa: F811
    smtp: ServeurSmtp,  # noqa: F811
) -> None:
    """Request A, under review, keeps the identity it was filed with; its e-mails still go to
    the address it was filed with, whatever a later import of the same SIRET says."""
    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(echeances))
    async with factory() as session:
        avant = (await lecture.page_demande(session, demande)).operateur
    async with unit_of_work(factory) as session:
        await importer_demande(session, stockage, lire_import(_autre_identite(seed, "FINMSS009300")))

    await ActivityEnvironment().run(
        activites.envoyer_courriel,
        CourrielActivite(modification_numero="FINMSS009266M1", type=TypeCourriel.INVITATION),
    )
    async with factory() as session:
        page_a = await lecture.page_demande(session, demande)
        page_b = await lecture.page_demande(session, await charger_demande(session, "FINMSS009300"))
        contexte = await envoi.contexte(
            session, await svc.charger_modification(session, "FINMSS009266M1"), "https://portail.example"
        )
        liste = await lecture.liste(session, None, None, 10, 0)
        (courriel,) = (await session.exec(select(Courriel))).all()
    assert page_a.operateur == avant
    assert (page_a.operateur.denomination, page_a.operateur.adresse.commune) == ("SCI VOITURE", "AMIENS")
    assert page_a.operateur.numero_ans == "pbrMSS0023"
    assert (page_b.operateur.denomination, page_b.operateur.adresse.commune) == (
        "SCI VOITURE RENOMMÉE",
        "PARIS",
    )
    assert contexte.denomination == "SCI VOITURE"
    assert {d.numero: d.operateur.denomination for d in liste.demandes} == {
        "FINMSS009266": "SCI VOITURE",
        "FINMSS009300": "SCI VOITURE RENOMMÉE",
    }
    assert courriel.destinataire == "operateur@sci-voiture.example"
    (recu,) = smtp.boite.messages
    assert recu["To"] == "operateur@sci-voiture.example"


async def test_le_meme_numero_est_refuse_dans_les_memes_mots_quel_qu_en_soit_le_titulaire(
    factory: SessionFactory, stockage: Stockage, demande: Demande, seed: dict[str, Any]
) -> None:
    """The refusal never tells whether the number is the importer's own or someone else's."""
    messages = []
    for donnees in (seed, _autre_identite(seed, "FINMSS009266", siret=AUTRE_SIRET)):
        with pytest.raises(Conflit) as exc:
            async with unit_of_work(factory) as session:
                await importer_demande(session, stockage, lire_import(donnees))
        messages.append((type(exc.value), exc.value.message, exc.value.erreurs))
    assert messages[0] == messages[1] == (Conflit, REFUS_NUMERO_PRIS, [])
    assert "SCI VOITURE" not in REFUS_NUMERO_PRIS and "50961588600025" not in REFUS_NUMERO_PRIS


async def _attendre_un_verrou(factory: SessionFactory) -> None:
    """PostgreSQL: until another transaction waits on a lock (the second import, blocked
    behind the first one's uncommitted insert). One transaction per look: PostgreSQL keeps
    pg_stat_activity as it was at a transaction's first read of it."""
    requete = (
        select(func.count())
        .select_from(text("pg_stat_activity"))
        .where(text("datname = current_database() AND wait_event_type = 'Lock'"))
    )
    async with asyncio.timeout(30):
        # Another connection's state: there is no event to wait on, only the server to ask.
        while True:
            async with factory() as session:
                if (await session.exec(requete)).one():
                    return
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("siret", ["50961588600025", AUTRE_SIRET], ids=["siret-connu", "siret-nouveau"])
async def test_deux_imports_simultanes_d_un_numero_un_seul_gagne(
    factory: SessionFactory, stockage: Stockage, seed: dict[str, Any], siret: str
) -> None:
    """Two transactions import the same number at once: both pass the first check, the first
    commits, the second is refused like any repeated import (never a database error), and
    the files written for it are gone."""
    async with unit_of_work(factory) as session:  # the SIRET "connu" has a request already
        await importer_demande(session, stockage, lire_import(_autre_identite(seed, "FINMSS009301")))
    fichiers_avant = fichiers(stockage)
    donnees = lire_import(_autre_identite(seed, "FINMSS009302", siret=siret))
    premier_ecrit = asyncio.Event()
    liberer = asyncio.Event()

    async def premier() -> None:
        async with unit_of_work(factory) as session:
            await importer_demande(session, stockage, donnees)
            premier_ecrit.set()
            await liberer.wait()

    async def second() -> None:
        await premier_ecrit.wait()
        async with unit_of_work(factory) as session:
            await importer_demande(session, stockage, donnees)

    async def arbitre() -> None:
        await premier_ecrit.wait()
        try:
            if factory.kw["bind"].dialect.name == "postgresql":
                await _attendre_un_verrou(factory)
        finally:
            liberer.set()

    resultats = await asyncio.gather(premier(), second(), arbitre(), return_exceptions=True)
    assert resultats[0] is None and resultats[2] is None
    assert isinstance(resultats[1], Conflit), resultats[1]
    assert resultats[1].message == REFUS_NUMERO_PRIS.replace("FINMSS009266", "FINMSS009302")
    async with factory() as session:
        pieces = (
            await session.exec(select(Piece).join(Demande).where(Demande.numero == "FINMSS009302"))
        ).all()
        operateurs = (await session.exec(select(Operateur).where(Operateur.siret == siret))).all()
    assert len(pieces) == 1 and len(operateurs) == 1
    assert fichiers(stockage) - fichiers_avant == {stockage.chemin(pieces[0].cle_stockage)}


async def test_imports_simultanes_en_rafale(
    factory: SessionFactory, stockage: Stockage, seed: dict[str, Any]
) -> None:
    """The same number imported by five sessions at once, on a new SIRET: one 201, four refusals."""
    donnees = lire_import(_autre_identite(seed, "FINMSS009303", siret=AUTRE_SIRET))

    async def importer() -> str:
        async with unit_of_work(factory) as session:
            return (await importer_demande(session, stockage, donnees)).numero

    resultats = await asyncio.gather(*(importer() for _ in range(5)), return_exceptions=True)
    assert resultats.count("FINMSS009303") == 1
    assert [type(r) for r in resultats if r != "FINMSS009303"] == [Conflit] * 4
    async with factory() as session:
        (piece,) = (await session.exec(select(Piece))).all()
    assert fichiers(stockage) == {stockage.chemin(piece.cle_stockage)}


async def test_la_liste_compte_et_pagine_par_siret_et_par_statut(
    factory: SessionFactory, stockage: Stockage, seed: dict[str, Any], echeances: Echeances
) -> None:
    """The count beside each page is the number found with the same filters, whatever the page;
    a page past the end is empty and still gives it."""
    autre = "73282932000074"
    async with unit_of_work(factory) as session:
        await importer_demande(session, stockage, lire_import(seed))
        for i in range(4):
            await importer_demande(session, stockage, lire_import(_autre_identite(seed, f"FINMSS00930{i}")))
        for i in range(2):
            donnees = _autre_identite(seed, f"FINMSS00940{i}", siret=autre)
            await importer_demande(session, stockage, lire_import(donnees))
    async with unit_of_work(factory) as session:
        await svc.ouvrir(session, ouverture(echeances))

    async def lister(statut: StatutDemande | None, siret: str | None, limite: int, decalage: int) -> Any:
        async with factory() as session:
            return await lecture.liste(session, statut, siret, limite, decalage)

    tous = await lister(None, None, 3, 0)
    assert tous.total == 7 and [d.numero for d in tous.demandes] == [
        "FINMSS009266",
        "FINMSS009300",
        "FINMSS009301",
    ]
    fin = await lister(None, None, 3, 6)
    assert fin.total == 7 and [d.numero for d in fin.demandes] == ["FINMSS009401"]
    assert (await lister(None, None, 3, 10)).total == 7
    assert (await lister(None, None, 3, 10)).demandes == []

    assert (await lister(None, "50961588600025", 10, 0)).total == 5
    du_second = await lister(None, autre, 1, 1)
    assert du_second.total == 2 and [d.numero for d in du_second.demandes] == ["FINMSS009401"]
    assert du_second.demandes[0].operateur.siret == autre

    a_modifier = await lister(StatutDemande.A_MODIFIER, None, 10, 0)
    assert a_modifier.total == 1
    (ligne,) = a_modifier.demandes
    assert ligne.numero == "FINMSS009266"
    assert ligne.modification_ouverte is not None and ligne.modification_ouverte.numero == "FINMSS009266M1"
    assert (await lister(StatutDemande.A_MODIFIER, autre, 10, 0)).total == 0
    assert (await lister(StatutDemande.EN_COURS, None, 10, 0)).total == 6
