"""Log lines carry the modification number: from Temporal's context, or from the API's path."""

from __future__ import annotations

import json
import logging

import httpx

from modif_solde.journal import FormatJson, FormatTexte, modification_courante


def ligne(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("modif_solde.test", logging.INFO, __file__, 1, "courriel envoyé", None, None)
    record.__dict__.update(extra)
    return record


def test_activite_temporal() -> None:
    record = ligne(
        temporal_activity={"workflow_id": "FINMSS009266M1", "activity_type": "envoyer_courriel"},
        cle="FINMSS009266M1:invitation",
    )
    donnees = json.loads(FormatJson().format(record))
    assert donnees["modification"] == "FINMSS009266M1"
    assert donnees["cle"] == "FINMSS009266M1:invitation"
    assert donnees["message"] == "courriel envoyé" and donnees["niveau"] == "INFO"
    assert "modification=FINMSS009266M1" in FormatTexte().format(record)


def test_contexte_de_requete() -> None:
    jeton = modification_courante.set("FINMSS009266M2")
    try:
        assert json.loads(FormatJson().format(ligne()))["modification"] == "FINMSS009266M2"
    finally:
        modification_courante.reset(jeton)
    assert "modification" not in json.loads(FormatJson().format(ligne()))


async def test_l_api_journalise_chaque_requete_avec_le_numero(caplog: object) -> None:
    from modif_solde.api.app import create_app
    from modif_solde.config import Settings

    app = create_app(Settings(DATABASE_URL="sqlite+aiosqlite:///:memory:"), client=object())  # type: ignore[arg-type]
    enregistrements: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            enregistrements.append(record)

    capture = Capture()
    logging.getLogger("modif_solde.api").addHandler(capture)
    logging.getLogger("modif_solde.api").setLevel(logging.INFO)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                await client.get("/api/v1/modifications/FINMSS009266M1")
    finally:
        logging.getLogger("modif_solde.api").removeHandler(capture)
    (record,) = enregistrements
    donnees = json.loads(FormatJson().format(record))
    assert donnees["modification"] == "FINMSS009266M1"
    assert donnees["statut"] == 401 and donnees["message"] == "GET /api/v1/modifications/FINMSS009266M1 401"
