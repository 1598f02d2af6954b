"""The documents in an S3-compatible object store (AWS S3, MinIO, Garage, Scaleway, OVH…),
through aiobotocore: uploads streamed (one PUT for a small document, a multipart upload past
one part), downloads streamed, nothing left behind by a refused or failed upload."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from modif_solde.services.erreurs import StockageIndisponible
from modif_solde.services.stockage import (
    MORCEAU_LECTURE,
    EnvoiInacheve,
    FichierStocke,
    ObjetStocke,
    Stockage,
    _Controle,
    nouvelle_cle,
    verifier_cle,
)

journal = logging.getLogger(__name__)

# S3 refuses parts under 5 MiB (except the last one).
TAILLE_PART_MIN = 5 * 1024 * 1024
TYPE_CONTENU = "application/pdf"


class StockageS3(Stockage):
    def __init__(
        self,
        bucket: str,
        prefixe: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        cle_acces: str | None = None,
        secret: str | None = None,
        taille_part: int = 8 * 1024 * 1024,
    ) -> None:
        if taille_part < TAILLE_PART_MIN:
            raise ValueError("la taille d'une part d'envoi S3 est de 5 Mio au moins")
        self.bucket = bucket
        self.prefixe = f"{prefixe.strip('/')}/" if prefixe.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.cle_acces = cle_acces
        self.secret = secret
        self.taille_part = taille_part
        self._contexte: AbstractAsyncContextManager[Any] | None = None
        self._client: Any = None
        self._verrou = asyncio.Lock()

    def nom_objet(self, cle: str) -> str:
        return f"{self.prefixe}{verifier_cle(cle)}"

    async def client(self) -> Any:
        """One client (one connection pool) per store, opened at first use, in the running loop."""
        if self._client is None:
            async with self._verrou:
                if self._client is None:
                    config = AioConfig(
                        # A self-hosted store behind a plain host name: bucket in the path.
                        s3={"addressing_style": "path" if self.endpoint_url else "auto"},
                        # Checksums only where S3 requires them: every compatible store accepts that.
                        request_checksum_calculation="when_required",
                        response_checksum_validation="when_required",
                        retries={"max_attempts": 3, "mode": "standard"},
                    )
                    contexte = get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        region_name=self.region,
                        aws_access_key_id=self.cle_acces,
                        aws_secret_access_key=self.secret,
                        config=config,
                    )
                    self._client = await contexte.__aenter__()
                    self._contexte = contexte
        return self._client

    async def fermer(self) -> None:
        if self._contexte is not None:
            contexte, self._contexte, self._client = self._contexte, None, None
            await contexte.__aexit__(None, None, None)

    async def ecrire_flux(self, morceaux: AsyncIterable[bytes], taille_max: int | None) -> FichierStocke:
        """Memory bounded by the part size, not the document's (the buffer and the part on its
        way): a document smaller than a part is buffered then sent in one PUT; a larger one goes
        as a multipart upload, aborted on any refusal or failure."""
        client = await self.client()
        cle = nouvelle_cle()
        objet = self.nom_objet(cle)
        controle = _Controle(taille_max)
        tampon = bytearray()
        envoi: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            async for morceau in morceaux:
                controle.ajouter(morceau)
                tampon += morceau
                while len(tampon) >= self.taille_part:
                    if envoi is None:
                        reponse = await _s3(
                            client.create_multipart_upload(
                                Bucket=self.bucket, Key=objet, ContentType=TYPE_CONTENU
                            )
                        )
                        envoi = reponse["UploadId"]
                    with memoryview(tampon) as vue:
                        part = bytes(vue[: self.taille_part])  # one copy, not two
                    del tampon[: self.taille_part]
                    await self._envoyer_part(client, objet, envoi, parts, part)
                    del part
            controle.terminer()
            if envoi is None:
                await _s3(
                    client.put_object(
                        Bucket=self.bucket, Key=objet, Body=bytes(tampon), ContentType=TYPE_CONTENU
                    )
                )
            else:
                if tampon:
                    await self._envoyer_part(client, objet, envoi, parts, bytes(tampon))
                await _s3(
                    client.complete_multipart_upload(
                        Bucket=self.bucket, Key=objet, UploadId=envoi, MultipartUpload={"Parts": parts}
                    )
                )
        except BaseException:
            if envoi is not None:
                # Shielded: a cancelled request still aborts its upload (no part left billed).
                with anyio.CancelScope(shield=True):
                    await self._abandonner(client, objet, envoi)
            raise
        return controle.fichier(cle)

    async def _envoyer_part(
        self, client: Any, objet: str, envoi: str, parts: list[dict[str, Any]], contenu: bytes
    ) -> None:
        numero = len(parts) + 1
        reponse = await _s3(
            client.upload_part(Bucket=self.bucket, Key=objet, UploadId=envoi, PartNumber=numero, Body=contenu)
        )
        parts.append({"PartNumber": numero, "ETag": reponse["ETag"]})

    async def _abandonner(self, client: Any, objet: str, envoi: str) -> None:
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=objet, UploadId=envoi)
        except Exception:
            journal.warning(
                "envoi S3 inachevé non abandonné : la règle de cycle de vie du bucket doit l'effacer",
                extra={"objet": objet},
                exc_info=True,
            )

    async def taille(self, cle: str) -> int | None:
        client = await self.client()
        try:
            reponse = await _s3(client.head_object(Bucket=self.bucket, Key=self.nom_objet(cle)))
        except StockageIndisponible as err:
            if isinstance(err.__cause__, ClientError) and _introuvable(err.__cause__):
                return None
            raise
        return int(reponse["ContentLength"])

    async def lire_flux(self, cle: str) -> AsyncIterator[bytes]:
        client = await self.client()
        reponse = await _s3(client.get_object(Bucket=self.bucket, Key=self.nom_objet(cle)))
        async with reponse["Body"] as corps:
            while morceau := await _s3(corps.read(MORCEAU_LECTURE)):
                yield morceau

    async def supprimer(self, cle: str) -> None:
        client = await self.client()
        await _s3(client.delete_object(Bucket=self.bucket, Key=self.nom_objet(cle)))

    async def lister(self) -> AsyncIterator[ObjetStocke]:
        client = await self.client()
        pages = aiter(
            client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefixe)
        )
        while (page := await _s3(anext(pages, None))) is not None:
            for objet in page.get("Contents", []):
                cle = objet["Key"][len(self.prefixe) :]
                try:
                    verifier_cle(cle)
                except ValueError:
                    continue  # not one of the service's documents
                yield ObjetStocke(cle, objet["LastModified"])

    async def envois_inacheves(self) -> AsyncIterator[EnvoiInacheve]:
        client = await self.client()
        pages = aiter(
            client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefixe)
        )
        while (page := await _s3(anext(pages, None))) is not None:
            for envoi in page.get("Uploads", []):
                cle = envoi["Key"][len(self.prefixe) :]
                try:
                    verifier_cle(cle)
                except ValueError:
                    continue
                yield EnvoiInacheve(cle, envoi["Initiated"], envoi["UploadId"])

    async def abandonner(self, envoi: EnvoiInacheve) -> None:
        client = await self.client()
        try:
            await _s3(
                client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self.nom_objet(envoi.cle), UploadId=envoi.ident
                )
            )
        except StockageIndisponible as err:
            if not (isinstance(err.__cause__, ClientError) and _introuvable_envoi(err.__cause__)):
                raise


def _introuvable_envoi(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in ("404", "NoSuchUpload")


async def _s3(appel: Awaitable[Any]) -> Any:
    """One call to the store: what fails on its side (unreachable, refusing our keys, no such
    bucket) becomes StockageIndisponible (503), the cause kept for the log."""
    try:
        return await appel
    except (ClientError, BotoCoreError, aiohttp.ClientError, OSError, TimeoutError) as err:
        raise StockageIndisponible(f"stockage S3 : {err}") from err


def _introuvable(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")
