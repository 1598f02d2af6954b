"""Temporal activities: classes with injected dependencies over the services."""
