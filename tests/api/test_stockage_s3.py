"""The API with its documents in S3 (a real S3 server, moto, on loopback): an upload is
streamed to the object store and downloaded back through the API with the same headers as from
the folder; an upload whose commit fails leaves no object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from modif_solde.api.app import create_app
from modif_solde.config import Settings
from modif_solde.models.tables import Demande
from modif_solde.services.stockage_s3 import TAILLE_PART_MIN, StockageS3
from tests.api.conftest import OPERATEUR, SECRET
from tests.api.test_commit_avant_reponse import RefusAuCommit, echec_du_commit
from tests.api.test_parcours import ouvrir, probleme
from tests.conftest import ServeurS3
from tests.processus import port_libre
from tests.workflows.conftest import Banc, ServeurSmtp

M1 = "/api/v1/modifications/FINMSS009266M1"
MIO = 1024 * 1024


@pytest.fixture
async def stockage(serveur_s3: ServeurS3) -> AsyncIterator[StockageS3]:
    """The test's own prefix in the bucket (the seed's documents are imported there too)."""
    s3 = serveur_s3.stockage()
    yield s3
    await s3.fermer()


@pytest.fixture
def settings(engine: AsyncEngine, stockage: StockageS3, serveur_s3: ServeurS3, banc: Banc) -> Settings:
    return Settings(
        DATABASE_URL=engine.url.render_as_string(hide_password=False),
        JWT_SECRET=SECRET,
        TASK_QUEUE=banc.task_queue,
        PIECE_TAILLE_MAX=12 * MIO,
        PORTAIL_URL="https://portail.example",
        **serveur_s3.reglages(stockage.prefixe, taille_part=TAILLE_PART_MIN),
    )


async def objets(stockage: StockageS3) -> set[str]:
    """The objects under the test's prefix, and any pending multipart upload."""
    client = await stockage.client()
    liste = await client.list_objects_v2(Bucket=stockage.bucket, Prefix=stockage.prefixe)
    envois = await client.list_multipart_uploads(Bucket=stockage.bucket, Prefix=stockage.prefixe)
    return {o["Key"] for o in liste.get("Contents", [])} | {
        f"envoi inachevé {u['Key']}" for u in envois.get("Uploads", [])
    }


def gros_pdf(pdf: bytes, taille: int) -> bytes:
    return (pdf + b"%" + bytes(range(256)) * (taille // 256 + 1))[:taille]


@pytest.mark.parametrize("taille", [0, TAILLE_PART_MIN + MIO], ids=["petit", "en-plusieurs-parts"])
async def test_televerser_puis_telecharger_depuis_s3(
    http: httpx.AsyncClient,
    demande: Demande,
    smtp: ServeurSmtp,
    stockage: StockageS3,
    pdf: bytes,
    taille: int,
) -> None:
    contenu = gros_pdf(pdf, taille) if taille else pdf
    await ouvrir(http)
    avant = await objets(stockage)
    nom = "Kbis signé.pdf"

    r = await http.post(
        f"{M1}/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": (nom, contenu, "application/pdf")},
        headers=OPERATEUR,
    )

    assert r.status_code == 201, r.text
    nouveaux = await objets(stockage) - avant
    assert len(nouveaux) == 1 and not any(o.startswith("envoi") for o in nouveaux)
    telecharge = await http.get(r.json()["url"], headers=OPERATEUR)
    assert telecharge.status_code == 200
    assert telecharge.content == contenu
    assert telecharge.headers["content-type"] == "application/pdf"
    assert telecharge.headers["content-length"] == str(len(contenu))
    assert telecharge.headers["content-disposition"] == (
        f"attachment; filename=\"Kbis sign_.pdf\"; filename*=UTF-8''{quote(nom, safe='')}"
    )
    assert telecharge.headers["x-content-type-options"] == "nosniff"
    assert telecharge.headers["content-security-policy"] == "default-src 'none'; sandbox"


async def test_televersement_non_enregistre_ne_laisse_aucun_objet(
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    demande: Demande,
    smtp: ServeurSmtp,
    stockage: StockageS3,
    pdf: bytes,
) -> None:
    await ouvrir(http)
    avant = await objets(stockage)
    refus = RefusAuCommit(engine)
    await refus.armer("piece", "INSERT")
    try:
        r = await http.post(
            f"{M1}/pieces",
            data={"type": "AUTRE_S"},
            files={"fichier": ("a.pdf", gros_pdf(pdf, TAILLE_PART_MIN + MIO), "application/pdf")},
            headers=OPERATEUR,
        )
    finally:
        await refus.desarmer()

    echec_du_commit(r)
    assert (await http.get(M1, headers=OPERATEUR)).json()["pieces_ajoutees"] == []
    assert await objets(stockage) == avant


async def test_trop_grand_refuse_en_cours_d_envoi_sans_objet(
    http: httpx.AsyncClient,
    settings: Settings,
    demande: Demande,
    smtp: ServeurSmtp,
    stockage: StockageS3,
    pdf: bytes,
) -> None:
    """One byte over the limit: within the body's margin, so the upload streams to S3 (two parts
    sent) before the limit is crossed, then the multipart upload is aborted."""
    await ouvrir(http)
    avant = await objets(stockage)
    r = await http.post(
        f"{M1}/pieces",
        data={"type": "AUTRE_S"},
        files={"fichier": ("a.pdf", gros_pdf(pdf, settings.PIECE_TAILLE_MAX + 1), "application/pdf")},
        headers=OPERATEUR,
    )
    assert r.status_code == 413, r.text
    assert await objets(stockage) == avant


async def test_stockage_injoignable_503_en_francais_rien_d_enregistre(
    http: httpx.AsyncClient, settings: Settings, banc: Banc, demande: Demande, smtp: ServeurSmtp, pdf: bytes
) -> None:
    await ouvrir(http)
    piece = (await http.get("/api/v1/demandes/FINMSS009266", headers=OPERATEUR)).json()["pieces"][0]
    # The same service, its object store on a port where nothing listens.
    ailleurs = settings.model_copy(update={"S3_ENDPOINT_URL": f"http://127.0.0.1:{port_libre()}"})
    app = create_app(ailleurs, client=banc.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as sans_stockage:
            ajout = await sans_stockage.post(
                f"{M1}/pieces",
                data={"type": "AUTRE_S"},
                files={"fichier": ("a.pdf", pdf, "application/pdf")},
                headers=OPERATEUR,
            )
            lecture = await sans_stockage.get(piece["url"], headers=OPERATEUR)

    for r in (ajout, lecture):
        assert "stockage des pièces est momentanément indisponible" in probleme(r, 503)["detail"]
    assert (await http.get(M1, headers=OPERATEUR)).json()["pieces_ajoutees"] == []
    assert (await http.get(piece["url"], headers=OPERATEUR)).status_code == 200
