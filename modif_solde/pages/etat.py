"""What the pages read of the application's state, in one place: the settings, the read-only
sessions and the use cases (services/cycle.py)."""

from __future__ import annotations

from fastapi import Request

from modif_solde.config import Settings
from modif_solde.db import SessionFactory
from modif_solde.services.cycle import Cycle


def reglages(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def lecture_seule(request: Request) -> SessionFactory:
    sessions: SessionFactory = request.app.state.sessions_lecture
    return sessions


def ecriture(request: Request) -> SessionFactory:
    sessions: SessionFactory = request.app.state.sessions
    return sessions


def cycle(request: Request) -> Cycle:
    use_cases: Cycle = request.app.state.cycle
    return use_cases
