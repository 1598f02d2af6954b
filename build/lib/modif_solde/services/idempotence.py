"""Idempotency keys of the workflow's actions: one key, one action (and its content) on one
modification."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models.tables import IdempotenceAction
from modif_solde.services.erreurs import Conflit

ENTETE = "Idempotency-Key"


def empreinte(argument: BaseModel) -> str:
    """The action's content: the same key sent again with other content is another action."""
    return hashlib.sha256(argument.model_dump_json().encode()).hexdigest()


async def reserver(
    session: AsyncSession, cle: str, modification_numero: str, action: str, par: str, argument: BaseModel
) -> None:
    """Record that `cle` names this action, or check that it already did. A key that served
    another action, modification, caller or content is refused (without saying which)."""
    contenu = empreinte(argument)
    existante = await session.get(IdempotenceAction, cle)
    if existante is None:
        try:
            # A savepoint: two first uses of one key at once, the second reads the first's.
            async with session.begin_nested():
                session.add(
                    IdempotenceAction(
                        cle=cle,
                        modification_numero=modification_numero,
                        action=action,
                        par=par,
                        empreinte=contenu,
                    )
                )
            return
        except IntegrityError:
            existante = await session.get_one(IdempotenceAction, cle, populate_existing=True)
    if (existante.modification_numero, existante.action, existante.par, existante.empreinte) != (
        modification_numero,
        action,
        par,
        contenu,
    ):
        raise Conflit(
            f"Cette clé « {ENTETE} » a déjà servi pour une autre action : donnez une clé nouvelle à chaque action."
        )


def id_mise_a_jour(action: str, cle: str | None) -> str | None:
    """The Temporal update id: Temporal answers a second update of the same id with the first
    one's outcome, even once the workflow has ended."""
    return f"{action}:{cle}" if cle else None
