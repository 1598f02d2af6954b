"""One suite for both places the documents can live: the local folder and an S3 object store
(a real S3 server, moto, on loopback). What the service relies on: a write is checked while it
streams and leaves nothing behind when refused; a read streams back what was written; the sweep
finds only the old files no `piece` row references."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import select

from modif_solde.config import Settings, decrire_erreurs
from modif_solde.db import SessionFactory
from modif_solde.models.tables import Demande, Piece
from modif_solde.models.types import maintenant
from modif_solde.services.erreurs import PieceTropGrande, TypeDeContenuRefuse
from modif_solde.services.stockage import Stockage, StockageDossier, ouvrir_stockage
from modif_solde.services.stockage_s3 import TAILLE_PART_MIN, StockageS3
from modif_solde.services.verification import (
    abandonner_envois,
    envois_inacheves,
    fichiers_orphelins,
    supprimer_orphelins,
)
from tests.conftest import ServeurS3

MIO = 1024 * 1024
MORCEAU = 64 * 1024


@pytest.fixture(params=["dossier", "s3"])
async def stockage(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Stockage]:
    """The store under test (and the one the `demande` fixture imports into)."""
    if request.param == "dossier":
        yield StockageDossier(tmp_path / "pieces")
        return
    serveur: ServeurS3 = request.getfixturevalue("serveur_s3")
    s3 = serveur.stockage(taille_part=TAILLE_PART_MIN)
    yield s3
    await s3.fermer()


class Flux:
    """`taille` bytes of a PDF in chunks, counting the chunks the store asked for."""

    def __init__(self, pdf: bytes, taille: int) -> None:
        self.contenu = (pdf + bytes(range(256)) * (taille // 256 + 1))[:taille]
        self.lus = 0

    @property
    def morceaux_total(self) -> int:
        return -(-len(self.contenu) // MORCEAU)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for debut in range(0, len(self.contenu), MORCEAU):
            self.lus += 1
            yield self.contenu[debut : debut + MORCEAU]


async def restes(stockage: Stockage) -> list[str]:
    """Everything the store holds: files (temporary ones too) or objects and pending multipart
    uploads."""
    if isinstance(stockage, StockageDossier):
        if not stockage.racine.exists():
            return []
        return sorted(str(p.relative_to(stockage.racine)) for p in stockage.racine.rglob("*") if p.is_file())
    assert isinstance(stockage, StockageS3)
    client = await stockage.client()
    objets = await client.list_objects_v2(Bucket=stockage.bucket, Prefix=stockage.prefixe)
    envois = await client.list_multipart_uploads(Bucket=stockage.bucket, Prefix=stockage.prefixe)
    return sorted(o["Key"] for o in objets.get("Contents", [])) + [
        f"envoi inachevé {u['Key']}" for u in envois.get("Uploads", [])
    ]


async def lire(stockage: Stockage, cle: str) -> bytes:
    return b"".join([morceau async for morceau in stockage.lire_flux(cle)])


async def test_ecrire_lire_supprimer(stockage: Stockage, pdf: bytes) -> None:
    fichier = await stockage.ecrire(pdf)

    assert len(fichier.cle) == 32 and fichier.taille == len(pdf)
    assert await stockage.taille(fichier.cle) == len(pdf)
    assert await lire(stockage, fichier.cle) == pdf
    assert [o.cle async for o in stockage.lister()] == [fichier.cle]

    await stockage.supprimer(fichier.cle)
    assert await stockage.taille(fichier.cle) is None
    assert await restes(stockage) == []
    await stockage.supprimer(fichier.cle)  # already gone: not an error


async def test_cles_generees_jamais_le_nom(stockage: Stockage, pdf: bytes) -> None:
    premiere, seconde = await stockage.ecrire(pdf), await stockage.ecrire(pdf)
    assert premiere.cle != seconde.cle
    with pytest.raises(ValueError, match="clé de stockage invalide"):
        await stockage.taille("../../etc/passwd")


async def test_trop_grand_refuse_en_cours_de_flux_sans_reste(stockage: Stockage, pdf: bytes) -> None:
    # Past one part: on S3 the multipart upload has started when the limit is crossed.
    flux = Flux(pdf, 12 * MIO)
    with pytest.raises(PieceTropGrande, match="6 Mo"):
        await stockage.ecrire_flux(flux, taille_max=6 * MIO)

    assert flux.lus < flux.morceaux_total  # refused mid-stream, not after reading it all
    assert await restes(stockage) == []


async def test_pas_un_pdf_refuse_des_les_premiers_octets(stockage: Stockage) -> None:
    flux = Flux(b"MZ\x90\x00 un executable", 8 * MIO)
    with pytest.raises(TypeDeContenuRefuse, match="PDF"):
        await stockage.ecrire_flux(flux, taille_max=10 * MIO)

    assert flux.lus == 1
    assert await restes(stockage) == []


async def test_vide_refuse(stockage: Stockage) -> None:
    with pytest.raises(TypeDeContenuRefuse, match="vide"):
        await stockage.ecrire(b"")
    assert await restes(stockage) == []


async def test_gros_document_ecrit_par_parts_et_relu_en_flux(stockage: Stockage, pdf: bytes) -> None:
    # Two full parts and a short last one on S3.
    flux = Flux(pdf, 2 * TAILLE_PART_MIN + 123_457)
    fichier = await stockage.ecrire_flux(flux, taille_max=20 * MIO)

    assert fichier.taille == len(flux.contenu)
    assert await stockage.taille(fichier.cle) == len(flux.contenu)
    morceaux = [m async for m in stockage.lire_flux(fichier.cle)]
    assert len(morceaux) > 1  # streamed, not one read of the whole document
    assert b"".join(morceaux) == flux.contenu
    assert len(await restes(stockage)) == 1  # the document, no pending upload beside it
    if isinstance(stockage, StockageS3):
        client = await stockage.client()
        objet = await client.head_object(Bucket=stockage.bucket, Key=stockage.nom_objet(fichier.cle))
        assert objet["ETag"].strip('"').endswith("-3")  # S3's mark of a three-part upload


async def test_petit_document_envoye_en_une_fois(stockage: Stockage, pdf: bytes) -> None:
    flux = Flux(pdf, TAILLE_PART_MIN - 1)
    fichier = await stockage.ecrire_flux(flux, taille_max=None)
    assert await lire(stockage, fichier.cle) == flux.contenu
    if isinstance(stockage, StockageS3):
        client = await stockage.client()
        objet = await client.head_object(Bucket=stockage.bucket, Key=stockage.nom_objet(fichier.cle))
        assert "-" not in objet["ETag"]
        assert objet["ContentType"] == "application/pdf"


async def test_echec_du_flux_source_ne_laisse_rien(stockage: Stockage, pdf: bytes) -> None:
    """The client's connection breaks mid-upload: the partial file or upload goes."""

    async def coupe() -> AsyncIterator[bytes]:
        async for morceau in Flux(pdf, TAILLE_PART_MIN + MIO):
            yield morceau
        raise ConnectionResetError("connexion perdue")

    with pytest.raises(ConnectionResetError):
        await stockage.ecrire_flux(coupe(), taille_max=None)
    assert await restes(stockage) == []


async def test_balayage_signale_et_supprime_les_seuls_orphelins_anciens(
    stockage: Stockage, factory: SessionFactory, demande: Demande, pdf: bytes
) -> None:
    async with factory() as session:
        referencees = set((await session.exec(select(Piece.cle_stockage))).all())
    assert referencees and {o.cle async for o in stockage.lister()} == referencees
    orphelin = await stockage.ecrire(pdf)

    # Just written: it may belong to a transaction under way, so it is not reported yet.
    assert await fichiers_orphelins(factory, stockage) == []
    dans_deux_jours = maintenant() + timedelta(days=2)
    trouves = await fichiers_orphelins(factory, stockage, le=dans_deux_jours)
    assert [o.cle for o in trouves] == [orphelin.cle]

    lignes = await supprimer_orphelins(factory, stockage, trouves)

    assert lignes == [f"Fichier {orphelin.cle} supprimé (aucune pièce ne le référençait)."]
    assert await stockage.taille(orphelin.cle) is None
    assert {o.cle async for o in stockage.lister()} == referencees
    assert await fichiers_orphelins(factory, stockage, le=dans_deux_jours) == []


async def test_balayage_abandonne_les_envois_inacheves_anciens(stockage: Stockage, pdf: bytes) -> None:
    """A process killed mid-upload leaves a temporary file, or an S3 multipart upload never
    completed nor aborted: the sweep finds it once a day old and removes it."""
    complet = await stockage.ecrire(pdf)
    cle = "0123456789abcdef0123456789abcdef"
    if isinstance(stockage, StockageDossier):
        stockage.chemin(cle).parent.mkdir(parents=True, exist_ok=True)
        stockage.chemin(cle).with_suffix(".partiel").write_bytes(pdf[:100])
    else:
        assert isinstance(stockage, StockageS3)
        client = await stockage.client()
        envoi = await client.create_multipart_upload(Bucket=stockage.bucket, Key=stockage.nom_objet(cle))
        await client.upload_part(
            Bucket=stockage.bucket,
            Key=stockage.nom_objet(cle),
            UploadId=envoi["UploadId"],
            PartNumber=1,
            Body=pdf,
        )
    assert len(await restes(stockage)) == 2

    if isinstance(stockage, StockageDossier):
        # Just begun: it may still be under way. (moto gives every multipart upload the same
        # start date, in 2010, so this half is checked on the folder only.)
        assert await envois_inacheves(stockage) == []
    trouves = await envois_inacheves(stockage, le=maintenant() + timedelta(days=2))
    assert [e.cle for e in trouves] == [cle]
    assert await abandonner_envois(stockage, trouves) == [f"Envoi inachevé de la pièce {cle} abandonné."]

    assert await restes(stockage) == (
        [f"{complet.cle[:2]}/{complet.cle}"]
        if isinstance(stockage, StockageDossier)
        else [stockage.nom_objet(complet.cle)]  # type: ignore[attr-defined]
    )
    assert await envois_inacheves(stockage, le=maintenant() + timedelta(days=2)) == []


SECRET_PROD = "un-secret-de-production-de-32-caracteres-au-moins"


def test_le_stockage_suit_les_reglages(tmp_path: Any) -> None:
    dossier = ouvrir_stockage(Settings(ENVIRONNEMENT="developpement", STORAGE_DIR=tmp_path / "a"))
    assert isinstance(dossier, StockageDossier) and dossier.racine == tmp_path / "a"
    fichier = ouvrir_stockage(Settings(ENVIRONNEMENT="developpement", STORAGE_URL=f"file://{tmp_path}/b"))
    assert isinstance(fichier, StockageDossier) and fichier.racine == tmp_path / "b"
    s3 = ouvrir_stockage(
        Settings(
            ENVIRONNEMENT="developpement",
            STORAGE_URL="s3://documents/modif-solde/pieces",
            S3_ENDPOINT_URL="http://127.0.0.1:9000",
        )
    )
    assert isinstance(s3, StockageS3)
    assert (s3.bucket, s3.prefixe, s3.endpoint_url) == (
        "documents",
        "modif-solde/pieces/",
        "http://127.0.0.1:9000",
    )
    assert s3.nom_objet("0" * 32) == f"modif-solde/pieces/{'0' * 32}"


@pytest.mark.parametrize("url", ["ftp://serveur/pieces", "s3://", "pieces", "file://hote/chemin"])
def test_adresse_de_stockage_invalide_refusee(url: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Settings(ENVIRONNEMENT="developpement", STORAGE_URL=url)
    assert decrire_erreurs(exc.value)[0].startswith("MODIF_SOLDE_STORAGE_URL : ")


def test_production_refuse_s3_sans_cles() -> None:
    s3 = {"ENVIRONNEMENT": "production", "JWT_SECRET": SECRET_PROD, "STORAGE_URL": "s3://documents"}
    with pytest.raises(ValidationError, match="MODIF_SOLDE_S3_SECRET_ACCESS_KEY"):
        Settings(**s3, S3_ACCESS_KEY_ID="modif-solde")
    with pytest.raises(ValidationError, match="MODIF_SOLDE_S3_ACCESS_KEY_ID"):
        Settings(**s3, S3_SECRET_ACCESS_KEY="secret")
    assert Settings(**s3, S3_ACCESS_KEY_ID="modif-solde", S3_SECRET_ACCESS_KEY="secret").STORAGE_URL
    # The folder needs no key; nor does development (the SDK's usual sources then apply).
    assert Settings(ENVIRONNEMENT="production", JWT_SECRET=SECRET_PROD).STORAGE_URL == ""
    assert Settings(ENVIRONNEMENT="developpement", STORAGE_URL="s3://documents").S3_ACCESS_KEY_ID == ""


def test_part_sous_le_minimum_de_s3_refusee() -> None:
    with pytest.raises(ValidationError, match="S3_TAILLE_PART"):
        Settings(ENVIRONNEMENT="developpement", S3_TAILLE_PART=TAILLE_PART_MIN - 1)
