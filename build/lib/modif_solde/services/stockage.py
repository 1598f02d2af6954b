"""Document files, kept by a generated key, never by the user's file name: one interface,
two places — a local folder (the embedded default) or an S3-compatible object store
(production)."""

from __future__ import annotations

import hashlib
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio

from modif_solde.models.schemas import PDF_MAGIC
from modif_solde.services.erreurs import PieceTropGrande, TypeDeContenuRefuse

if TYPE_CHECKING:
    from modif_solde.config import Settings

# The first bytes where a PDF's signature must appear (as `schemas.verifier_pdf` reads it).
DEBUT_VERIFIE = 1024
MORCEAU_LECTURE = 64 * 1024


@dataclass(frozen=True)
class FichierStocke:
    cle: str
    taille: int
    sha256: str


@dataclass(frozen=True)
class ObjetStocke:
    """A stored document as the sweep sees it: its key and when it was last written."""

    cle: str
    modifie_le: datetime


@dataclass(frozen=True)
class EnvoiInacheve:
    """A write that never finished (its process killed mid-upload): a `.partiel` file, or an S3
    multipart upload neither completed nor aborted."""

    cle: str
    commence_le: datetime
    ident: str  # the upload's id (S3) or the temporary file's name (folder)


def verifier_cle(cle: str) -> str:
    # Keys are generated hex strings; anything else is refused rather than joined to a path.
    if len(cle) != 32 or not all(c in "0123456789abcdef" for c in cle):
        raise ValueError("clé de stockage invalide")
    return cle


def nouvelle_cle() -> str:
    return uuid.uuid4().hex


class _Controle:
    """What every write checks while the bytes come: the size against the limit at each chunk,
    the content by its first bytes as soon as they are there (a non-PDF is refused before
    anything large is stored), and the digest."""

    def __init__(self, taille_max: int | None) -> None:
        self.taille_max = taille_max
        self.taille = 0
        self.debut = b""
        self.debut_verifie = False
        self.empreinte = hashlib.sha256()

    def ajouter(self, morceau: bytes) -> None:
        self.taille += len(morceau)
        if self.taille_max is not None and self.taille > self.taille_max:
            raise PieceTropGrande(
                f"La pièce dépasse la taille maximale de {self.taille_max // (1024 * 1024)} Mo."
            )
        if not self.debut_verifie:
            self.debut += morceau[: DEBUT_VERIFIE - len(self.debut)]
            if len(self.debut) >= DEBUT_VERIFIE:
                self._verifier_debut()
        self.empreinte.update(morceau)

    def _verifier_debut(self) -> None:
        if PDF_MAGIC not in self.debut:
            raise TypeDeContenuRefuse(
                "Seuls les documents PDF sont acceptés : le contenu de ce fichier n'est pas un PDF."
            )
        self.debut_verifie = True

    def terminer(self) -> None:
        if self.taille == 0:
            raise TypeDeContenuRefuse("Le fichier est vide.")
        if not self.debut_verifie:
            self._verifier_debut()

    def fichier(self, cle: str) -> FichierStocke:
        return FichierStocke(cle=cle, taille=self.taille, sha256=self.empreinte.hexdigest())


class Stockage(ABC):
    """Where the documents' bytes live. A write is checked while it streams (size, PDF content)
    and its key exists only once it is complete and accepted; a refused or failed write leaves
    nothing behind."""

    async def ecrire(self, contenu: bytes) -> FichierStocke:
        async def morceaux() -> AsyncIterator[bytes]:
            yield contenu

        return await self.ecrire_flux(morceaux(), taille_max=None)

    @abstractmethod
    async def ecrire_flux(self, morceaux: AsyncIterable[bytes], taille_max: int | None) -> FichierStocke: ...

    @abstractmethod
    async def taille(self, cle: str) -> int | None:
        """The stored size, or None when there is no document under this key."""

    @abstractmethod
    def lire_flux(self, cle: str) -> AsyncIterator[bytes]:
        """The content, chunk by chunk (never the whole document in memory)."""

    @abstractmethod
    async def supprimer(self, cle: str) -> None:
        """Delete; a key already gone is not an error."""

    @abstractmethod
    def lister(self) -> AsyncIterator[ObjetStocke]:
        """Every stored document (complete ones only), for the sweep of unreferenced files."""

    @abstractmethod
    def envois_inacheves(self) -> AsyncIterator[EnvoiInacheve]:
        """The writes left unfinished, for the sweep."""

    @abstractmethod
    async def abandonner(self, envoi: EnvoiInacheve) -> None:
        """Remove what an unfinished write left."""

    async def fermer(self) -> None:
        """Release connections (the S3 client); the folder holds none."""
        return None


class StockageDossier(Stockage):
    """A local folder: `<racine>/<2 first hex digits>/<key>`, written through a temporary
    file renamed into place once complete."""

    def __init__(self, racine: Path) -> None:
        self.racine = Path(racine)

    def chemin(self, cle: str) -> Path:
        verifier_cle(cle)
        return self.racine / cle[:2] / cle

    async def ecrire_flux(self, morceaux: AsyncIterable[bytes], taille_max: int | None) -> FichierStocke:
        cle = nouvelle_cle()
        final = self.chemin(cle)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporaire = final.with_suffix(".partiel")
        controle = _Controle(taille_max)
        try:
            async with await anyio.open_file(temporaire, "wb") as sortie:
                async for morceau in morceaux:
                    controle.ajouter(morceau)
                    await sortie.write(morceau)
            controle.terminer()
            os.replace(temporaire, final)
        except BaseException:
            temporaire.unlink(missing_ok=True)
            raise
        return controle.fichier(cle)

    def lire(self, cle: str) -> bytes:
        return self.chemin(cle).read_bytes()

    async def taille(self, cle: str) -> int | None:
        try:
            return self.chemin(cle).stat().st_size
        except FileNotFoundError:
            return None

    async def lire_flux(self, cle: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.chemin(cle), "rb") as entree:
            while morceau := await entree.read(MORCEAU_LECTURE):
                yield morceau

    async def supprimer(self, cle: str) -> None:
        self.chemin(cle).unlink(missing_ok=True)

    async def lister(self) -> AsyncIterator[ObjetStocke]:
        if not self.racine.is_dir():
            return
        for sous_dossier in sorted(self.racine.iterdir()):
            if not sous_dossier.is_dir():
                continue
            for fichier in sorted(sous_dossier.iterdir()):
                try:
                    cle = verifier_cle(fichier.name)
                    modifie_le = datetime.fromtimestamp(fichier.stat().st_mtime, UTC)
                except (ValueError, FileNotFoundError):
                    continue  # a `.partiel` being written, or a file gone meanwhile
                if sous_dossier.name == cle[:2]:
                    yield ObjetStocke(cle, modifie_le)

    async def envois_inacheves(self) -> AsyncIterator[EnvoiInacheve]:
        for temporaire in sorted(self.racine.glob("*/*.partiel")):
            try:
                cle = verifier_cle(temporaire.stem)
                commence_le = datetime.fromtimestamp(temporaire.stat().st_mtime, UTC)
            except (ValueError, FileNotFoundError):
                continue
            yield EnvoiInacheve(cle, commence_le, temporaire.name)

    async def abandonner(self, envoi: EnvoiInacheve) -> None:
        self.chemin(envoi.cle).with_suffix(".partiel").unlink(missing_ok=True)


def ouvrir_stockage(settings: Settings) -> Stockage:
    """The storage the settings name: `MODIF_SOLDE_STORAGE_URL` empty or `file:///chemin` → a
    folder (`STORAGE_DIR` when empty); `s3://bucket/prefixe` → the object store. No connection
    is made here: the S3 client opens at first use (call `fermer()` when done)."""
    url = settings.STORAGE_URL
    if not url:
        return StockageDossier(settings.STORAGE_DIR)
    parties = urlsplit(url)
    if parties.scheme == "file":
        return StockageDossier(Path(parties.path))
    from modif_solde.services.stockage_s3 import StockageS3

    return StockageS3(
        bucket=parties.netloc,
        prefixe=parties.path.strip("/"),
        endpoint_url=settings.S3_ENDPOINT_URL or None,
        region=settings.S3_REGION,
        cle_acces=settings.S3_ACCESS_KEY_ID or None,
        secret=settings.S3_SECRET_ACCESS_KEY or None,
        taille_part=settings.S3_TAILLE_PART,
    )
