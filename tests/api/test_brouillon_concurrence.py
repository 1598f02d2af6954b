"""Draft concurrency: an ETag on the draft, If-Match on the draft's PATCH and on confirm (412 on
a stale one), optional (no If-Match: the last write wins)."""

from __future__ import annotations

import asyncio

import httpx

from modif_solde.models.tables import Demande
from tests.api.conftest import OPERATEUR
from tests.api.test_parcours import ouvrir, probleme
from tests.workflows.conftest import ServeurSmtp

M1 = "/api/v1/modifications/FINMSS009266M1"


async def etag(http: httpx.AsyncClient) -> str:
    r = await http.get(M1, headers=OPERATEUR)
    assert r.status_code == 200, r.text
    return r.headers["etag"]


async def test_deux_onglets_le_second_recoit_412(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp, pdf: bytes
) -> None:
    await ouvrir(http)
    lu = await etag(http)
    # The first tab saves: a new ETag, the same one GET then shows.
    r = await http.patch(
        f"{M1}/brouillon", json={"contact_support_nom": "Onglet 1"}, headers={**OPERATEUR, "If-Match": lu}
    )
    assert r.status_code == 200, r.text
    apres = r.headers["etag"]
    assert apres != lu and apres == await etag(http)
    # The second tab read before: refused, nothing changed.
    r = await http.patch(
        f"{M1}/brouillon", json={"contact_support_nom": "Onglet 2"}, headers={**OPERATEUR, "If-Match": lu}
    )
    assert "a changé" in probleme(r, 412)["detail"]
    vue = (await http.get(M1, headers=OPERATEUR)).json()
    assert [c["nouvelle_valeur"] for c in vue["changements"]] == ["Onglet 1"]
    assert await etag(http) == apres
    # Without If-Match the last write wins.
    r = await http.patch(f"{M1}/brouillon", json={"contact_support_nom": "Sans condition"}, headers=OPERATEUR)
    assert r.status_code == 200 and r.headers["etag"] != apres
    # `*` matches any current draft; a tag that is not ours does not.
    r = await http.patch(
        f"{M1}/brouillon", json={"contact_support_nom": "Étoile"}, headers={**OPERATEUR, "If-Match": "*"}
    )
    assert r.status_code == 200, r.text
    r = await http.patch(
        f"{M1}/brouillon", json={"contact_support_nom": "X"}, headers={**OPERATEUR, "If-Match": '"autre"'}
    )
    probleme(r, 412)


async def test_les_pieces_changent_l_etag(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp, pdf: bytes
) -> None:
    await ouvrir(http)
    avant = await etag(http)
    ajout = await http.post(
        f"{M1}/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": ("a.pdf", pdf, "application/pdf")},
        headers=OPERATEUR,
    )
    assert ajout.status_code == 201, ajout.text
    avec_piece = await etag(http)
    assert avec_piece != avant
    r = await http.delete(f"{M1}/pieces/{ajout.json()['id']}", headers=OPERATEUR)
    assert r.status_code == 204
    assert await etag(http) not in (avant, avec_piece)
    # A stale If-Match (read before the document was added) cannot confirm.
    r = await http.post(f"{M1}/confirmer", headers={**OPERATEUR, "If-Match": avec_piece})
    assert "a changé" in probleme(r, 412)["detail"]
    assert (await http.get(M1, headers=OPERATEUR)).json()["statut"] == "ouverte"
    # The current one can.
    r = await http.post(f"{M1}/confirmer", headers={**OPERATEUR, "If-Match": await etag(http)})
    assert r.status_code == 200, r.text
    assert r.json()["statut"] == "confirmee"


async def test_deux_ecritures_simultanees_une_seule_passe(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    lu = await etag(http)
    reponses = await asyncio.gather(
        *(
            http.patch(
                f"{M1}/brouillon", json={"contact_support_nom": nom}, headers={**OPERATEUR, "If-Match": lu}
            )
            for nom in ("Premier", "Second")
        )
    )
    assert sorted(r.status_code for r in reponses) == [200, 412]
    gagnant = next(r for r in reponses if r.status_code == 200)
    assert (await http.get(M1, headers=OPERATEUR)).json()["changements"] == gagnant.json()["changements"]
