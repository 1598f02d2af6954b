"""The API tests' fixtures (databases, time-skipping Temporal server, SMTP server, worker)."""

from __future__ import annotations

from tests.api import conftest as api

env = api.env
serveur_smtp = api.serveur_smtp
smtp = api.smtp
activites = api.activites
banc = api.banc
settings = api.settings
