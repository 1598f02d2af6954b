"""The one-query baseline: a bare FastAPI app serving the request page's JSON from the same
PostgreSQL database with a single hand-written SQL query (asyncpg), the JSON built directly.

What the request page could cost at best with this stack (uvicorn, FastAPI routing, one query, one
JSON encoding): no ORM, no authentication, no pydantic model. The bench checks that its JSON
equals the API's (a gestionnaire's view) and says where it differs. Formatting is written here,
not imported: the service's helpers may move."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import uvicorn
from babel.numbers import format_currency
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response

# The editable fields, in the form's order; the first page of the history and e-mail log.
CHAMPS = (
    "contact_support_nom",
    "contact_support_telephone",
    "contact_support_courriel",
    "site_documentation_url",
)
LIMITE = 50
SANS_NUMERO = {"AUTRE_S"}

REQUETE = """
SELECT d.*, o.siret,
  (SELECT coalesce(json_object_agg(m.id, m.numero), '{}') FROM modification m WHERE m.demande_id = d.id)
    AS numeros,
  (SELECT row_to_json(m) FROM modification m WHERE m.demande_id = d.id AND m.statut = 'ouverte' LIMIT 1)
    AS ouverte,
  (SELECT coalesce(json_agg(p ORDER BY p.ajoutee_le, p.nom_fichier), '[]')
     FROM (SELECT id, modification_id, type, nom_fichier, taille, sha256, definitive, ajoutee_le
           FROM piece WHERE demande_id = d.id) p) AS pieces,
  (SELECT coalesce(json_agg(h ORDER BY h.version, h.id), '[]')
     FROM (SELECT id, version, modification_id, champ, ancienne_valeur, nouvelle_valeur, applique_le
           FROM historique WHERE demande_id = d.id ORDER BY version, id LIMIT $2) h) AS historique,
  (SELECT coalesce(json_agg(c ORDER BY c.id), '[]')
     FROM (SELECT id, modification_id, type, destinataire, sujet, cree_le, envoye_le, corps_texte,
                  corps_html, statut_envoi, erreur_envoi
           FROM courriel WHERE demande_id = d.id ORDER BY id LIMIT $2) c) AS courriels
FROM demande d JOIN operateur o ON o.id = d.operateur_id
WHERE d.numero = $1
"""


def _horodatage(valeur: Any) -> str | None:
    if valeur is None:
        return None
    if isinstance(valeur, str):
        valeur = datetime.fromisoformat(valeur)
    if valeur.tzinfo is None:
        valeur = valeur.replace(tzinfo=UTC)
    return str(valeur.astimezone(UTC).isoformat().replace("+00:00", "Z"))


def _montant(centimes: int) -> dict[str, str]:
    montant = Decimal(centimes).scaleb(-2)
    return {"valeur": f"{montant:.2f}", "affichage": format_currency(montant, "EUR", locale="fr_FR")}


def _iban(iban: str) -> str:
    masque = iban[:4] + "•" * (len(iban) - 8) + iban[-4:]
    return " ".join(masque[i : i + 4] for i in range(0, len(masque), 4))


def _piece(p: dict[str, Any], numero: str, numeros: dict[str, str], ouverte_id: int | None) -> dict[str, Any]:
    return {
        "id": p["id"],
        "type": p["type"],
        "type_affiche": p["type"] if p["type"] in SANS_NUMERO else f"{p['type']}_{numero}",
        "nom_fichier": p["nom_fichier"],
        "taille": p["taille"],
        "sha256": p["sha256"],
        "ajoutee_le": _horodatage(p["ajoutee_le"]),
        "origine": numeros.get(str(p["modification_id"]), "?") if p["modification_id"] else "import",
        "definitive": p["definitive"],
        "supprimable": not p["definitive"]
        and p["modification_id"] is not None
        and p["modification_id"] == ouverte_id,
        "url": f"/api/v1/demandes/{numero}/pieces/{p['id']}",
    }


def _json(valeur: Any) -> Any:
    return json.loads(valeur) if isinstance(valeur, str) else valeur


def page(d: asyncpg.Record) -> dict[str, Any]:
    numeros: dict[str, str] = _json(d["numeros"])
    pieces: list[dict[str, Any]] = _json(d["pieces"])
    ouverte: dict[str, Any] | None = _json(d["ouverte"])
    ouverte_id = ouverte["id"] if ouverte else None
    numero = d["numero"]
    historique = _json(d["historique"])
    courriels = _json(d["courriels"])
    vue_ouverte = None
    if ouverte is not None:
        brouillon = _json(ouverte["brouillon"])
        vue_ouverte = {
            "numero": ouverte["numero"],
            "demande_numero": numero,
            "statut": ouverte["statut"],
            "commentaire": ouverte["commentaire"],
            "champs_attendus": _json(ouverte["champs_attendus"]),
            "ouverte_par": ouverte["ouverte_par"],
            "ouverte_le": _horodatage(ouverte["ouverte_le"]),
            "relance_le": _horodatage(ouverte["relance_le"]),
            "expire_le": _horodatage(ouverte["expire_le"]),
            "relance_envoyee_le": _horodatage(ouverte["relance_envoyee_le"]),
            "cloturee_le": _horodatage(ouverte["cloturee_le"]),
            "issue": ouverte["issue"],
            "version_appliquee": ouverte["version_appliquee"],
            "brouillon_version": ouverte["brouillon_version"],
            "changements": [
                {"champ": c, "valeur_actuelle": d[c], "nouvelle_valeur": brouillon[c]}
                for c in CHAMPS
                if c in brouillon
            ],
            "pieces_ajoutees": [
                _piece(p, numero, {str(ouverte_id): ouverte["numero"]}, ouverte_id)
                for p in pieces
                if p["modification_id"] == ouverte_id
            ],
        }
    return {
        "numero": numero,
        "type": d["type"],
        "statut": d["statut"],
        "statut_modifie_le": _horodatage(d["statut_modifie_le"]),
        "date_depot": d["date_depot"].isoformat(),
        "operateur": {
            "siret": d["siret"],
            "numero_ans": d["operateur_numero_ans"],
            "denomination": d["operateur_denomination"],
            "adresse": {
                "ligne": d["operateur_adresse_ligne"],
                "code_postal": d["operateur_code_postal"],
                "commune": d["operateur_commune"],
            },
        },
        "dsr": d["dsr"],
        "informations": {c: d[c] for c in CHAMPS},
        "bal": {
            "applicatives": d["bal_applicatives"],
            "organisationnelles": d["bal_organisationnelles"],
            "nominatives": d["bal_nominatives"],
        },
        "montants": {
            "avance": _montant(d["avance_centimes"]),
            "engagement_solde": _montant(d["engagement_solde_centimes"]),
            "solde": _montant(d["solde_centimes"]),
        },
        "coordonnees_bancaires": {
            "titulaire": d["titulaire"],
            "iban_masque": _iban(d["iban"]),
            "bic": d["bic"],
        },
        "pieces": [_piece(p, numero, numeros, ouverte_id) for p in pieces],
        "version": d["version"],
        "historique": {
            "elements": [
                {
                    "version": h["version"],
                    "champ": h["champ"],
                    "ancienne_valeur": h["ancienne_valeur"],
                    "nouvelle_valeur": h["nouvelle_valeur"],
                    "applique_le": _horodatage(h["applique_le"]),
                    "modification": numeros.get(str(h["modification_id"])) if h["modification_id"] else None,
                }
                for h in historique[:LIMITE]
            ],
            "suivant": f"{historique[LIMITE - 1]['version']}-{historique[LIMITE - 1]['id']}"
            if len(historique) > LIMITE
            else None,
        },
        "courriels": {
            "elements": [
                {
                    "id": c["id"],
                    "type": c["type"],
                    "destinataire": c["destinataire"],
                    "sujet": c["sujet"],
                    "cree_le": _horodatage(c["cree_le"]),
                    "envoye_le": _horodatage(c["envoye_le"]),
                    "modification": numeros.get(str(c["modification_id"])) if c["modification_id"] else None,
                    "corps_texte": c["corps_texte"],
                    "corps_html": c["corps_html"],
                    "statut_envoi": c["statut_envoi"],
                    "erreur_envoi": c["erreur_envoi"],
                }
                for c in courriels[:LIMITE]
            ],
            "suivant": str(courriels[LIMITE - 1]["id"]) if len(courriels) > LIMITE else None,
        },
        "modification_ouverte": vue_ouverte,
    }


def creer_app(url: str) -> FastAPI:
    etat: dict[str, asyncpg.Pool] = {}

    async def demarrer() -> None:
        etat["pool"] = await asyncpg.create_pool(url, min_size=2, max_size=10)

    app = FastAPI(title="bench-une-requete", on_startup=[demarrer])

    @app.get("/api/v1/demandes/{numero}")
    async def page_demande(numero: str) -> Response:
        async with etat["pool"].acquire() as conn:
            ligne = await conn.fetchrow(REQUETE, numero, LIMITE + 1)
        if ligne is None:
            raise HTTPException(404)
        corps = json.dumps(page(ligne), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return Response(corps.encode(), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"statut": "ok"}

    return app


def servir(hote: str, port: int, url: str) -> None:
    # As `modif-solde api` serves: uvicorn.run, one process, no access log.
    uvicorn.run(creer_app(url), host=hote, port=port, log_config=None, access_log=False)
