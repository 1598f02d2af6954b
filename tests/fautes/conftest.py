"""The fault tests run on the workflow tests' time-skipping server and databases."""

from __future__ import annotations

from tests.workflows.conftest import env  # noqa: F401
