"""SMTP servers that misbehave on loopback: real aiosmtpd servers with handlers that refuse or
stall, and a raw TCP server that accepts and never answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.workflows.conftest import BoiteAuxLettres


class BoiteQuiRefuse(BoiteAuxLettres):
    """Refuses one recipient for good (550 at RCPT), accepts every other."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse
        self.refus = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address == self.refuse:
            self.refus += 1
            return "550 5.1.1 Boîte aux lettres inconnue"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class BoiteEncombree(BoiteAuxLettres):
    """Answers 451 (temporary) at RCPT while `encombree` is set, then accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.encombree = True
        self.refus = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.encombree:
            self.refus += 1
            return "451 4.3.2 Serveur encombré, réessayez plus tard"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class BoiteLente(BoiteAuxLettres):
    """Answers every command, but each one after `pause` seconds: no single command times out,
    the whole exchange is long."""

    def __init__(self, pause: float) -> None:
        super().__init__()
        self.pause = pause

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        await asyncio.sleep(self.pause)
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        await asyncio.sleep(self.pause)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        await asyncio.sleep(self.pause)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.pause)
        return await super().handle_DATA(server, session, envelope)


@asynccontextmanager
async def serveur_muet() -> AsyncIterator[tuple[int, list[int]]]:
    """Accepts TCP connections and never says a word (not even the greeting). Yields its port
    and the list of connections it received."""
    connexions: list[int] = []
    ouvertes: list[asyncio.StreamWriter] = []

    async def accueillir(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connexions.append(len(connexions) + 1)
        ouvertes.append(writer)
        await reader.read()  # until the client gives up

    serveur = await asyncio.start_server(accueillir, "127.0.0.1", 0)
    port = serveur.sockets[0].getsockname()[1]
    try:
        yield port, connexions
    finally:
        for writer in ouvertes:
            writer.close()
        serveur.close()
        await serveur.wait_closed()
