"""The service's list of gestionnaires: who may act as one is decided here, by e-mail address."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from modif_solde.models.tables import Gestionnaire
from modif_solde.services import sessions_portail
from modif_solde.services.erreurs import DonneesInvalides


def normaliser(courriel: str) -> str:
    try:
        return validate_email(courriel.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise DonneesInvalides(
            f"L'adresse « {courriel} » n'est pas une adresse électronique valide.",
            [{"champ": "courriel", "message": "L'adresse électronique n'est pas valide."}],
        ) from None


async def est_gestionnaire(session: AsyncSession, courriel: str | None) -> bool:
    if not courriel:
        return False
    try:
        adresse = normaliser(courriel)
    except DonneesInvalides:
        return False
    return (
        await session.exec(select(Gestionnaire.id).where(Gestionnaire.courriel == adresse))
    ).first() is not None


async def ajouter(session: AsyncSession, courriel: str) -> bool:
    """True when added, False when already listed."""
    adresse = normaliser(courriel)
    if (await session.exec(select(Gestionnaire).where(Gestionnaire.courriel == adresse))).first():
        return False
    session.add(Gestionnaire(courriel=adresse))
    return True


async def retirer(session: AsyncSession, courriel: str) -> int | None:
    """Remove the address from the list and end every portal session of that person (the role
    is checked at each page, but a logged-in person would stay logged in, as an operator of the
    SIRET its identity carries): the number of sessions ended, None when it was not listed."""
    adresse = normaliser(courriel)
    gestionnaire = (await session.exec(select(Gestionnaire).where(Gestionnaire.courriel == adresse))).first()
    if gestionnaire is None:
        return None
    await session.delete(gestionnaire)
    return await sessions_portail.fermer_pour_courriel(session, adresse)


async def lister(session: AsyncSession) -> list[str]:
    return list(
        (await session.exec(select(Gestionnaire.courriel).order_by(col(Gestionnaire.courriel)))).all()
    )
