"""Temporal workflows: deterministic code, no I/O, no database or SMTP imports."""
