"""The gestionnaires' back-office over HTTP (no browser): opening, extending, withdrawing, refusals."""

from __future__ import annotations

import asyncio
import copy
import html
import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import update
from sqlmodel import select

from modif_solde.db import SessionFactory, unit_of_work
from modif_solde.models.enums import StatutModification, TypeCourriel
from modif_solde.models.tables import Demande, Modification
from modif_solde.models.types import maintenant
from modif_solde.pages import file as file_pages
from modif_solde.services import envoi, gestionnaires, lecture
from modif_solde.services import modifications as svc
from modif_solde.services.conservation import purger
from modif_solde.services.courriels import rendre_courriel
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.stockage import Stockage
from tests.pages.conftest import COURRIEL_GESTIONNAIRE, GESTIONNAIRE, OPERATEUR, jeton_csrf, se_connecter
from tests.pages.test_modification import texte

DEMANDE = "/demandes/FINMSS009266"
COMMENTAIRE = "Le numéro de téléphone ne correspond pas à la pièce justificative."


async def connecter_gestionnaire(portail: httpx.AsyncClient, factory: SessionFactory) -> str:
    """Logs the demo gestionnaire in; returns the request page's CSRF token."""
    async with unit_of_work(factory) as session:
        await gestionnaires.ajouter(session, COURRIEL_GESTIONNAIRE)
    await se_connecter(portail, GESTIONNAIRE, retour=DEMANDE)
    page = await portail.get(DEMANDE)
    assert page.status_code == 200, page.text
    return jeton_csrf(page.text)


async def demander(portail: httpx.AsyncClient, csrf: str, commentaire: str = COMMENTAIRE) -> httpx.Response:
    return await portail.post(
        f"{DEMANDE}/modifications",
        data={"csrf": csrf, "commentaire": commentaire, "champs": ["contact_support_telephone", "pieces"]},
    )


async def modifications(factory: SessionFactory) -> list[Modification]:
    async with unit_of_work(factory) as session:
        return list((await session.exec(select(Modification).order_by(Modification.rang))).all())


async def test_an_operator_never_reaches_a_back_office_action(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    await se_connecter(portail, OPERATEUR, retour=DEMANDE)
    page = await portail.get(DEMANDE)
    assert "Demander une modification" not in page.text
    csrf = jeton_csrf(page.text)
    for chemin, donnees in (
        (f"{DEMANDE}/modification/apercu", {"commentaire": COMMENTAIRE, "champs": "pieces"}),
        (f"{DEMANDE}/modifications", {"commentaire": COMMENTAIRE, "champs": "pieces"}),
        ("/modifications/FINMSS009266M1/prolonger/verifier", {"expire_le": "2030-01-01"}),
        ("/modifications/FINMSS009266M1/retirer/verifier", {"motif": "x"}),
    ):
        refus = await portail.post(chemin, data={"csrf": csrf, **donnees})
        assert refus.status_code == 403, chemin
        assert "text/html" in refus.headers["content-type"]
        assert "réservée aux gestionnaires" in texte(refus.text)
    assert await modifications(factory) == []


async def test_the_opening_shows_the_invitation_e_mail_before_sending_it(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    csrf = await connecter_gestionnaire(portail, factory)
    page = texte((await portail.get(DEMANDE)).text)
    for mots in (
        "Demander une modification",
        "Commentaire",
        "Pièces justificatives",
        "Adresse mail du contact support",
    ):
        assert mots in page, mots

    apercu = await portail.post(
        f"{DEMANDE}/modification/apercu",
        data={"csrf": csrf, "commentaire": COMMENTAIRE, "champs": ["contact_support_telephone", "pieces"]},
    )
    assert apercu.status_code == 200, apercu.text
    vu = texte(apercu.text)
    assert "FINMSS009266M1" in vu and COMMENTAIRE in vu
    assert "http://test/demandes/FINMSS009266" in vu
    assert "Envoyer la demande de modification" in vu
    # Nothing is opened by the preview.
    assert await modifications(factory) == []

    envoi = await demander(portail, jeton_csrf(apercu.text))
    assert envoi.status_code == 303 and envoi.headers["location"] == DEMANDE
    [m] = await modifications(factory)
    assert m.numero == "FINMSS009266M1" and m.commentaire == COMMENTAIRE
    assert m.champs_attendus == ["contact_support_telephone", "pieces"]
    apres = texte((await portail.get(DEMANDE)).text)
    assert "Demande de modification envoyée" in apres and "Statut : A modifier" in apres
    assert "Prolonger" in apres and "Retirer" in apres and "L'opérateur n'a encore rien modifié." in apres
    assert (
        "http://127.0.0.1:8233/namespaces/default/workflows/FINMSS009266M1"
        in (await portail.get(DEMANDE)).text
    )


async def test_a_bad_opening_names_its_fields_and_opens_nothing(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    csrf = await connecter_gestionnaire(portail, factory)
    for chemin in (f"{DEMANDE}/modification/apercu", f"{DEMANDE}/modifications"):
        refus = await portail.post(chemin, data={"csrf": csrf, "commentaire": "  "})
        assert refus.status_code == 422
        vu = texte(refus.text)
        assert "Le champ « Commentaire » est obligatoire." in vu
        assert "Cochez au moins un élément attendu de l'opérateur." in vu
        assert 'aria-invalid="true"' in refus.text
    inconnu = await portail.post(chemin, data={"csrf": csrf, "commentaire": "x", "champs": "iban"})
    assert inconnu.status_code == 422
    assert await modifications(factory) == []


async def test_two_gestionnaires_opening_at_once_get_one_success_and_one_clear_refusal(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    csrf = await connecter_gestionnaire(portail, factory)
    async with httpx.AsyncClient(transport=portail._transport, base_url="http://test") as autre:
        await se_connecter(autre, GESTIONNAIRE, retour=DEMANDE)
        csrf_autre = jeton_csrf((await autre.get(DEMANDE)).text)
        reponses = await asyncio.gather(
            demander(portail, csrf), demander(autre, csrf_autre, "Autre commentaire.")
        )
        assert [r.status_code for r in reponses] == [303, 303]
        pages = [
            texte((await c.get(r.headers["location"])).text)
            for c, r in zip((portail, autre), reponses, strict=True)
        ]
    assert len(await modifications(factory)) == 1
    succes = [p for p in pages if "Demande de modification envoyée" in p]
    refus = [p for p in pages if "Demande de modification impossible" in p]
    assert len(succes) == 1 and len(refus) == 1
    assert re.search(
        r"FINMSS009266(M1)? (a déjà une modification ouverte|est déjà en cours d'ouverture)", refus[0]
    )


async def test_extend_then_withdraw_each_after_a_confirmation_step(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    csrf = await connecter_gestionnaire(portail, factory)
    assert (await demander(portail, csrf)).status_code == 303
    [m] = await modifications(factory)

    # A deadline not later than the current one: the workflow's refusal, beside the action.
    trop_tot = date.today().isoformat()
    etape = await portail.post(
        "/modifications/FINMSS009266M1/prolonger/verifier", data={"csrf": csrf, "expire_le": trop_tot}
    )
    assert etape.status_code == 200 and "Confirmer la prolongation" in etape.text
    refus = await portail.post(
        "/modifications/FINMSS009266M1/prolonger", data={"csrf": csrf, "expire_le": trop_tot}
    )
    assert refus.status_code == 303 and refus.headers["location"].endswith("#prolonger")
    assert "Prolongation impossible" in texte((await portail.get(DEMANDE)).text)

    mauvaise = await portail.post(
        "/modifications/FINMSS009266M1/prolonger/verifier", data={"csrf": csrf, "expire_le": "31/02/2030"}
    )
    assert mauvaise.status_code == 422 and "« Nouvelle échéance »" in texte(mauvaise.text)

    nouvelle = (m.expire_le + timedelta(days=10)).date()
    ok = await portail.post(
        "/modifications/FINMSS009266M1/prolonger", data={"csrf": csrf, "expire_le": nouvelle.isoformat()}
    )
    assert ok.status_code == 303
    assert "Échéance repoussée" in texte((await portail.get(DEMANDE)).text)
    [prolongee] = await modifications(factory)
    assert prolongee.expire_le.date() == nouvelle and prolongee.relance_le > m.relance_le

    sans_motif = await portail.post(
        "/modifications/FINMSS009266M1/retirer/verifier", data={"csrf": csrf, "motif": " "}
    )
    assert sans_motif.status_code == 422 and "Le champ « Motif » est obligatoire." in texte(sans_motif.text)
    # Too long a reason is refused at the confirmation step already, not only at the action.
    trop_long = await portail.post(
        "/modifications/FINMSS009266M1/retirer/verifier", data={"csrf": csrf, "motif": "x" * 2001}
    )
    assert trop_long.status_code == 422 and "ne doit pas dépasser 2 000 caractères" in texte(trop_long.text)
    etape = await portail.post(
        "/modifications/FINMSS009266M1/retirer/verifier", data={"csrf": csrf, "motif": "Ouverte par erreur."}
    )
    assert etape.status_code == 200 and "Ouverte par erreur." in texte(etape.text)
    retrait = await portail.post(
        "/modifications/FINMSS009266M1/retirer", data={"csrf": csrf, "motif": "Ouverte par erreur."}
    )
    assert retrait.status_code == 303
    apres = texte((await portail.get(DEMANDE)).text)
    assert "Demande de modification retirée" in apres and "Statut : En cours" in apres
    [retiree] = await modifications(factory)
    assert retiree.statut == StatutModification.RETIREE and "Ouverte par erreur." in (retiree.issue or "")

    # Withdrawn meanwhile (another gestionnaire): the refusal, beside the action.
    encore = await portail.post(
        "/modifications/FINMSS009266M1/retirer", data={"csrf": csrf, "motif": "Encore."}
    )
    assert encore.status_code == 303
    assert "n'est plus ouverte" in texte((await portail.get(DEMANDE)).text)


async def test_every_round_and_the_e_mail_log_with_delivery_status(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory
) -> None:
    csrf = await connecter_gestionnaire(portail, factory)
    assert (await demander(portail, csrf)).status_code == 303
    await portail.post(
        "/modifications/FINMSS009266M1/retirer", data={"csrf": csrf, "motif": "Ouverte par erreur."}
    )
    assert (await demander(portail, csrf, "Deuxième tour.")).status_code == 303
    # Two e-mails the SMTP server answered: one refused for good, one to be retried.
    async with unit_of_work(factory) as session:
        m2 = await svc.charger_modification(session, "FINMSS009266M2")
        contexte = await envoi.contexte(session, m2, "http://test")
        for type_, reponse, definitive in (
            (TypeCourriel.RELANCE, "550 5.1.1 Boîte inconnue", True),
            (TypeCourriel.PROLONGATION, "451 4.3.0 Réessayez plus tard", False),
        ):
            courriel, _ = await envoi.consigner_et_tenter(
                session,
                m2,
                type_,
                "contact@sci-voiture.example",
                rendre_courriel(type_, contexte),
                f"test:{type_}",
                datetime.now(UTC),
            )
            assert courriel.id is not None
            await envoi.noter_erreur(session, courriel.id, reponse, definitive=definitive)

    page = texte((await portail.get(DEMANDE)).text)
    tours = page[page.index("Demandes de modification") :]
    assert tours.index("FINMSS009266M2 : Ouverte") < tours.index(
        "FINMSS009266M1 : Retirée par le gestionnaire"
    )
    assert f"par {GESTIONNAIRE}" in tours and COMMENTAIRE in tours and "Deuxième tour." in tours
    assert (
        "Éléments attendus : Numéro de téléphone du contact support de l'opérateur, Pièces justificatives."
        in tours
    )
    assert "Ouverte par erreur." in tours and "Aucun changement appliqué." in tours
    assert "Close le " in tours
    assert "Non envoyé (échec de l'envoi : 550 5.1.1 Boîte inconnue)" in page
    assert "nouvel essai prévu (dernière réponse du serveur : 451 4.3.0 Réessayez plus tard)" in page


async def _trois_demandes(factory: SessionFactory, stockage: Stockage, seed: dict[str, Any]) -> None:
    """FINMSS009266 (the fixture's) plus two more of another company."""
    for numero in ("FINMSS009267", "FINMSS009268"):
        donnees = copy.deepcopy(seed)
        donnees["numero"] = numero
        donnees["operateur"] = {
            **donnees["operateur"],
            "siret": "00000000000000",
            "denomination": "Opérateur MSS",
        }
        async with unit_of_work(factory) as session:
            await importer_demande(session, stockage, lire_import(json.dumps(donnees).encode()))


async def test_the_work_queue_filters_searches_sorts_and_flags_deadlines_within_48_hours(
    portail: httpx.AsyncClient,
    demande: Demande,
    factory: SessionFactory,
    stockage: Stockage,
    seed: dict[str, Any],
) -> None:
    await _trois_demandes(factory, stockage, seed)
    csrf = await connecter_gestionnaire(portail, factory)
    for numero in ("FINMSS009266", "FINMSS009267"):
        r = await portail.post(
            f"/demandes/{numero}/modifications",
            data={"csrf": csrf, "commentaire": "À corriger.", "champs": "pieces"},
        )
        assert r.status_code == 303
    # FINMSS009267's deadline comes in 30 hours and its reminder went out.
    async with unit_of_work(factory) as session:
        m = await svc.charger_modification(session, "FINMSS009267M1")
        m.expire_le = datetime.now(UTC) + timedelta(hours=30)
        m.relance_envoyee_le = datetime.now(UTC)
        session.add(m)

    file = await portail.get("/demandes")
    assert file.status_code == 200
    vu = texte(file.text)
    assert vu.index("FINMSS009267") < vu.index("FINMSS009266") < vu.index("FINMSS009268")
    assert "3 demandes" in vu and "Opérateur MSS SIRET 00000000000000" in vu
    assert vu.count("Échéance dans moins de 48 h") == 1 and file.text.count('class="ligne-bientot"') == 1
    ligne = re.search(r"<tr class=\"ligne-bientot\">.*?</tr>", file.text, re.S)
    assert ligne and "FINMSS009267M1" in ligne.group(0)

    async def numeros(**filtres: str) -> list[str]:
        r = await portail.get("/demandes", params=filtres)
        assert r.status_code == 200, r.text
        return re.findall(r'<th scope="row"><a href="/demandes/(FINMSS\d+)">', r.text)

    assert await numeros(statut="en_cours") == ["FINMSS009268"]
    assert await numeros(statut="a_modifier") == ["FINMSS009267", "FINMSS009266"]
    assert await numeros(relancee="oui") == ["FINMSS009267"]
    assert await numeros(relancee="non") == ["FINMSS009266"]
    demain = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    assert await numeros(echeance_avant=demain) == ["FINMSS009267"]
    assert await numeros(recherche="finmss009268") == ["FINMSS009268"]
    assert await numeros(recherche="00000000000000") == ["FINMSS009267", "FINMSS009268"]
    assert await numeros(recherche="voiture") == ["FINMSS009266"]

    mauvais = await portail.get("/demandes", params={"echeance_avant": "demain", "statut": "perdu"})
    assert mauvais.status_code == 422
    vu = texte(mauvais.text)
    assert "« Échéance avant le » doit être une date" in vu and "« Statut » doit valoir" in vu
    # The wrong filters are ignored, the others applied.
    assert "3 demandes" in vu


async def test_the_work_queue_pages_keep_the_filters(
    portail: httpx.AsyncClient,
    demande: Demande,
    factory: SessionFactory,
    stockage: Stockage,
    seed: dict[str, Any],
) -> None:
    await _trois_demandes(factory, stockage, seed)
    await connecter_gestionnaire(portail, factory)
    file_pages.PAR_PAGE, avant = 2, file_pages.PAR_PAGE
    try:
        premiere = await portail.get("/demandes", params={"statut": "en_cours"})
        assert "page 1 sur 2" in texte(premiere.text)
        suivante = re.search(r'href="([^"]+)">Page suivante', premiere.text)
        assert suivante and "statut=en_cours" in suivante.group(1)
        deuxieme = await portail.get(html.unescape(suivante.group(1)))
        assert re.findall(r'<th scope="row"><a href="/demandes/(FINMSS\d+)">', deuxieme.text) == [
            "FINMSS009268"
        ]
    finally:
        file_pages.PAR_PAGE = avant


async def test_the_work_queue_pages_run_on_from_the_open_modifications_to_the_other_requests(
    portail: httpx.AsyncClient,
    demande: Demande,
    factory: SessionFactory,
    stockage: Stockage,
    seed: dict[str, Any],
) -> None:
    # The open modifications and the requests without one are read apart: a page that holds the
    # last of the first and the first of the others, then a page of the others only.
    await _trois_demandes(factory, stockage, seed)
    csrf = await connecter_gestionnaire(portail, factory)
    donnees = {"csrf": csrf, "commentaire": "À corriger.", "champs": "pieces"}
    assert (await portail.post("/demandes/FINMSS009267/modifications", data=donnees)).status_code == 303
    file_pages.PAR_PAGE, avant = 2, file_pages.PAR_PAGE
    try:
        pages = [await portail.get("/demandes", params={"page": str(n)}) for n in (1, 2)]
        lignes = [re.findall(r'<th scope="row"><a href="/demandes/(FINMSS\d+)">', p.text) for p in pages]
        assert lignes == [["FINMSS009267", "FINMSS009266"], ["FINMSS009268"]]
        assert all("3 demandes" in texte(p.text) for p in pages) and "page 2 sur 2" in texte(pages[1].text)
    finally:
        file_pages.PAR_PAGE = avant


async def test_a_search_finding_more_requests_than_it_takes_by_id_finds_them_all(
    portail: httpx.AsyncClient,
    demande: Demande,
    factory: SessionFactory,
    stockage: Stockage,
    seed: dict[str, Any],
) -> None:
    # Up to RECHERCHE_PAR_IDS found, the queries take them by id; beyond, the search's own condition.
    await _trois_demandes(factory, stockage, seed)
    await connecter_gestionnaire(portail, factory)

    async def numeros(recherche: str) -> list[str]:
        r = await portail.get("/demandes", params={"recherche": recherche})
        assert r.status_code == 200, r.text
        return re.findall(r'<th scope="row"><a href="/demandes/(FINMSS\d+)">', r.text)

    lecture.RECHERCHE_PAR_IDS, avant = 0, lecture.RECHERCHE_PAR_IDS
    try:
        assert await numeros("00000000000000") == ["FINMSS009267", "FINMSS009268"]
        assert await numeros("finmss009268") == ["FINMSS009268"]
        assert await numeros("introuvable") == []
    finally:
        lecture.RECHERCHE_PAR_IDS = avant
    assert await numeros("00000000000000") == ["FINMSS009267", "FINMSS009268"]
    assert await numeros("introuvable") == []


async def test_a_purged_request_says_so_to_its_operator(
    portail: httpx.AsyncClient, demande: Demande, factory: SessionFactory, stockage: Stockage
) -> None:
    """Past its retention period: the page says what was erased and when, not an empty form."""
    async with unit_of_work(factory) as session:
        await session.exec(update(Demande).values(statut_modifie_le=maintenant() - timedelta(days=800)))  # type: ignore[call-overload]
    await purger(factory, stockage, timedelta(days=730), en_cours=set())
    await se_connecter(portail, OPERATEUR, retour=DEMANDE)
    page = texte((await portail.get(DEMANDE)).text)
    aujourd_hui = datetime.now(ZoneInfo("Europe/Paris"))
    assert f"Données supprimées le {aujourd_hui:%d/%m/%Y}, la durée de conservation étant atteinte." in page
    assert "Les montants, les statuts et les dates restent." in page
