"""The tour as the portal's guide describes it, over HTTP, with its refusals."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import pytest

from modif_solde.models.tables import Demande
from tests.api.conftest import AUTRE_OPERATEUR, GESTIONNAIRE, OPERATEUR
from tests.workflows.conftest import ServeurSmtp

OUVERTURE = {
    "commentaire": "Le téléphone du contact support ne correspond pas.",
    "champs": ["contact_support_telephone", "pieces"],
}


async def ouvrir(http: httpx.AsyncClient) -> dict[str, Any]:
    r = await http.post("/api/v1/demandes/FINMSS009266/modifications", json=OUVERTURE, headers=GESTIONNAIRE)
    assert r.status_code == 201, r.text
    return dict(r.json())


def probleme(r: httpx.Response, statut: int) -> dict[str, Any]:
    assert r.status_code == statut, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    corps = r.json()
    assert corps["status"] == statut and corps["title"] and corps["detail"]
    return dict(corps)


async def test_le_parcours_complet(
    http: httpx.AsyncClient, demande: Demande, pdf: bytes, smtp: ServeurSmtp
) -> None:
    ouverte = await ouvrir(http)
    assert ouverte["numero"] == "FINMSS009266M1" and ouverte["statut"] == "ouverte"
    page = (await http.get("/api/v1/demandes/FINMSS009266", headers=OPERATEUR)).json()
    assert page["statut"] == "a_modifier"
    assert page["modification_ouverte"]["commentaire"] == OUVERTURE["commentaire"]

    r = await http.patch(
        "/api/v1/modifications/FINMSS009266M1/brouillon",
        json={"contact_support_telephone": "+33 6 12 34 56 78"},
        headers=OPERATEUR,
    )
    assert r.status_code == 200, r.text
    assert r.json()["changements"] == [
        {
            "champ": "contact_support_telephone",
            "valeur_actuelle": "06 00 00 00 00",
            "nouvelle_valeur": "06 12 34 56 78",
        }
    ]
    r = await http.post(
        "/api/v1/modifications/FINMSS009266M1/pieces",
        data={"type": "MSS_RESU_TEST_TECH"},
        files={"fichier": ("résultats tests.pdf", pdf, "application/pdf")},
        headers=OPERATEUR,
    )
    assert r.status_code == 201, r.text
    piece = r.json()
    assert piece["supprimable"] and piece["type_affiche"] == "MSS_RESU_TEST_TECH_FINMSS009266"
    telechargement = await http.get(piece["url"], headers=GESTIONNAIRE)
    assert telechargement.content == pdf
    assert telechargement.headers["content-disposition"].startswith(
        'attachment; filename="r_sultats tests.pdf"'
    )
    assert "filename*=UTF-8''r%C3%A9sultats%20tests.pdf" in telechargement.headers["content-disposition"]
    assert telechargement.headers["x-content-type-options"] == "nosniff"

    r = await http.post("/api/v1/modifications/FINMSS009266M1/confirmer", headers=OPERATEUR)
    assert r.status_code == 200, r.text
    assert r.json()["statut"] == "confirmee" and r.json()["version_appliquee"] == 2
    page = (await http.get("/api/v1/demandes/FINMSS009266", headers=GESTIONNAIRE)).json()
    assert page["statut"] == "en_cours" and page["version"] == 2 and page["modification_ouverte"] is None
    assert page["informations"]["contact_support_telephone"] == "06 12 34 56 78"
    assert {(h["version"], h["champ"], h["modification"]) for h in page["historique"]["elements"]} == {
        (1, "demande", None),
        (2, "informations.contact_support_telephone", "FINMSS009266M1"),
        (2, "pieces", "FINMSS009266M1"),
    }
    assert (
        page["coordonnees_bancaires"]["iban_masque"].endswith("0 189")
        and "3000" not in page["coordonnees_bancaires"]["iban_masque"]
    )
    assert page["montants"]["solde"]["valeur"] == "58588.30"
    for _ in range(200):
        r = await http.get("/api/v1/demandes/FINMSS009266/courriels", headers=GESTIONNAIRE)
        courriels = r.json()["elements"]
        if len(courriels) == 3:
            break
        await asyncio.sleep(0.05)
    assert [c["type"] for c in courriels] == ["invitation", "confirmation", "confirmation_gestionnaires"]
    assert all(c["sujet"] and c["corps_texte"] and c["destinataire"] for c in courriels)


async def test_refus_du_parcours(
    http: httpx.AsyncClient, demande: Demande, pdf: bytes, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    # A non-editable field and a broken rule: both named, nothing changed.
    r = await http.patch(
        "/api/v1/modifications/FINMSS009266M1/brouillon",
        json={"montants": {"solde": "1.00"}, "contact_support_courriel": "pas-une-adresse"},
        headers=OPERATEUR,
    )
    assert {e["champ"] for e in probleme(r, 422)["errors"]} == {
        "montants",
        "informations.contact_support_courriel",
    }
    # A document from before the modification cannot be deleted.
    page = (await http.get("/api/v1/demandes/FINMSS009266", headers=OPERATEUR)).json()
    ancienne = page["pieces"][0]
    assert not ancienne["supprimable"]
    probleme(
        await http.delete(f"/api/v1/modifications/FINMSS009266M1/pieces/{ancienne['id']}", headers=OPERATEUR),
        409,
    )
    # A non-PDF renamed .pdf, and an oversized PDF (the test limit is 64 KiB).
    faux = await http.post(
        "/api/v1/modifications/FINMSS009266M1/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": ("image.pdf", b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "application/pdf")},
        headers=OPERATEUR,
    )
    probleme(faux, 415)
    gros = await http.post(
        "/api/v1/modifications/FINMSS009266M1/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": ("gros.pdf", pdf + b"0" * (200 * 1024), "application/pdf")},
        headers=OPERATEUR,
    )
    probleme(gros, 413)
    mauvais_type = await http.post(
        "/api/v1/modifications/FINMSS009266M1/pieces",
        data={"type": "decision_attribution"},
        files={"fichier": ("a.pdf", pdf, "application/pdf")},
        headers=OPERATEUR,
    )
    assert probleme(mauvais_type, 422)["errors"][0]["champ"] == "type"
    modification = (await http.get("/api/v1/modifications/FINMSS009266M1", headers=OPERATEUR)).json()
    assert modification["changements"] == [] and modification["pieces_ajoutees"] == []
    # A piece added then deleted is gone.
    ajout = (
        await http.post(
            "/api/v1/modifications/FINMSS009266M1/pieces",
            data={"type": "AUTRE_S"},
            files={"fichier": ("a.pdf", pdf, "application/pdf")},
            headers=OPERATEUR,
        )
    ).json()
    assert (
        await http.delete(f"/api/v1/modifications/FINMSS009266M1/pieces/{ajout['id']}", headers=OPERATEUR)
    ).status_code == 204
    probleme(await http.get(ajout["url"], headers=OPERATEUR), 404)
    # A second opening while one is open: 409.
    probleme(
        await http.post("/api/v1/demandes/FINMSS009266/modifications", json=OUVERTURE, headers=GESTIONNAIRE),
        409,
    )


async def test_renoncer_puis_plus_rien(http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp) -> None:
    await ouvrir(http)
    await http.patch(
        "/api/v1/modifications/FINMSS009266M1/brouillon", json={"contact_support_nom": "X"}, headers=OPERATEUR
    )
    r = await http.post("/api/v1/modifications/FINMSS009266M1/renoncer", headers=OPERATEUR)
    assert r.status_code == 200 and r.json()["statut"] == "renoncee"
    page = (await http.get("/api/v1/demandes/FINMSS009266", headers=OPERATEUR)).json()
    assert page["statut"] == "en_cours" and page["informations"]["contact_support_nom"] == "NOM Prénom"
    for chemin in ("confirmer", "renoncer"):
        assert (
            "n'est plus ouverte"
            in probleme(
                await http.post(f"/api/v1/modifications/FINMSS009266M1/{chemin}", headers=OPERATEUR), 409
            )["detail"]
        )
    probleme(
        await http.patch(
            "/api/v1/modifications/FINMSS009266M1/brouillon",
            json={"contact_support_nom": "Y"},
            headers=OPERATEUR,
        ),
        409,
    )
    # A new round: M2.
    r = await http.post("/api/v1/demandes/FINMSS009266/modifications", json=OUVERTURE, headers=GESTIONNAIRE)
    assert r.status_code == 201 and r.json()["numero"] == "FINMSS009266M2"


async def test_gestionnaire_prolonge_puis_retire(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    ouverte = await ouvrir(http)
    r = await http.post(
        "/api/v1/modifications/FINMSS009266M1/prolonger",
        json={"expire_le": "2020-01-01T00:00:00+01:00"},
        headers=GESTIONNAIRE,
    )
    # Earlier than the current deadline: the modification's state refuses it, not the body.
    assert "postérieure à l'échéance actuelle" in probleme(r, 409)["detail"]
    r = await http.post(
        "/api/v1/modifications/FINMSS009266M1/prolonger",
        json={"expire_le": "2099-01-01T00:00:00"},
        headers=GESTIONNAIRE,
    )
    assert probleme(r, 422)["errors"][0]["champ"] == "expire_le"
    from datetime import datetime, timedelta

    nouvelle = (datetime.fromisoformat(ouverte["expire_le"]) + timedelta(days=10)).isoformat()
    r = await http.post(
        "/api/v1/modifications/FINMSS009266M1/prolonger", json={"expire_le": nouvelle}, headers=GESTIONNAIRE
    )
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["expire_le"]) == datetime.fromisoformat(nouvelle)
    liste = (await http.get("/api/v1/demandes?statut=a_modifier", headers=GESTIONNAIRE)).json()
    assert liste["total"] == 1
    file = liste["demandes"][0]["modification_ouverte"]
    assert file["numero"] == "FINMSS009266M1" and file["relance_envoyee"] is False
    assert datetime.fromisoformat(file["expire_le"]) == datetime.fromisoformat(nouvelle)
    r = await http.post(
        "/api/v1/modifications/FINMSS009266M1/retirer",
        json={"motif": "Ouverte par erreur"},
        headers=GESTIONNAIRE,
    )
    assert r.status_code == 200 and r.json()["issue"] == "Retirée par gestionnaire.test : Ouverte par erreur"
    assert (await http.get("/api/v1/demandes?statut=a_modifier", headers=GESTIONNAIRE)).json()["total"] == 0


async def test_dix_confirmations_simultanees(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    reponses = await asyncio.gather(
        *(http.post("/api/v1/modifications/FINMSS009266M1/confirmer", headers=OPERATEUR) for _ in range(10))
    )
    assert sorted(r.status_code for r in reponses) == [200] + [409] * 9
    for _ in range(200):
        if smtp.boite.types().count("confirmation_gestionnaires") == 1:
            break
        await asyncio.sleep(0.05)
    assert smtp.boite.types().count("confirmation") == 1


async def test_deux_ouvertures_simultanees(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    reponses = await asyncio.gather(
        *(
            http.post("/api/v1/demandes/FINMSS009266/modifications", json=OUVERTURE, headers=GESTIONNAIRE)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in reponses) == [201, 409]
    liste = (await http.get("/api/v1/demandes?statut=a_modifier", headers=GESTIONNAIRE)).json()
    assert liste["total"] == 1


async def test_import_par_l_api(
    http: httpx.AsyncClient, donnees: dict[str, Any], factory: Any, pdf: bytes
) -> None:
    donnees["numero"] = "FINMSS000777"
    r = await http.post("/api/v1/demandes", json=donnees, headers=OPERATEUR)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == "/api/v1/demandes/FINMSS000777"
    probleme(await http.post("/api/v1/demandes", json=donnees, headers=GESTIONNAIRE), 409)
    probleme(
        await http.post(
            "/api/v1/demandes", json={**donnees, "numero": "FINMSS000778"}, headers=AUTRE_OPERATEUR
        ),
        403,
    )
    donnees["numero"] = "FINMSS000779"
    donnees["informations"]["contact_support_telephone"] = "12"
    donnees["pieces"][0]["contenu_base64"] = base64.b64encode(b"pas un pdf").decode()
    erreurs = probleme(await http.post("/api/v1/demandes", json=donnees, headers=GESTIONNAIRE), 422)["errors"]
    assert {e["champ"] for e in erreurs} == {
        "informations.contact_support_telephone",
        "pieces.0.contenu_base64",
    }
    assert all(e["message"].startswith("Le champ « ") for e in erreurs)


@pytest.mark.parametrize(
    "corps",
    [b"{", b"[]", b'"x"', b"null", '{"numero": "\u0000"}'.encode(), b"\xff\xfe"],
)
async def test_corps_malformes_jamais_500(http: httpx.AsyncClient, demande: Demande, corps: bytes) -> None:
    for methode, chemin, entetes in (
        ("POST", "/api/v1/demandes", GESTIONNAIRE),
        ("POST", "/api/v1/demandes/FINMSS009266/modifications", GESTIONNAIRE),
        ("POST", "/api/v1/modifications/FINMSS009266M1/prolonger", GESTIONNAIRE),
    ):
        r = await http.request(
            methode, chemin, content=corps, headers={**entetes, "content-type": "application/json"}
        )
        assert r.status_code in (404, 422), (chemin, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_une_lecture_n_attend_pas_un_ecrivain_sqlite(
    http: httpx.AsyncClient, factory: Any, demande: Demande
) -> None:
    """SQLite: while a transition holds the write lock, the request page still answers (WAL
    readers), instead of queueing behind it up to the 30 s busy timeout."""
    from modif_solde.db import unit_of_work

    async with unit_of_work(factory) as session:
        ligne = await session.get_one(Demande, demande.id)
        ligne.contact_support_nom = "écriture en cours"
        session.add(ligne)
        await session.flush()  # the write lock is held until this block ends
        async with asyncio.timeout(5):
            r = await http.get("/api/v1/demandes/FINMSS009266", headers=GESTIONNAIRE)
        assert r.status_code == 200 and r.json()["informations"]["contact_support_nom"] == "NOM Prénom"
