"""Alembic migrations of the service's tables: `modif-solde migrer` (one-shot, under a PostgreSQL
advisory lock, then the application role's grants) and the schema check of the API and the worker."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

_ICI = Path(__file__).parent
TABLE_VERSION = "alembic_version"


def alembic_config(url: str, role_application: str | None = None) -> Config:
    """`role_application`: the PostgreSQL role to grant read/write to once migrated (env.py)."""
    config = Config()
    config.set_main_option("script_location", str(_ICI))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["role_application"] = role_application
    config.attributes["rapport"] = []
    return config


def migrer(url: str, role_application: str | None = None) -> list[str]:
    """Bring the database at `url` to the latest schema. On PostgreSQL the whole run holds an
    advisory lock (env.py): a second `migrer` started meanwhile waits, then finds nothing to do.
    With `role_application`, that role gets read and write on the tables and sequences, and on
    those later migrations create, never the right to change the schema. Returns what it did
    beyond migrating (grants, warnings), in French."""
    config = alembic_config(url, role_application)
    command.upgrade(config, "head")
    return list(config.attributes["rapport"])


@lru_cache(maxsize=1)
def _revisions() -> tuple[str, frozenset[str]]:
    script = ScriptDirectory.from_config(alembic_config(""))
    head = script.get_current_head()
    assert head is not None
    return head, frozenset(r.revision for r in script.walk_revisions())


@dataclass(frozen=True)
class EtatSchema:
    """Where the database's schema stands against this code's migrations."""

    base: str | None  # the database's revision (None: never migrated)
    code: str  # the last migration this code knows

    @property
    def en_retard(self) -> bool:
        """Older than the code (or empty): `modif-solde migrer` has not run for this version. A
        revision the code does not know is a newer schema (a later version migrated it, the
        expand-then-contract way): not behind."""
        return self.base is None or (self.base != self.code and self.base in _revisions()[1])

    def message(self) -> str:
        if self.base is None:
            return f"base jamais migrée (schéma attendu : {self.code}) : lancez « modif-solde migrer »"
        if self.en_retard:
            return f"schéma en retard (base : {self.base}, attendu : {self.code}) : lancez « modif-solde migrer »"
        if self.base != self.code:
            return f"schéma plus récent que ce code (base : {self.base}, code : {self.code})"
        return "à jour"


def _lire_revision(connexion: Connection) -> str | None:
    if not inspect(connexion).has_table(TABLE_VERSION):
        return None
    versions = connexion.execute(text(f"SELECT version_num FROM {TABLE_VERSION}")).scalars().all()  # noqa: S608
    return ",".join(sorted(versions)) or None


async def etat_schema(engine: AsyncEngine) -> EtatSchema:
    """One short read of the revision table."""
    async with engine.connect() as connexion:
        base = await connexion.run_sync(_lire_revision)
    return EtatSchema(base=base, code=_revisions()[0])
