"""Debian's Chromium as Playwright launches it (browser tests and screenshots), kept offline."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# Keep the browser off the internet (no updates, sync or QUIC probes).
ARGUMENTS_CHROMIUM = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
MANQUE = (
    "Chromium manque : `make install` l'installe "
    "(apt-get install -y --no-install-recommends chromium fonts-liberation)."
)
