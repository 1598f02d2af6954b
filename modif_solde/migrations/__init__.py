"""Alembic migrations of the service's tables."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_ICI = Path(__file__).parent


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_ICI))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrer(url: str) -> None:
    """Bring the database at `url` to the latest schema (safe to run at every start)."""
    command.upgrade(alembic_config(url), "head")
