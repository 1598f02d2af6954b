"""What the gestionnaire expects of a modification round (champs attendus: editable fields and
« pieces »), and what of it the operator has done so far in this round: a field is done when
the draft changes it, « pieces » when a document was added in this round. A warning and a
reminder's content, never a block: the guide lets the operator confirm anyway."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models.tables import Modification, Piece

PIECES = "pieces"


@dataclass(frozen=True)
class ElementAttendu:
    champ: str
    fait: bool


def etat(
    champs_attendus: Iterable[str], champs_modifies: Iterable[str], pieces_ajoutees: int
) -> list[ElementAttendu]:
    """Each expected item, in the gestionnaire's order, done or still to do."""
    modifies = set(champs_modifies)
    return [
        ElementAttendu(champ=c, fait=pieces_ajoutees > 0 if c == PIECES else c in modifies)
        for c in champs_attendus
    ]


def restants(elements: Iterable[ElementAttendu]) -> list[str]:
    """The items still to do."""
    return [e.champ for e in elements if not e.fait]


async def etat_modification(session: AsyncSession, modification: Modification) -> list[ElementAttendu]:
    """The round's expected items against its draft and the documents it added, read now."""
    pieces = (
        await session.exec(
            select(func.count()).select_from(Piece).where(Piece.modification_id == modification.id)
        )
    ).one()
    return etat(modification.champs_attendus, modification.brouillon, pieces)
