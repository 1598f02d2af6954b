"""The Alembic migrations produce exactly the tables the SQLModel models describe, on both databases."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from modif_solde.models import tables  # noqa: F401  (registers the tables)


def _differences(connection: Any) -> list[Any]:
    contexte = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(contexte, SQLModel.metadata))


async def test_les_migrations_et_les_modeles_concordent(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        differences = await conn.run_sync(_differences)
    assert differences == []
