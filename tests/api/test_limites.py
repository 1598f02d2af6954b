"""Body limits: an oversized upload is a French 413, whether it says its length or not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.models.tables import Demande
from modif_solde.services.stockage import Stockage
from tests.api.conftest import OPERATEUR
from tests.api.test_commit_avant_reponse import fichiers
from tests.api.test_parcours import ouvrir, probleme
from tests.workflows.conftest import Banc, ServeurSmtp

FRONTIERE = "frontiere-de-test"


def multipart(pdf: bytes, remplissage: int) -> Iterator[bytes]:
    """A multipart body, in pieces: no Content-Length, so it goes chunked."""
    yield (
        f'--{FRONTIERE}\r\nContent-Disposition: form-data; name="type"\r\n\r\nAUTRE_S\r\n'
        f'--{FRONTIERE}\r\nContent-Disposition: form-data; name="fichier"; filename="gros.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    yield pdf
    for _ in range(remplissage // 4096):
        yield b"0" * 4096
    yield f"\r\n--{FRONTIERE}--\r\n".encode()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_piece_trop_grande_sans_longueur_413_en_francais(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp, pdf: bytes, stockage: Stockage
) -> None:
    await ouvrir(http)
    avant = fichiers(stockage)

    async def corps() -> AsyncIterator[bytes]:
        for morceau in multipart(pdf, 400 * 1024):
            yield morceau

    r = await http.post(
        "/api/v1/modifications/FINMSS009266M1/pieces",
        content=corps(),
        headers={**OPERATEUR, "Content-Type": f"multipart/form-data; boundary={FRONTIERE}"},
    )
    assert "content-length" not in r.request.headers
    corps_413 = probleme(r, 413)
    assert "taille maximale" in corps_413["detail"]
    assert fichiers(stockage) == avant
    modification = (await http.get("/api/v1/modifications/FINMSS009266M1", headers=OPERATEUR)).json()
    assert modification["pieces_ajoutees"] == []

    # The same body within the limit is accepted: the chunked form itself is fine.
    async def petit() -> AsyncIterator[bytes]:
        for morceau in multipart(pdf, 0):
            yield morceau

    r = await http.post(
        "/api/v1/modifications/FINMSS009266M1/pieces",
        content=petit(),
        headers={**OPERATEUR, "Content-Type": f"multipart/form-data; boundary={FRONTIERE}"},
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_multipart_mal_forme_400_en_francais(
    http: httpx.AsyncClient, demande: Demande, smtp: ServeurSmtp
) -> None:
    await ouvrir(http)
    r = await http.post(
        "/api/v1/modifications/FINMSS009266M1/pieces",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\n",
        headers={**OPERATEUR, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert "corps de la requête" in probleme(r, 400)["detail"]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_nombre_de_pieces_borne_409(
    settings: Settings,
    banc: Banc,
    factory: Any,
    demande: Demande,
    smtp: ServeurSmtp,
    pdf: bytes,
    stockage: Stockage,
) -> None:
    assert Settings(JWT_SECRET=settings.JWT_SECRET).PIECES_MAX_PAR_MODIFICATION == 20
    app = create_app(settings.model_copy(update={"PIECES_MAX_PAR_MODIFICATION": 2}), client=banc.client)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            await ouvrir(http)

            async def ajouter() -> httpx.Response:
                return await http.post(
                    "/api/v1/modifications/FINMSS009266M1/pieces",
                    data={"type": "AUTRE_S"},
                    files={"fichier": ("a.pdf", pdf, "application/pdf")},
                    headers=OPERATEUR,
                )

            premieres = [await ajouter() for _ in range(2)]
            assert [r.status_code for r in premieres] == [201, 201]
            avant = fichiers(stockage)
            detail = probleme(await ajouter(), 409)["detail"]
            assert "2 pièces" in detail
            assert fichiers(stockage) == avant
            # One deleted, one more fits again.
            r = await http.delete(
                f"/api/v1/modifications/FINMSS009266M1/pieces/{premieres[0].json()['id']}", headers=OPERATEUR
            )
            assert r.status_code == 204
            assert (await ajouter()).status_code == 201


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_405_nomme_toutes_les_methodes(http: httpx.AsyncClient) -> None:
    r = await http.request("OPTIONS", "/api/v1/demandes", headers=OPERATEUR)
    assert probleme(r, 405)
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "POST"}
