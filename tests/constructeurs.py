"""Builders shared by the test suites: one place for what a test does not care about."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from modif_solde.workflows.contrat import ModificationEntree

COMMENTAIRE = "Le téléphone du contact support ne correspond pas à la pièce jointe."
COMMENTAIRE_SITE = "Le site de documentation ne répond pas."


def entree_modification(
    demande_numero: str = "FINMSS009266",
    modification_numero: str | None = None,
    *,
    commentaire: str = COMMENTAIRE,
    champs: list[str] | None = None,
    ouverte_par: str = "gestionnaire-1",
    relance_apres: timedelta = timedelta(days=10),
    expiration_apres: timedelta = timedelta(days=20),
    **autres: Any,
) -> ModificationEntree:
    """The workflow's input for the request's first modification (`…M1`), the telephone asked for,
    a reminder after 10 days and the deadline after 20, unless told otherwise."""
    return ModificationEntree(
        demande_numero=demande_numero,
        modification_numero=modification_numero or f"{demande_numero}M1",
        commentaire=commentaire,
        champs=champs or ["contact_support_telephone"],
        ouverte_par=ouverte_par,
        relance_apres=relance_apres,
        expiration_apres=expiration_apres,
        **autres,
    )
