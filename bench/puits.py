"""The bench's SMTP sink: records when each message arrives, by its X-Modif-Solde-Cle header."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
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
        # Who waits in `attendre`: woken at each arrival (the sink runs in aiosmtpd's thread).
        self._attentes: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._verrou = threading.Lock()

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
        with self._verrou:
            attentes = list(self._attentes)
        for boucle, arrivee_signalee in attentes:
            boucle.call_soon_threadsafe(arrivee_signalee.set)
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
        """Wait until every key arrived or `delai` passed; answers the keys still missing. A wait
        for a few keys is woken by each arrival (no polling interval added to what is timed, as
        in the 20-day cycle); a wait for many looks every 50 ms (not at each of thousands)."""
        restantes = list(cles)
        limite = time.monotonic() + delai
        attente = (asyncio.get_running_loop(), asyncio.Event())
        with self._verrou:
            self._attentes.add(attente)
        try:
            while True:
                attente[1].clear()
                restantes = self.manquantes(restantes)
                reste = limite - time.monotonic()
                if not restantes or reste <= 0:
                    return restantes
                if len(restantes) > 10:
                    await asyncio.sleep(min(0.05, reste))
                    continue
                try:
                    await asyncio.wait_for(attente[1].wait(), timeout=reste)
                except TimeoutError:
                    pass
        finally:
            with self._verrou:
                self._attentes.discard(attente)
