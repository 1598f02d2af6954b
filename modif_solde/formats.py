"""Dates and sizes as a French reader sees them: a leaf module (standard library only), so that
the workflow's contract, the services, the e-mails and the pages share one formatter."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

FUSEAU_PARIS = ZoneInfo("Europe/Paris")


def a_paris(instant: datetime) -> datetime:
    # A naive datetime would be silently read as UTC: refuse it rather than show a wrong hour.
    if instant.tzinfo is None:
        raise ValueError("datetime sans fuseau horaire")
    return instant.astimezone(FUSEAU_PARIS)


def format_date_fr(instant: datetime) -> str:
    """`15/01/2027`, in Paris."""
    jour = a_paris(instant)
    return f"{jour.day:02d}/{jour.month:02d}/{jour.year:04d}"


def format_date_heure_fr(instant: datetime) -> str:
    """`15/01/2027 à 23:59`, in Paris."""
    heure = a_paris(instant)
    return f"{format_date_fr(heure)} à {heure.hour:02d}:{heure.minute:02d}"


def taille_lisible(octets: int) -> str:
    if octets >= 1024 * 1024:
        return f"{octets // (1024 * 1024)} Mo"
    return f"{octets // 1024} Ko"


def nombre_fr(nombre: int) -> str:
    """`4 000`: thousands apart, as a French reader writes them."""
    return f"{nombre:,}".replace(",", " ")
