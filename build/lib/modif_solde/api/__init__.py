"""The HTTP API for the portal and the gestionnaires (FastAPI)."""
