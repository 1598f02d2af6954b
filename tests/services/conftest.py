"""The services run against the real databases; the e-mail ones against the real SMTP server of
the workflow tests."""

from __future__ import annotations

from tests.workflows.conftest import serveur_smtp, smtp  # noqa: F401
