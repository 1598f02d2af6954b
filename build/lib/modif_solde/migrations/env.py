"""Alembic environment: runs the migrations on the service's own (async) engine."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from modif_solde.db import create_engine
from modif_solde.migrations import TABLE_VERSION, droits
from modif_solde.models import tables  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # One migration at a time; the revision is read once the lock is held.
            droits.verrouiller(connection)
        context.run_migrations()
        role = config.attributes.get("role_application")
        if role and connection.dialect.name == "postgresql":
            config.attributes.setdefault("rapport", []).extend(
                droits.accorder(connection, role, TABLE_VERSION)
            )


async def _run_async() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
