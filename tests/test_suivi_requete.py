"""An operator's action followed from its request to its e-mail: the request id (X-Request-ID,
taken when well-formed, made otherwise, returned) and the caller's `sub` are on the API's line,
then on the workflow's and the activities' lines of what that request caused, on a real
Temporal dev server with a real `modif-solde api` and `modif-solde worker` (JSON logs)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from modif_solde.api.auth import Role, emettre_jeton
from tests.fautes import conftest as fautes
from tests.fautes.conftest import SECRET, SIRET, Pile, attendre
from tests.processus import Processus, commande_modif_solde, port_libre

pile = fautes.pile
smtp = fautes.smtp

NUMERO = "FINMSS000042"
OUVERTURE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"  # as nginx's $request_id
CONFIRMATION = "req-confirmation-0001"
GESTIONNAIRE = "gestionnaire-asp"
OPERATEUR = "operateur-sci-voiture"


def lignes(fichier: Path) -> list[dict[str, Any]]:
    return [
        json.loads(ligne)
        for ligne in fichier.read_text(encoding="utf-8").splitlines()
        if ligne.startswith("{")
    ]


async def test_une_action_se_suit_de_la_requete_au_courriel(
    pile: Pile, donnees: dict[str, Any], tmp_path: Path
) -> None:
    await pile.importer(donnees, NUMERO)
    port = port_libre()
    env = pile.env(MODIF_SOLDE_LOG_FORMAT="json")
    worker = Processus("worker", commande_modif_solde("worker"), tmp_path / "worker.log", env)
    api = Processus(
        "api",
        commande_modif_solde("api", "--host", "127.0.0.1", "--port", str(port)),
        tmp_path / "api.log",
        env,
    )
    for processus in (worker, api):
        processus.demarrer()
        pile.processus.append(processus)
    gestionnaire = {"Authorization": f"Bearer {emettre_jeton(SECRET, GESTIONNAIRE, Role.GESTIONNAIRE, None)}"}
    operateur = {"Authorization": f"Bearer {emettre_jeton(SECRET, OPERATEUR, Role.OPERATEUR, SIRET)}"}

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:

        async def api_prete() -> bool:
            try:
                return (await http.get("/readyz")).status_code == 200
            except httpx.TransportError:
                return False

        await attendre(api_prete, 60, f"l'API répond : {api.sortie()}")
        await attendre(lambda: "worker prêt" in worker.sortie(), 60, f"le worker démarre : {worker.sortie()}")

        r = await http.post(
            f"/api/v1/demandes/{NUMERO}/modifications",
            json={"commentaire": "Le téléphone ne correspond pas.", "champs": ["contact_support_telephone"]},
            headers={**gestionnaire, "X-Request-ID": OUVERTURE},
        )
        assert r.status_code == 201, r.text
        assert r.headers["X-Request-ID"] == OUVERTURE
        await attendre(lambda: pile.boite.types(f"{NUMERO}M1") == ["invitation"], 60, "l'invitation part")

        r = await http.post(
            f"/api/v1/modifications/{NUMERO}M1/confirmer", headers={**operateur, "X-Request-ID": CONFIRMATION}
        )
        assert r.status_code == 200, r.text
        assert r.headers["X-Request-ID"] == CONFIRMATION
        await attendre(
            lambda: (
                sorted(pile.boite.types(f"{NUMERO}M1"))
                == ["confirmation", "confirmation_gestionnaires", "invitation"]
            ),
            60,
            "les courriels de confirmation partent",
        )

        # Without an id, or with one that is not safe to log: one is made, and returned.
        for recu in (None, "mal formé".encode(), b"x" * 200, b"court", b'a";DROP'):
            entetes = {**operateur} if recu is None else {**operateur, "X-Request-ID": recu}
            r = await http.get(f"/api/v1/demandes/{NUMERO}", headers=entetes)
            assert r.status_code == 200
            assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"]), recu
        r = await http.get(
            "/api/v1/demandes/FINMSS999999", headers={**operateur, "X-Request-ID": "req-introuvable"}
        )
        assert r.status_code == 404 and r.headers["X-Request-ID"] == "req-introuvable"

    # The API's line of each request: its id and its caller.
    requetes = {e["requete_id"]: e for e in lignes(tmp_path / "api.log") if e["journal"] == "modif_solde.api"}
    assert requetes[OUVERTURE]["sub"] == GESTIONNAIRE and requetes[OUVERTURE]["statut"] == 201
    assert requetes[CONFIRMATION]["sub"] == OPERATEUR and requetes[CONFIRMATION]["statut"] == 200
    assert requetes[CONFIRMATION]["modification"] == f"{NUMERO}M1"

    await attendre(
        lambda: sum(e["message"] == "courriel envoyé" for e in lignes(tmp_path / "worker.log")) == 3,
        30,
        "le worker a journalisé les trois envois",
    )
    journal = lignes(tmp_path / "worker.log")

    def pour(requete_id: str) -> list[tuple[str, str, str | None]]:
        return [
            (e["journal"], e["message"], e.get("cle")) for e in journal if e.get("requete_id") == requete_id
        ]

    ouverture = pour(OUVERTURE)
    assert ("temporalio.activity", "modification ouverte", None) in ouverture
    assert any(
        j == "temporalio.workflow" and m.startswith("modification ouverte, échéance") for j, m, _ in ouverture
    )
    assert ("temporalio.activity", "courriel envoyé", f"{NUMERO}M1:invitation") in ouverture

    confirmation = pour(CONFIRMATION)
    assert ("temporalio.workflow", "confirmation demandée", None) in confirmation
    assert ("temporalio.workflow", "modification close : confirmee", None) in confirmation
    envois = {c for j, m, c in confirmation if m == "courriel envoyé"}
    assert envois == {f"{NUMERO}M1:confirmation", f"{NUMERO}M1:confirmation_gestionnaires"}

    # Each line names its caller, and no line of one action carries the other's id.
    for ligne in journal:
        if ligne.get("requete_id") == OUVERTURE:
            assert ligne["sub"] == GESTIONNAIRE and ligne["modification"] == f"{NUMERO}M1"
        elif ligne.get("requete_id") == CONFIRMATION:
            assert ligne["sub"] == OPERATEUR and ligne["modification"] == f"{NUMERO}M1"
    assert {e.get("cle") for e in journal if e.get("requete_id") == OUVERTURE} & envois == set()
