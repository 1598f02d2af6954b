"""The domain's refusals as the pages show them, mapped once: each error beside the field of the
form it concerns, under the label the person sees (the services name the API's fields)."""

from __future__ import annotations

from modif_solde.pages.rendu import LIBELLES
from modif_solde.services.erreurs import DonneesInvalides, ErreurDomaine


def du_brouillon(exc: DonneesInvalides) -> list[dict[str, str]]:
    """The service names a field by its path (`informations.contact_support_courriel`): on the
    page the error sits beside that field, and its message says the field's label."""
    erreurs = []
    for erreur in exc.erreurs:
        chemin = erreur["champ"]
        champ = chemin.rsplit(".", 1)[-1]
        message = erreur["message"].replace(f"« {chemin} »", f"« {LIBELLES.get(champ, champ)} »")
        erreurs.append({"champ": champ, "message": message})
    return erreurs


def de_l_ouverture(exc: DonneesInvalides) -> list[dict[str, str]]:
    """The service names `champs.0`…: on the page, the checkboxes are one group."""
    erreurs: dict[str, str] = {}
    for e in exc.erreurs:
        champ = "champs" if e["champ"].startswith("champs") else e["champ"]
        message = e["message"].replace("« commentaire »", "« Commentaire »")
        if champ == "champs":
            message = "Cochez au moins un élément attendu de l'opérateur."
        erreurs.setdefault(champ, message)
    return [{"champ": c, "message": m} for c, m in erreurs.items()]


def du_signalement(exc: DonneesInvalides) -> list[dict[str, str]]:
    """A report's refusal (or its answer's) under the form's labels; the checkboxes are one group."""
    libelles = {"description": "« Ce qui est erroné ou manquant »", "reponse": "« Réponse à l'opérateur »"}
    erreurs: dict[str, str] = {}
    for e in exc.erreurs:
        champ = "champs" if e["champ"].startswith("champs") else e["champ"]
        message = e["message"]
        for nom, libelle in libelles.items():
            message = message.replace(f"« {nom} »", libelle)
        if champ == "champs":
            message = "Cochez au moins un élément concerné."
        erreurs.setdefault(champ, message)
    return [{"champ": c, "message": m} for c, m in erreurs.items()]


def de_la_piece(exc: ErreurDomaine) -> list[dict[str, str]]:
    """A document's refusal: the type's beside the type, anything else beside the file."""
    if isinstance(exc, DonneesInvalides) and exc.erreurs:
        return [
            {"champ": e["champ"] if e["champ"] == "type" else "fichier", "message": e["message"]}
            for e in exc.erreurs
        ]
    return [{"champ": "fichier", "message": exc.message}]


def de_l_import(exc: ErreurDomaine) -> list[dict[str, str]]:
    """An import's refusal: each broken rule of the document, or the refusal beside the file."""
    if isinstance(exc, DonneesInvalides) and exc.erreurs:
        return exc.erreurs
    return [{"champ": "fichier", "message": exc.message}]
