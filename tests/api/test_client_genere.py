"""A client generated from the OpenAPI document by `openapi-python-client` (its CLI, as a user
would run it) runs a whole cycle against the real application served by uvicorn, with a worker
on the Temporal test server: import, open, edit the draft, add a document, confirm. Its
functions read like the API (`confirmer_modification.asyncio(...)`), its bodies are the named
components (`ChangementsBrouillon`, `AjoutPiece`)."""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import os
import sys
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest

from modif_solde.models.tables import Demande
from tests.api.conftest import GESTIONNAIRE, OPERATEUR
from tests.api.test_schemathesis import serveur  # noqa: F401  (the application under uvicorn)
from tests.workflows.conftest import ServeurSmtp

GENERATEUR = Path(sys.executable).parent / "openapi-python-client"
PAQUET = "client_modif_solde"


async def generer(document: dict[str, Any], dossier: Path) -> Any:
    """Run the generator's CLI on the document, then import the package it wrote."""
    chemin = dossier / "openapi.json"
    chemin.write_text(json.dumps(document))
    processus = await asyncio.create_subprocess_exec(
        str(GENERATEUR),
        "generate",
        "--path",
        str(chemin),
        "--meta",
        "none",
        "--output-path",
        str(dossier / PAQUET),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=dossier,
        # Its post-generation hook formats with ruff, found beside the interpreter.
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    sortie, _ = await processus.communicate()
    assert processus.returncode == 0, sortie.decode(errors="replace")
    sys.path.insert(0, str(dossier))
    for nom in [n for n in sys.modules if n == PAQUET or n.startswith(f"{PAQUET}.")]:
        del sys.modules[nom]
    return importlib.import_module(PAQUET)


def jeton(entetes: dict[str, str]) -> str:
    return entetes["Authorization"].removeprefix("Bearer ")


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
async def test_un_client_genere_fait_le_cycle(
    serveur: str,  # noqa: F811
    demande: Demande,
    smtp: ServeurSmtp,
    seed: dict[str, Any],
    pdf: bytes,
    tmp_path: Path,
) -> None:
    async with httpx.AsyncClient(base_url=serveur) as http:
        document = (await http.get("/openapi.json")).json()
    paquet = await generer(document, tmp_path)
    try:
        importer_demande, ouvrir_modification, consulter_demande = (
            importlib.import_module(f"{PAQUET}.api.demandes.{nom}")
            for nom in ("importer_demande", "ouvrir_modification", "consulter_demande")
        )
        modifier_brouillon, ajouter_piece, confirmer_modification = (
            importlib.import_module(f"{PAQUET}.api.modifications.{nom}")
            for nom in ("modifier_brouillon", "ajouter_piece", "confirmer_modification")
        )
        modeles = importlib.import_module(f"{PAQUET}.models")
        gestionnaire = paquet.AuthenticatedClient(base_url=serveur, token=jeton(GESTIONNAIRE))
        operateur = paquet.AuthenticatedClient(base_url=serveur, token=jeton(OPERATEUR))

        # Import (a second request of the seed's operator), open, edit, add a document, confirm.
        donnees = copy.deepcopy(seed)
        donnees["numero"] = "FINMSS009267"
        importee = await importer_demande.asyncio(
            client=operateur, body=modeles.DemandeImport.from_dict(donnees)
        )
        assert isinstance(importee, modeles.DemandePage), importee
        assert importee.statut == modeles.StatutDemande.EN_COURS

        ouverte = await ouvrir_modification.asyncio(
            "FINMSS009267",
            client=gestionnaire,
            body=modeles.OuvertureModification.from_dict(
                {"commentaire": "Le téléphone du support a changé.", "champs": ["contact_support_telephone"]}
            ),
        )
        assert isinstance(ouverte, modeles.ModificationOuverte), ouverte
        numero = ouverte.numero
        assert numero == "FINMSS009267M1"

        brouillon = await modifier_brouillon.asyncio(
            numero,
            client=operateur,
            body=modeles.ChangementsBrouillon.from_dict({"contact_support_telephone": "0262401234"}),
        )
        assert isinstance(brouillon, modeles.ModificationVue), brouillon

        piece = await ajouter_piece.asyncio(
            numero,
            client=operateur,
            body=modeles.AjoutPiece(
                type_=modeles.TypePieceAjoutable.AUTRE_S,
                fichier=importlib.import_module(f"{PAQUET}.types").File(
                    payload=BytesIO(pdf), file_name="attestation.pdf"
                ),
            ),
        )
        assert isinstance(piece, modeles.PieceVue), piece

        confirmee = await confirmer_modification.asyncio(numero, client=operateur)
        assert isinstance(confirmee, modeles.ModificationVue), confirmee
        assert confirmee.statut == "confirmee"

        page = await consulter_demande.asyncio("FINMSS009267", client=gestionnaire)
        assert isinstance(page, modeles.DemandePage), page
        assert page.statut == modeles.StatutDemande.EN_COURS
        assert page.informations.contact_support_telephone == "02 62 40 12 34"
    finally:
        sys.path.remove(str(tmp_path))
