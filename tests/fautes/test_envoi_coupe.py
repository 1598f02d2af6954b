"""An upload cut off mid-stream against a real API process (uvicorn): no partial file is left
in storage or in the temporary folder, nothing is recorded, and the cycle goes on."""

from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import select

from modif_solde.api.auth import Role, emettre_jeton
from modif_solde.models.tables import Piece
from tests.fautes.conftest import SECRET, SIRET, Pile, attendre
from tests.processus import Processus, commande_modif_solde, port_libre

NUMERO = "FINMSS000001M1"
FRONTIERE = "----frontiere-modif-solde"
DECLARE = 3 * 1024 * 1024
ENVOYE = 2 * 1024 * 1024  # past the 1 MiB the multipart parser keeps in memory


def fichiers_ouverts_sous(pid: int, dossiers: list[Path]) -> list[str]:
    """The API process's open files under one of `dossiers` (deleted ones included)."""
    trouves = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            cible = os.readlink(fd)
        except OSError:
            continue
        if any(cible.startswith(str(d)) for d in dossiers):
            trouves.append(cible)
    return trouves


def fichiers_sous(dossier: Path) -> list[Path]:
    return [p for p in dossier.rglob("*") if p.is_file()] if dossier.exists() else []


async def test_un_envoi_coupe_en_plein_milieu_ne_laisse_rien(
    pile: Pile, donnees: dict[str, Any], pdf: bytes
) -> None:
    temporaire = pile.dossier / "tmp"
    temporaire.mkdir()
    stockage = pile.dossier / "pieces"
    await pile.importer(donnees, "FINMSS000001")
    avant = fichiers_sous(stockage)
    pile.worker()
    port = port_libre()
    api = Processus(
        "api",
        commande_modif_solde("api", "--host", "127.0.0.1", "--port", str(port)),
        pile.dossier / "api.log",
        {**pile.env(), "TMPDIR": str(temporaire)},
    )
    api.demarrer()
    pile.processus.append(api)
    await pile.ouvrir("FINMSS000001", timedelta(days=10), timedelta(days=20))
    base = f"http://127.0.0.1:{port}"
    jeton = emettre_jeton(SECRET, "operateur.test", Role.OPERATEUR, SIRET)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {jeton}"}) as http:

        async def pret() -> bool:
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await attendre(pret, 30, "l'API répond")

        debut = (
            f'--{FRONTIERE}\r\nContent-Disposition: form-data; name="type"\r\n\r\nAUTRE_S\r\n'
            f'--{FRONTIERE}\r\nContent-Disposition: form-data; name="fichier"; filename="coupe.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode() + b"%PDF-1.4\n"
        entetes = (
            f"POST /api/v1/modifications/{NUMERO}/pieces HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {jeton}\r\nContent-Type: multipart/form-data; boundary={FRONTIERE}\r\n"
            f"Content-Length: {DECLARE}\r\n\r\n"
        ).encode()
        lecteur, ecrivain = await asyncio.open_connection("127.0.0.1", port)
        ecrivain.write(entetes + debut + b"0" * (ENVOYE - len(debut)))
        await ecrivain.drain()
        assert api.popen is not None
        # The API is in the middle of it: the part it has read sits in a temporary file.
        await attendre(
            lambda: bool(fichiers_ouverts_sous(api.popen.pid, [temporaire, stockage])),  # type: ignore[union-attr]
            30,
            "l'API reçoit la pièce",
        )
        # Cut off: the connection closes with no more of the body.
        sock = ecrivain.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        ecrivain.close()
        del lecteur

        await attendre(
            lambda: not fichiers_ouverts_sous(api.popen.pid, [temporaire, stockage]),  # type: ignore[union-attr]
            30,
            "l'API lâche ce qu'elle avait reçu",
        )
        assert fichiers_sous(temporaire) == []
        assert fichiers_sous(stockage) == avant
        async with pile.factory() as session:
            assert (await session.exec(select(Piece).where(Piece.modification_id.is_not(None)))).all() == []  # type: ignore[union-attr]

        # The same modification still takes a complete upload, then its confirmation.
        r = await http.post(
            f"/api/v1/modifications/{NUMERO}/pieces",
            data={"type": "AUTRE_S"},
            files={"fichier": ("complet.pdf", pdf, "application/pdf")},
        )
        assert r.status_code == 201, r.text
        r = await http.post(f"/api/v1/modifications/{NUMERO}/confirmer")
        assert r.status_code == 200, r.text
        assert [p["nom_fichier"] for p in r.json()["pieces_ajoutees"]] == ["complet.pdf"]

    await pile.verifier_tout({NUMERO: ["invitation", "confirmation", "confirmation_gestionnaires"]})
    assert len(fichiers_sous(stockage)) == len(avant) + 1
