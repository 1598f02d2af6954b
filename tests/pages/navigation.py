"""Helpers for the browser tests: axe-core, the provider's login page, keyboard navigation."""

from __future__ import annotations

import re
from typing import Any

from axe_playwright_python.async_playwright import Axe

# WCAG 2.1 A and AA, and axe's best practices.
REGLES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}
_axe = Axe()


async def sans_violation(page: Any, etat: str) -> None:
    """axe-core on the page as it is now (axe skips what is hidden: open it first)."""
    resultats = await _axe.run(page, options={**REGLES, "resultTypes": ["violations"]})
    assert resultats.violations_count == 0, f"{etat} ({page.url}) :\n{resultats.generate_report()}"


async def choisir_identite(page: Any, sub: str) -> None:
    """On the local provider's authorization page, the demo identity's button."""
    await page.get_by_role("button", name=sub, exact=True).click()


async def tabuler_jusqua(page: Any, role: str, nom: str | re.Pattern[str], maximum: int = 80) -> None:
    """Press Tab until the focused element is the control named `nom` (keyboard only)."""
    for _ in range(maximum):
        await page.keyboard.press("Tab")
        cible = page.get_by_role(role, name=nom)
        if await cible.count() and await cible.first.evaluate("e => e === document.activeElement"):
            return
    raise AssertionError(f"« {nom} » n'est pas atteignable au clavier sur {page.url}")
