"""Document files on disk, kept by a generated key, never by the user's file name."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

import anyio

from modif_solde.models.schemas import PDF_MAGIC
from modif_solde.services.erreurs import PieceTropGrande, TypeDeContenuRefuse


@dataclass(frozen=True)
class FichierStocke:
    cle: str
    taille: int
    sha256: str


class Stockage:
    def __init__(self, racine: Path) -> None:
        self.racine = Path(racine)

    def chemin(self, cle: str) -> Path:
        # Keys are generated hex strings; anything else is refused rather than joined to a path.
        if len(cle) != 32 or not all(c in "0123456789abcdef" for c in cle):
            raise ValueError("clé de stockage invalide")
        return self.racine / cle[:2] / cle

    async def ecrire(self, contenu: bytes) -> FichierStocke:
        async def morceaux() -> AsyncIterable[bytes]:
            yield contenu

        return await self.ecrire_flux(morceaux(), taille_max=None)

    async def ecrire_flux(self, morceaux: AsyncIterable[bytes], taille_max: int | None) -> FichierStocke:
        """Stream to a temporary file, checking size as it comes and content by its first
        bytes; the file appears under its key only when complete and accepted."""
        cle = uuid.uuid4().hex
        final = self.chemin(cle)
        final.parent.mkdir(parents=True, exist_ok=True)
        temporaire = final.with_suffix(".partiel")
        empreinte = hashlib.sha256()
        taille = 0
        debut = b""
        try:
            async with await anyio.open_file(temporaire, "wb") as sortie:
                async for morceau in morceaux:
                    taille += len(morceau)
                    if taille_max is not None and taille > taille_max:
                        raise PieceTropGrande(
                            f"La pièce dépasse la taille maximale de {taille_max // (1024 * 1024)} Mo."
                        )
                    if len(debut) < 1024:
                        debut += morceau[: 1024 - len(debut)]
                    empreinte.update(morceau)
                    await sortie.write(morceau)
            if taille == 0:
                raise TypeDeContenuRefuse("Le fichier est vide.")
            if PDF_MAGIC not in debut:
                raise TypeDeContenuRefuse(
                    "Seuls les documents PDF sont acceptés : le contenu de ce fichier n'est pas un PDF."
                )
            os.replace(temporaire, final)
        except BaseException:
            temporaire.unlink(missing_ok=True)
            raise
        return FichierStocke(cle=cle, taille=taille, sha256=empreinte.hexdigest())

    def lire(self, cle: str) -> bytes:
        return self.chemin(cle).read_bytes()

    def supprimer(self, cle: str) -> None:
        self.chemin(cle).unlink(missing_ok=True)
