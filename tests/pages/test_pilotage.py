"""The steering dashboard and the queue's export over HTTP: figures and their links for a
gestionnaire, the queue a link leads to, the CSV and ODS downloads; refused to an operator."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import AsyncIterator
from xml.etree import ElementTree

import httpx
import pytest
from fastapi import FastAPI

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.services import gestionnaires
from modif_solde.services.export import COLONNES
from tests.pages.conftest import COURRIEL_GESTIONNAIRE, GESTIONNAIRE, OPERATEUR, se_connecter
from tests.pilotage import jeu

MARS = "du=2026-03-01&au=2026-03-31"
NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
}


@pytest.fixture
async def portail(appli_lecture: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=appli_lecture, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def gestionnaire(
    portail: httpx.AsyncClient, factory: SessionFactory, demande: Demande
) -> httpx.AsyncClient:
    await jeu.construire(factory, demande)
    async with unit_of_work(factory) as session:
        await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
    await se_connecter(portail, GESTIONNAIRE, retour="/pilotage")
    return portail


async def test_le_tableau_de_bord_donne_chaque_chiffre_et_son_lien(gestionnaire: httpx.AsyncClient) -> None:
    page = await gestionnaire.get(f"/pilotage?{MARS}")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'href="/pilotage" aria-current="page">Pilotage' in html
    # Each figure: an SVG with its title, inside a figure with its caption, and a table.
    assert html.count("<figure") == html.count("<figcaption") == html.count("<svg") == 5
    assert html.count("<table>") == 5
    liens = dict(re.findall(r'<a href="(/demandes\?[^"]+)">([^<]+)<span class="fr-sr-only">', html))
    assert liens["/demandes?tour=confirmee&amp;du=2026-03-01&amp;au=2026-03-31"] == "2"
    assert liens["/demandes?tour=ouverte&amp;du=2026-03-01&amp;au=2026-03-31"] == "6"
    assert liens["/demandes?tour=reponse&amp;du=2026-03-01&amp;au=2026-03-31"] in {"8,5", "16,9"}
    assert liens["/demandes?courriel_echec=relance&amp;du=2026-03-01&amp;au=2026-03-31"] == "1"
    assert "(50,0 % après)" in html


async def test_un_lien_mene_a_la_file_filtree(gestionnaire: httpx.AsyncClient) -> None:
    file = await gestionnaire.get(f"/demandes?tour=retiree&{MARS}")
    assert file.status_code == 200
    assert "1 demande." in file.text and "FINMSS009300" in file.text and "FINMSS009266</a>" not in file.text
    assert "Depuis le pilotage : modifications retirées du 01/03/2026 au 31/03/2026" in file.text
    # Filtering further keeps the dashboard's filter; the export takes the same ones.
    assert '<input type="hidden" name="tour" value="retiree">' in file.text
    assert 'href="/demandes.csv?tour=retiree&amp;du=2026-03-01&amp;au=2026-03-31"' in file.text


async def test_une_periode_invalide_est_nommee(gestionnaire: httpx.AsyncClient) -> None:
    page = await gestionnaire.get("/pilotage?du=2026-03-10&au=2026-03-01")
    assert page.status_code == 422
    assert "Le champ « au » doit être le même jour que « du » ou après." in page.text


async def test_le_csv_s_ouvre_dans_un_tableur_francais(gestionnaire: httpx.AsyncClient) -> None:
    r = await gestionnaire.get("/demandes.csv")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"].startswith('attachment; filename="file-de-travail-')
    assert r.content.startswith(b"\xef\xbb\xbf")
    lignes = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert tuple(lignes[0]) == COLONNES
    par_numero = {ligne[0]: dict(zip(COLONNES, ligne, strict=True)) for ligne in lignes[1:]}
    # Open ones first, by deadline (overdue, 1 day, 15 days), then the others by number.
    assert [ligne[0] for ligne in lignes[1:]] == [
        "FINMSS009301", "FINMSS009302", "FINMSS009303", "FINMSS009266", "FINMSS009300",
    ]  # fmt: skip
    # Without an open one: its last round, its outcome and dates as jj/mm/aaaa.
    assert par_numero["FINMSS009300"] | {"Opérateur": ""} == {
        "Numéro": "FINMSS009300",
        "Opérateur": "",
        "SIRET": "50961588600025",
        "Statut": "En cours",
        "Statut depuis le": par_numero["FINMSS009300"]["Statut depuis le"],
        "Modification": "FINMSS009300M4",
        "Issue": "Confirmée",  # as the page says it
        "Ouverte le": "20/03/2026",
        "Échéance": "09/04/2026",
        "Jours restants": "",
        "Relancée": "Non",
        "Relance envoyée le": "",
        "Clôturée le": "01/04/2026",
    }
    assert re.fullmatch(r"\d\d/\d\d/\d{4}", par_numero["FINMSS009300"]["Statut depuis le"])
    assert par_numero["FINMSS009302"]["Jours restants"] == "1"
    assert par_numero["FINMSS009302"]["Issue"] == "Ouverte"


async def test_l_export_suit_les_filtres_de_la_file(gestionnaire: httpx.AsyncClient) -> None:
    r = await gestionnaire.get(f"/demandes.csv?tour=renoncee&{MARS}")
    numeros = [ligne.split(";")[0] for ligne in r.content.decode("utf-8-sig").splitlines()[1:]]
    assert numeros == ["FINMSS009266", "FINMSS009300"]
    assert (await gestionnaire.get("/demandes.csv?echeance_avant=hier")).status_code == 422


async def test_l_ods_est_un_tableur_opendocument(gestionnaire: httpx.AsyncClient) -> None:
    r = await gestionnaire.get(f"/demandes.ods?tour=renoncee&{MARS}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oasis.opendocument.spreadsheet"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    premier = archive.infolist()[0]
    assert (premier.filename, premier.compress_type) == ("mimetype", zipfile.ZIP_STORED)
    assert archive.read("mimetype") == b"application/vnd.oasis.opendocument.spreadsheet"
    assert b"content.xml" in archive.read("META-INF/manifest.xml")
    racine = ElementTree.fromstring(archive.read("content.xml"))  # noqa: S314 (our own output)
    rangees = racine.findall(".//table:table-row", NS)

    def textes(rangee: ElementTree.Element) -> list[str]:
        return ["".join(c.itertext()) for c in rangee.findall("table:table-cell", NS)]

    assert tuple(textes(rangees[0])) == COLONNES
    assert [textes(r)[0] for r in rangees[1:]] == ["FINMSS009266", "FINMSS009300"]
    # Dates are dates for the spreadsheet, shown jj/mm/aaaa (its last round: M4, confirmed on 1 April).
    cloture = rangees[2].findall("table:table-cell", NS)[COLONNES.index("Clôturée le")]
    assert cloture.get(f"{{{NS['office']}}}value-type") == "date"
    assert cloture.get(f"{{{NS['office']}}}date-value") == "2026-04-01"
    assert "".join(cloture.itertext()) == "01/04/2026"
    assert textes(rangees[2])[COLONNES.index("Issue")] == "Confirmée"


async def test_l_operateur_n_a_ni_le_tableau_de_bord_ni_l_export(
    portail: httpx.AsyncClient, demande: Demande
) -> None:
    await se_connecter(portail, OPERATEUR)
    for chemin in ("/pilotage", "/demandes.csv", "/demandes.ods"):
        r = await portail.get(chemin)
        assert r.status_code == 403, chemin
    assert 'href="/pilotage"' not in (await portail.get("/demandes")).text
