"""The real `modif-solde api` (uvicorn) and `modif-solde worker` processes with their documents
in S3 (a real S3 server, moto, on loopback): an upload cut off mid-stream leaves no object and
no pending multipart upload; a complete one past one part is stored as a multipart upload,
downloaded back streamed, and the cycle ends with its e-mails; `verifier` finds nothing."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from typing import Any

import httpx
from sqlmodel import select

from modif_solde.api.auth import Role, emettre_jeton
from modif_solde.db import unit_of_work
from modif_solde.models.tables import Piece
from modif_solde.services.demandes import importer_demande, lire_import
from modif_solde.services.stockage_s3 import TAILLE_PART_MIN, StockageS3
from tests.conftest import ServeurS3
from tests.fautes.conftest import SECRET, SIRET, Pile, attendre
from tests.processus import Processus, commande_modif_solde, port_libre

NUMERO = "FINMSS000001M1"
FRONTIERE = "----frontiere-modif-solde"
MIO = 1024 * 1024


async def etat_du_bucket(s3: StockageS3) -> tuple[set[str], list[str]]:
    client = await s3.client()
    objets = await client.list_objects_v2(Bucket=s3.bucket, Prefix=s3.prefixe)
    envois = await client.list_multipart_uploads(Bucket=s3.bucket, Prefix=s3.prefixe)
    return {o["Key"] for o in objets.get("Contents", [])}, [u["Key"] for u in envois.get("Uploads", [])]


async def test_api_et_worker_avec_les_pieces_dans_s3(
    pile: Pile, serveur_s3: ServeurS3, donnees: dict[str, Any], pdf: bytes
) -> None:
    s3 = serveur_s3.stockage()
    env = {
        **pile.env(),
        **serveur_s3.environnement(s3.prefixe, taille_part=TAILLE_PART_MIN),
        "MODIF_SOLDE_PIECE_TAILLE_MAX": str(16 * MIO),
    }
    try:
        async with unit_of_work(pile.factory) as session:
            await importer_demande(session, s3, lire_import({**donnees, "numero": "FINMSS000001"}))
        avant, _ = await etat_du_bucket(s3)
        assert avant
        worker = Processus("worker", commande_modif_solde("worker"), pile.dossier / "worker.log", env)
        worker.demarrer()
        pile.processus.append(worker)
        port = port_libre()
        api = Processus(
            "api",
            commande_modif_solde("api", "--host", "127.0.0.1", "--port", str(port)),
            pile.dossier / "api.log",
            env,
        )
        api.demarrer()
        pile.processus.append(api)
        await pile.ouvrir("FINMSS000001", timedelta(days=10), timedelta(days=20))
        jeton = emettre_jeton(SECRET, "operateur.test", Role.OPERATEUR, SIRET)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {jeton}"}, timeout=60
        ) as http:

            async def pret() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await attendre(pret, 60, "l'API répond")

            # Cut off after 7 MiB of a declared 12: the connection closes with no more of the body.
            debut = (
                f'--{FRONTIERE}\r\nContent-Disposition: form-data; name="type"\r\n\r\nAUTRE_S\r\n'
                f'--{FRONTIERE}\r\nContent-Disposition: form-data; name="fichier"; filename="coupe.pdf"\r\n'
                "Content-Type: application/pdf\r\n\r\n"
            ).encode() + b"%PDF-1.4\n"
            entetes = (
                f"POST /api/v1/modifications/{NUMERO}/pieces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Bearer {jeton}\r\nContent-Type: multipart/form-data; boundary={FRONTIERE}\r\n"
                f"Content-Length: {12 * MIO}\r\n\r\n"
            ).encode()
            lecteur, ecrivain = await asyncio.open_connection("127.0.0.1", port)
            ecrivain.write(entetes + debut + b"0" * (7 * MIO - len(debut)))
            await ecrivain.drain()
            sock = ecrivain.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            ecrivain.close()
            del lecteur
            # The API still answers, and has kept nothing of it.
            await attendre(pret, 30, "l'API répond après la coupure")
            assert await etat_du_bucket(s3) == (avant, [])

            # A complete upload past one part: a multipart upload, completed.
            contenu = (pdf + b"%" + bytes(range(256)) * (7 * MIO // 256))[: 7 * MIO]
            r = await http.post(
                f"/api/v1/modifications/{NUMERO}/pieces",
                data={"type": "AUTRE_S"},
                files={"fichier": ("complet.pdf", contenu, "application/pdf")},
            )
            assert r.status_code == 201, r.text
            objets, envois = await etat_du_bucket(s3)
            assert len(objets - avant) == 1 and envois == []
            client = await s3.client()
            tete = await client.head_object(Bucket=s3.bucket, Key=next(iter(objets - avant)))
            assert tete["ETag"].strip('"').endswith("-2")
            async with http.stream("GET", r.json()["url"]) as telechargement:
                assert telechargement.status_code == 200
                assert telechargement.headers["content-length"] == str(len(contenu))
                assert b"".join([m async for m in telechargement.aiter_bytes()]) == contenu

            r = await http.post(f"/api/v1/modifications/{NUMERO}/confirmer")
            assert r.status_code == 200, r.text
            assert [p["nom_fichier"] for p in r.json()["pieces_ajoutees"]] == ["complet.pdf"]

        await pile.verifier_tout({NUMERO: ["invitation", "confirmation", "confirmation_gestionnaires"]})
        async with pile.factory() as session:
            cles = set((await session.exec(select(Piece.cle_stockage))).all())
        assert {s3.nom_objet(c) for c in cles} == (await etat_du_bucket(s3))[0]
    finally:
        await s3.fermer()
