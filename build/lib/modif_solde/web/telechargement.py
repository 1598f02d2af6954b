"""A document's download, the same answer for the API and the portal."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.responses import StreamingResponse
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models.tables import Piece
from modif_solde.services.demandes import charger_demande
from modif_solde.services.erreurs import Introuvable
from modif_solde.services.stockage import Stockage


async def telecharger_piece(
    session: AsyncSession, stockage: Stockage, numero: str, piece_id: str, siret: str | None
) -> StreamingResponse:
    demande = await charger_demande(session, numero, siret)
    piece = (
        await session.exec(select(Piece).where(Piece.id == piece_id, Piece.demande_id == demande.id))
    ).first()
    if piece is None:
        raise Introuvable(f"La pièce {piece_id} est introuvable.")
    taille = await stockage.taille(piece.cle_stockage)
    if taille is None:
        raise Introuvable(f"Le fichier de la pièce {piece_id} est introuvable.")
    # Streamed from the store (folder or S3) to the client, never whole in memory.
    return StreamingResponse(
        stockage.lire_flux(piece.cle_stockage),
        media_type=piece.type_contenu,
        headers={
            "Content-Length": str(taille),
            # The user's name is only ever a display name: ASCII fallback plus RFC 5987 UTF-8 form.
            "Content-Disposition": disposition(piece.nom_fichier),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


def disposition(nom: str) -> str:
    ascii_seul = (
        "".join(c if c.isascii() and (c.isalnum() or c in "._- ") else "_" for c in nom) or "piece.pdf"
    )
    return f"attachment; filename=\"{ascii_seul}\"; filename*=UTF-8''{quote(nom, safe='')}"
