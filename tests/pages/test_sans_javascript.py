"""With JavaScript off, every page and state of both roles is read and used: what a person must
read there is drawn on the screen (not merely in the HTML), every action a post/redirect/get."""

from __future__ import annotations

from typing import Any

from modif_solde.db import SessionFactory
from modif_solde.models.tables import Demande
from tests.pages.parcours import Parcours, parcourir
from tests.workflows.conftest import ServeurSmtp


async def test_every_page_and_state_reads_and_works_without_javascript(
    serveur_portail: str,
    navigateur: Any,
    smtp: ServeurSmtp,
    factory: SessionFactory,
    demande: Demande,
    pdf: bytes,
) -> None:
    parcours = Parcours()
    await parcourir(parcours, navigateur, serveur_portail, smtp, factory, pdf)
    assert len(parcours.pages) >= 30, sorted(parcours.pages)
