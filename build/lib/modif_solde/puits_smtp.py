"""A local SMTP sink for development: every message accepted is kept as an .eml file."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

journal = logging.getLogger(__name__)


class Puits:
    def __init__(self, dossier: Path) -> None:
        self.dossier = dossier
        dossier.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        horodatage = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        chemin = self.dossier / f"{horodatage}-{uuid.uuid4().hex[:8]}.eml"
        chemin.write_bytes(envelope.content)
        message = message_from_bytes(envelope.content, policy=default)
        journal.info(
            "courriel reçu", extra={"a": message["To"], "sujet": message["Subject"], "fichier": str(chemin)}
        )
        return "250 Message accepté"


def demarrer(dossier: Path, hote: str = "127.0.0.1", port: int = 1025) -> Controller:
    controller = Controller(Puits(dossier), hostname=hote, port=port)
    controller.start()
    return controller


async def executer(dossier: Path, hote: str = "127.0.0.1", port: int = 1025) -> None:
    controller = demarrer(dossier, hote, port)
    journal.info("puits SMTP prêt", extra={"adresse": f"{hote}:{port}", "dossier": str(dossier)})
    try:
        await asyncio.Event().wait()
    finally:
        controller.stop()
