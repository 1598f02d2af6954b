"""Body limits: an oversized upload is a French 413, whether it says its length or not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from modif_solde.models.tables import Demande
from modif_solde.services.stockage import Stockage
from tests.api.conftest import OPERATEUR
from tests.api.test_commit_avant_reponse import fichiers
from tests.api.test_parcours import ouvrir, probleme
from tests.workflows.conftest import ServeurSmtp

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
