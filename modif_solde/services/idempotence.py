"""Idempotency keys of the workflow's actions: one key, one action on one modification."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models.tables import IdempotenceAction
from modif_solde.services.erreurs import DonneesInvalides

ENTETE = "Idempotency-Key"


async def reserver(session: AsyncSession, cle: str, modification_numero: str, action: str, par: str) -> None:
    """Record that `cle` names this action, or check that it already did. A key that served
    another action, modification or caller is refused (without saying which)."""
    existante = await session.get(IdempotenceAction, cle)
    if existante is None:
        try:
            # A savepoint: two first uses of one key at once, the second reads the first's.
            async with session.begin_nested():
                session.add(
                    IdempotenceAction(
                        cle=cle, modification_numero=modification_numero, action=action, par=par
                    )
                )
            return
        except IntegrityError:
            existante = await session.get_one(IdempotenceAction, cle, populate_existing=True)
    if (existante.modification_numero, existante.action, existante.par) != (modification_numero, action, par):
        message = (
            f"Le champ « {ENTETE} » a déjà servi pour une autre action : "
            "donnez une clé nouvelle à chaque action."
        )
        raise DonneesInvalides(message, [{"champ": ENTETE, "message": message}])


def id_mise_a_jour(action: str, cle: str | None) -> str | None:
    """The Temporal update id: Temporal answers a second update of the same id with the first
    one's outcome, even once the workflow has ended."""
    return f"{action}:{cle}" if cle else None
