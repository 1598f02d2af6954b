"""The operator's pages over HTTP (no browser): the modification page, its forms and refusals."""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from typing import Any

import httpx
import pytest

from modif_solde.api.auth import Role, emettre_jeton
from modif_solde.config import DEV_JWT_SECRET
from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.tables import Demande
from modif_solde.services import gestionnaires
from modif_solde.services import modifications as svc
from tests.pages.conftest import (
    AUTRE_OPERATEUR,
    COURRIEL_GESTIONNAIRE,
    GESTIONNAIRE,
    OPERATEUR,
    jeton_csrf,
    se_connecter,
    se_deconnecter,
)
from tests.workflows.conftest import Banc

MODIFICATION = "/modifications/FINMSS009266M1"
GESTION = {"Authorization": f"Bearer {emettre_jeton(DEV_JWT_SECRET, 'gestionnaire.test', Role.GESTIONNAIRE)}"}


async def ouvrir(portail: httpx.AsyncClient) -> None:
    r = await portail.post(
        "/api/v1/demandes/FINMSS009266/modifications",
        json={
            "commentaire": "Le téléphone ne correspond pas.",
            "champs": ["contact_support_telephone", "pieces"],
        },
        headers=GESTION,
    )
    assert r.status_code == 201, r.text


async def page_operateur(portail: httpx.AsyncClient) -> str:
    await ouvrir(portail)
    await se_connecter(portail, OPERATEUR, retour=MODIFICATION)
    page = await portail.get(MODIFICATION)
    assert page.status_code == 200, page.text
    return page.text


def texte(page: str) -> str:
    """What a reader sees: tags dropped, spaces collapsed."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page))).replace(" :", " :")


async def test_the_modification_page_shows_the_guide_s_blocks(
    portail: httpx.AsyncClient, demande: Demande
) -> None:
    brut = await page_operateur(portail)
    page = texte(brut)

    for mots in (
        "Modifier une demande de solde MSS",
        "Récapitulatif et commentaire du gestionnaire",
        "Commentaire du gestionnaire",
        "Le téléphone ne correspond pas.",
        "N° ASP de la demande : FINMSS009266M1",
        "Informations éditables",
        "Nom du contact support de l'opérateur",
        "BAL et montants",
        "65 254,97 €",
        "Déposer une pièce complémentaire",
        "Type de pièce complémentaire",
        "Fichier à ajouter",
        "Statut : A modifier",
    ):
        assert mots in page, mots
    assert 'href="/modifications/FINMSS009266M1/confirmer">Confirmer</a>' in brut
    assert ">Ne pas modifier</a>" in brut
    # No document is deletable before the operator adds one.
    assert 'action="/modifications/FINMSS009266M1/pieces/' not in brut


async def test_a_saved_value_is_shown_green_and_in_words(
    portail: httpx.AsyncClient, demande: Demande
) -> None:
    page = await page_operateur(portail)

    r = await portail.post(
        f"{MODIFICATION}/brouillon",
        data={
            "csrf": jeton_csrf(page),
            "contact_support_nom": "DUPONT Marie",
            "contact_support_telephone": "06 12 34 56 78",
            "contact_support_courriel": "mail@contact-support.fr",
            "site_documentation_url": "https://lien_site_web.fr",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == MODIFICATION
    apres = await portail.get(MODIFICATION)

    groupe = re.search(
        r'<div class="fr-input-group([^"]*)" id="groupe-contact_support_telephone">', apres.text
    )
    assert groupe and "fr-input-group--valid" in groupe.group(1)
    assert "Valeur modifiée. Valeur avant modification : 06 00 00 00 00" in texte(apres.text)
    assert "Modifications enregistrées" in texte(apres.text)


async def test_a_broken_rule_is_refused_beside_its_field_and_nothing_changes(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)

    r = await portail.post(
        f"{MODIFICATION}/brouillon",
        data={
            "csrf": jeton_csrf(page),
            "contact_support_nom": "",
            "contact_support_telephone": "06 12 34 56 78",
            "contact_support_courriel": "pas-une-adresse",
            "site_documentation_url": "https://lien_site_web.fr",
        },
    )

    assert r.status_code == 422
    corps = r.text
    assert "<title>Erreur : " in corps
    assert 'id="resume-erreurs"' in corps and 'href="#contact_support_courriel"' in corps
    champ = re.search(r'<input[^>]*id="contact_support_courriel"[^>]*>', corps, re.S)
    assert champ and 'aria-invalid="true"' in champ.group(0)
    assert 'aria-describedby="contact_support_courriel-messages"' in champ.group(0)
    assert 'value="pas-une-adresse"' in champ.group(0)
    assert 'id="contact_support_courriel-erreur"' in corps
    assert (
        "« Adresse mail du contact support de l&#39;opérateur » n&#39;est pas une adresse électronique valide"
        in corps
    )
    assert "/confirmer" not in corps
    async with unit_of_work(factory) as session:
        assert (await svc.charger_modification(session, "FINMSS009266M1")).brouillon == {}


async def test_a_form_without_its_csrf_token_changes_nothing(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory, pdf: bytes
) -> None:
    await page_operateur(portail)

    brouillon = await portail.post(
        f"{MODIFICATION}/brouillon", data={"contact_support_telephone": "0612345678"}
    )
    piece = await portail.post(
        f"{MODIFICATION}/pieces", data={"type": "AUTRE_S"}, files={"fichier": ("a.pdf", pdf)}
    )
    confirmation = await portail.post(f"{MODIFICATION}/confirmer", data={"csrf": "faux"})

    assert [brouillon.status_code, piece.status_code, confirmation.status_code] == [403, 403, 403]
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, "FINMSS009266M1")
        assert modification.brouillon == {} and modification.statut == "ouverte"
        assert await svc.pieces_ajoutees(session, modification) == []


async def test_upload_then_delete_the_new_document_but_never_an_old_one(
    portail: httpx.AsyncClient, demande: Demande, pdf: bytes
) -> None:
    page = await page_operateur(portail)
    csrf = jeton_csrf(page)

    vide = await portail.post(f"{MODIFICATION}/pieces", data={"csrf": csrf, "type": ""})
    assert vide.status_code == 422
    assert "Sélectionnez le type de pièce complémentaire." in texte(vide.text)

    r = await portail.post(
        f"{MODIFICATION}/pieces",
        data={"csrf": csrf, "type": "MSS_RESU_TEST_TECH"},
        files={"fichier": ("capture.pdf", pdf, "application/pdf")},
    )
    assert r.status_code == 303
    apres = (await portail.get(MODIFICATION)).text
    assert ">Supprimer capture.pdf</button>" in apres
    suppressions = re.findall(r'action="(/modifications/FINMSS009266M1/pieces/[^"]+/supprimer)"', apres)
    assert len(suppressions) == 1

    anciennes = re.findall(r'href="/demandes/FINMSS009266/pieces/([^"]+)"', apres)
    nouvelle = suppressions[0].split("/")[-2]
    ancienne = next(p for p in anciennes if p != nouvelle)
    refus = await portail.post(f"{MODIFICATION}/pieces/{ancienne}/supprimer", data={"csrf": csrf})
    assert refus.status_code == 303
    assert "ne peut pas être supprimée" in texte((await portail.get(MODIFICATION)).text)

    assert (await portail.post(suppressions[0], data={"csrf": csrf})).status_code == 303
    assert "Supprimer capture.pdf" not in (await portail.get(MODIFICATION)).text


async def test_confirm_after_its_confirmation_step_leads_to_the_request_page(
    portail: httpx.AsyncClient, demande: Demande
) -> None:
    page = await page_operateur(portail)
    csrf = jeton_csrf(page)
    await portail.post(
        f"{MODIFICATION}/brouillon",
        data={
            "csrf": csrf,
            "contact_support_nom": "NOM Prénom",
            "contact_support_telephone": "06 12 34 56 78",
            "contact_support_courriel": "mail@contact-support.fr",
            "site_documentation_url": "https://lien_site_web.fr",
        },
    )
    etape = texte((await portail.get(f"{MODIFICATION}/confirmer")).text)
    assert "Vérifiez vos modifications" in etape and "06 12 34 56 78" in etape

    r = await portail.post(f"{MODIFICATION}/confirmer", data={"csrf": csrf})

    assert r.status_code == 303 and r.headers["location"] == "/demandes/FINMSS009266"
    demande_page = texte((await portail.get("/demandes/FINMSS009266")).text)
    assert "Modification confirmée" in demande_page
    assert "Statut : En cours" in demande_page
    assert "nécessite des modifications" not in demande_page
    assert "Version 2" in demande_page and "06 12 34 56 78" in demande_page


async def test_renounce_after_its_confirmation_step(portail: httpx.AsyncClient, demande: Demande) -> None:
    page = await page_operateur(portail)

    etape = texte((await portail.get(f"{MODIFICATION}/renoncer")).text)
    assert "sera instruite en l'état" in etape
    r = await portail.post(f"{MODIFICATION}/renoncer", data={"csrf": jeton_csrf(page)})

    assert r.headers["location"] == "/demandes/FINMSS009266"
    assert "Demande laissée sans modification" in texte((await portail.get("/demandes/FINMSS009266")).text)


async def test_ten_confirmations_at_once_one_succeeds(portail: httpx.AsyncClient, demande: Demande) -> None:
    page = await page_operateur(portail)
    csrf = jeton_csrf(page)

    reponses = await asyncio.gather(
        *(portail.post(f"{MODIFICATION}/confirmer", data={"csrf": csrf}) for _ in range(10))
    )

    # Post/redirect/get: the one that went through leads to the request page, the nine others
    # back to the modification page, with the reason beside it.
    assert all(r.status_code == 303 for r in reponses), [r.status_code for r in reponses]
    destinations = [r.headers["location"] for r in reponses]
    assert destinations.count("/demandes/FINMSS009266") == 1, destinations
    assert destinations.count(MODIFICATION) == 9, destinations
    # (Each answer sets the one session cookie: which message the tab shows next depends on
    # which answer came last, so the messages are not compared here.)
    assert "nécessite des modifications" not in texte((await portail.get("/demandes/FINMSS009266")).text)


async def test_another_operator_and_a_gestionnaire_see_the_modification_as_they_may(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    await ouvrir(portail)
    await se_connecter(portail, AUTRE_OPERATEUR)
    assert (await portail.get(MODIFICATION)).status_code == 404

    async with unit_of_work(factory) as session:
        await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
    await se_deconnecter(portail)
    await se_connecter(portail, GESTIONNAIRE)
    lecture = await portail.get(MODIFICATION)
    assert lecture.status_code == 200
    assert "Consultation seule" in lecture.text and ">Enregistrer<" not in lecture.text
    refus = await portail.post(f"{MODIFICATION}/confirmer", data={"csrf": jeton_csrf(lecture.text)})
    assert refus.status_code == 403


async def test_import_a_request_from_its_json_file(
    portail: httpx.AsyncClient, factory: SessionFactory, donnees: dict[str, Any]
) -> None:
    await se_connecter(portail, OPERATEUR, retour="/demandes/importer")
    formulaire = await portail.get("/demandes/importer")
    csrf = jeton_csrf(formulaire.text)

    casse = {**donnees, "informations": {**donnees["informations"], "contact_support_courriel": "x"}}
    refus = await portail.post(
        "/demandes/importer",
        data={"csrf": csrf},
        files={"fichier": ("d.json", json.dumps(casse), "application/json")},
    )
    assert refus.status_code == 422
    assert "resume-erreurs" in refus.text and "contact_support_courriel" in refus.text

    r = await portail.post(
        "/demandes/importer",
        data={"csrf": csrf},
        files={"fichier": ("d.json", json.dumps(donnees), "application/json")},
    )
    assert r.status_code == 303 and r.headers["location"] == "/demandes/FINMSS009266"
    assert "Demande importée" in texte((await portail.get("/demandes/FINMSS009266")).text)


async def test_a_refused_import_is_logged_with_its_caller(
    portail: httpx.AsyncClient, demande: Demande, donnees: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await se_connecter(portail, OPERATEUR, retour="/demandes/importer")
    csrf = jeton_csrf((await portail.get("/demandes/importer")).text)

    refus = await portail.post(
        "/demandes/importer",
        data={"csrf": csrf},
        files={"fichier": ("d.json", json.dumps(donnees), "application/json")},
    )

    assert refus.status_code == 422 and "il est déjà enregistré" in texte(refus.text)
    (ligne,) = [r for r in caplog.records if r.getMessage().startswith("import refusé")]
    assert (ligne.numero, ligne.appelant, ligne.siret, ligne.statut) == (  # type: ignore[attr-defined]
        "FINMSS009266",
        OPERATEUR,
        "50961588600025",
        409,
    )


async def test_a_document_is_consulted_through_the_session(
    portail: httpx.AsyncClient, demande: Demande, pdf: bytes
) -> None:
    page = await page_operateur(portail)
    lien = re.search(r'href="(/demandes/FINMSS009266/pieces/[^"]+)"', page)
    assert lien

    fichier = await portail.get(lien.group(1))
    assert fichier.status_code == 200 and fichier.content.startswith(b"%PDF")
    assert fichier.headers["content-disposition"].startswith("attachment;")
    portail.cookies.clear()
    assert (await portail.get(lien.group(1))).status_code == 303


def _saisie(csrf: str, telephone: str, version: str | None) -> dict[str, str]:
    donnees = {
        "csrf": csrf,
        "contact_support_nom": "NOM Prénom",
        "contact_support_telephone": telephone,
        "contact_support_courriel": "mail@contact-support.fr",
        "site_documentation_url": "https://lien_site_web.fr",
    }
    if version is not None:
        donnees["brouillon_version"] = version
    return donnees


def _version(page: str) -> str:
    trouve = re.search(r'name="brouillon_version" value="(\d+)"', page)
    assert trouve, "la page porte la version du brouillon"
    return trouve.group(1)


async def test_two_tabs_do_not_overwrite_each_other(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    onglet_a = await page_operateur(portail)
    onglet_b = (await portail.get(MODIFICATION)).text
    csrf = jeton_csrf(onglet_a)

    r = await portail.post(
        f"{MODIFICATION}/brouillon", data=_saisie(csrf, "06 12 34 56 78", _version(onglet_b))
    )
    assert r.status_code == 303
    # Tab A still shows the draft from before tab B saved: its save changes nothing.
    r = await portail.post(
        f"{MODIFICATION}/brouillon", data=_saisie(csrf, "07 00 00 00 01", _version(onglet_a))
    )
    assert r.status_code == 303 and r.headers["location"] == MODIFICATION
    assert "Brouillon modifié entre-temps" in texte((await portail.get(MODIFICATION)).text)
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, "FINMSS009266M1")
    assert modification.brouillon == {"contact_support_telephone": "06 12 34 56 78"}


async def test_a_confirmation_applies_only_the_draft_its_author_reviewed(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)
    csrf = jeton_csrf(page)
    etape = (await portail.get(f"{MODIFICATION}/confirmer")).text
    # Meanwhile, another tab changes the draft.
    await portail.post(f"{MODIFICATION}/brouillon", data=_saisie(csrf, "06 12 34 56 78", None))

    r = await portail.post(
        f"{MODIFICATION}/confirmer", data={"csrf": csrf, "brouillon_version": _version(etape)}
    )
    assert r.status_code == 303 and r.headers["location"] == MODIFICATION
    assert (
        "le brouillon a changé depuis que vous l'avez vérifié"
        in texte((await portail.get(MODIFICATION)).text).lower()
    )
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, "FINMSS009266M1")
    assert modification.statut == "ouverte"


async def test_a_second_confirmation_is_refused_beside_the_action(
    portail: httpx.AsyncClient, demande: Demande
) -> None:
    page = await page_operateur(portail)
    csrf = jeton_csrf(page)
    premiere = await portail.post(f"{MODIFICATION}/confirmer", data={"csrf": csrf})
    assert premiere.headers["location"] == "/demandes/FINMSS009266"

    seconde = await portail.post(f"{MODIFICATION}/confirmer", data={"csrf": csrf})
    assert seconde.status_code == 303 and seconde.headers["location"] == MODIFICATION
    assert "Confirmation impossible" in texte((await portail.get(MODIFICATION)).text)


async def test_a_stopped_cycle_is_refused_with_the_check_to_run(
    portail: httpx.AsyncClient, demande: Demande, banc: Banc, factory: SessionFactory
) -> None:
    page = await page_operateur(portail)
    csrf = jeton_csrf(page)
    await banc.client.get_workflow_handle("FINMSS009266M1").terminate("arrêté depuis la Temporal UI")

    for reponse in (
        await portail.post(f"{MODIFICATION}/brouillon", data=_saisie(csrf, "06 12 34 56 78", None)),
        await portail.post(
            f"{MODIFICATION}/pieces",
            data={"csrf": csrf, "type": "AUTRE_S"},
            files={"fichier": ("capture.pdf", b"%PDF-1.4\n", "application/pdf")},
        ),
    ):
        assert reponse.status_code == 409
        assert "modif-solde verifier" in texte(reponse.text)
    confirmation = await portail.post(f"{MODIFICATION}/confirmer", data={"csrf": csrf})
    assert confirmation.headers["location"] == MODIFICATION
    assert "modif-solde verifier" in texte((await portail.get(MODIFICATION)).text)
    async with unit_of_work(factory) as session:
        modification = await svc.charger_modification(session, "FINMSS009266M1")
    assert modification.brouillon == {} and modification.statut == "ouverte"
