"""The bench's SMTP sink: records when each message arrives, by its X-Modif-Solde-Cle header."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from aiosmtpd.controller import Controller

_CLE = re.compile(rb"^X-Modif-Solde-Cle:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)


class PuitsHorodate:
    """Keeps only (key → arrival, monotonic clock) so that 10,000 messages cost little. The
    clock is the bench process's own, the same the API calls are timed with."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.arrivees: dict[str, float] = {}
        self.sans_cle = 0
        self.doublons = 0
        self._controller = Controller(self, hostname="127.0.0.1", port=port, ready_timeout=15)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        arrivee = time.monotonic()
        trouve = _CLE.search(envelope.content)
        if trouve is None:
            self.sans_cle += 1
        else:
            cle = trouve.group(1).decode()
            if cle in self.arrivees:
                self.doublons += 1
            else:
                self.arrivees[cle] = arrivee
        return "250 OK"

    def demarrer(self) -> PuitsHorodate:
        # aiosmtpd logs every session at INFO: 20,000 lines of noise.
        for nom in ("mail.log", "aiosmtpd"):
            logging.getLogger(nom).setLevel(logging.WARNING)
        self._controller.start()
        return self

    def arreter(self) -> None:
        self._controller.stop()

    def manquantes(self, cles: Iterable[str]) -> list[str]:
        return [c for c in cles if c not in self.arrivees]

    async def attendre(self, cles: Iterable[str], delai: float) -> list[str]:
        """Wait until every key arrived or `delai` passed; answers the keys still missing."""
        restantes = list(cles)
        limite = time.monotonic() + delai
        while True:
            restantes = self.manquantes(restantes)
            if not restantes or time.monotonic() > limite:
                return restantes
            await asyncio.sleep(0.05)
