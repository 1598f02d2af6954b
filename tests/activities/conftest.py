"""The activities run outside any worker (ActivityEnvironment), against the real databases and
the real SMTP server of the workflow tests."""

from __future__ import annotations

from tests.workflows.conftest import activites, serveur_smtp, smtp  # noqa: F401
