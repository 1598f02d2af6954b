"""Two API processes and two workers on one PostgreSQL database and one Temporal server, as two
replicas of each run in production. A mixed load goes through either API in turn (imports and
openings as gestionnaire; drafts, uploads into an S3 store, confirmations, renouncements as the
operator; some cycles left to expire) while one worker is stopped by SIGTERM and the other killed by SIGKILL
(replacements started), and while the tokens' signing key is rotated (key 1, then the JWKS with
keys 1 and 2, the clients on key 2, then key 1 withdrawn). Afterwards: every cycle ended in its
expected status, every e-mail left exactly once (counted at the SMTP server and in the database),
`modif-solde verifier` finds nothing, the bucket holds exactly the recorded documents, and no
request was refused."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlmodel import select
from temporalio.client import Client

from modif_solde.api.auth import PrivateKey, Role, emettre_jeton, generer_cle, jwk_public
from modif_solde.db import create_engine, session_factory
from modif_solde.models.tables import Courriel, Modification, Piece
from tests.conftest import EXEMPLE, PDF_EXEMPLE, ServeurS3, base_pg_jetable
from tests.processus import Processus, ServeurTemporalDev, commande_modif_solde, port_libre

pytestmark = pytest.mark.replicas

SIRET = "50961588600025"  # the example request's operator
CYCLES = 15  # a third confirmed, a third renounced, a third left to expire
RELANCE = "PT25S"
EXPIRATION = "PT60S"


def stockage_env(serveur_s3: ServeurS3, prefixe: str) -> dict[str, str]:
    """Where the documents live, for every process: production's choice, an S3 object store
    (a real one on loopback, moto's server), so no API shares a disk with another."""
    return serveur_s3.environnement(prefixe)


class BoiteComptee:
    """The SMTP server's handler: every accepted message, by recipient, Message-ID and kind."""

    def __init__(self) -> None:
        self.recus: list[tuple[str, str, str]] = []  # (idempotency key, Message-ID, recipient)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        for destinataire in envelope.rcpt_tos:
            self.recus.append((str(message["X-Modif-Solde-Cle"]), str(message["Message-ID"]), destinataire))
        return "250 Message accepté"


@dataclass
class Jetons:
    """The clients' signing key, switched during the load; each request signed with the current
    key, and the requests under way counted per key (the old key is withdrawn once none remains,
    as the rotation procedure waits for the old tokens' lifetime)."""

    cles: dict[str, PrivateKey]
    actuelle: str
    en_cours: Counter[str] = field(default_factory=Counter)
    par_cle: Counter[str] = field(default_factory=Counter)

    def signer(self, role: Role, siret: str | None = None) -> tuple[str, str]:
        kid = self.actuelle
        jeton = emettre_jeton(self.cles[kid], f"{role.value}.replicas", role, siret, kid=kid)
        return kid, jeton


@dataclass
class Charge:
    apis: list[str]
    jetons: Jetons
    statuts: Counter[int] = field(default_factory=Counter)
    refus: list[str] = field(default_factory=list)
    evenements: list[str] = field(default_factory=list)
    tour: int = 0

    async def appeler(
        self, methode: str, chemin: str, role: Role, attendus: tuple[int, ...], **options: Any
    ) -> httpx.Response:
        """One request through the next API in turn, signed with the current key."""
        base = self.apis[self.tour % len(self.apis)]
        self.tour += 1
        kid, jeton = self.jetons.signer(role, SIRET if role == Role.OPERATEUR else None)
        self.jetons.en_cours[kid] += 1
        try:
            async with httpx.AsyncClient(base_url=base, timeout=120) as client:
                reponse = await client.request(
                    methode, chemin, headers={"Authorization": f"Bearer {jeton}"}, **options
                )
        finally:
            self.jetons.en_cours[kid] -= 1
        self.jetons.par_cle[kid] += 1
        self.statuts[reponse.status_code] += 1
        if reponse.status_code not in attendus:
            self.refus.append(
                f"{methode} {chemin} via {base} (clé {kid}) : {reponse.status_code} {reponse.text}"
            )
        return reponse


def ecrire_jwks(chemin: Path, cles: dict[str, PrivateKey]) -> None:
    """Replaced in one step, as `modif-solde cles` does."""
    tmp = chemin.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [jwk_public(cle, kid) for kid, cle in cles.items()]}))
    os.replace(tmp, chemin)


@pytest.fixture
async def base_pg() -> AsyncIterator[str]:
    """A database of the test's own on the shared server, dropped afterwards."""
    async with base_pg_jetable(f"modif_solde_replicas_{os.getpid()}") as url:
        yield url


async def attendre(condition: Callable[[], Any], delai: float, quoi: str) -> None:
    limite = time.monotonic() + delai
    while True:
        resultat = condition()
        if asyncio.iscoroutine(resultat):
            resultat = await resultat
        if resultat:
            return
        if time.monotonic() > limite:
            raise AssertionError(f"jamais arrivé : {quoi}")
        await asyncio.sleep(0.1)


async def cycle(charge: Charge, i: int, pdf: bytes) -> tuple[str, str]:
    """One request's life through the APIs; returns its modification and the expected status."""
    numero = f"FINMSS{700000 + i:06d}"
    modification = f"{numero}M1"
    issue = ("confirmee", "renoncee", "expiree")[i % 3]
    demande = {**json.loads(EXEMPLE.read_text()), "numero": numero}
    await charge.appeler("POST", "/api/v1/demandes", Role.GESTIONNAIRE, (201,), json=demande)
    ouverture = {
        "commentaire": "Le téléphone du support ne répond pas.",
        "champs": ["contact_support_telephone", "pieces"],
    }
    await charge.appeler(
        "POST", f"/api/v1/demandes/{numero}/modifications", Role.GESTIONNAIRE, (201,), json=ouverture
    )
    await charge.appeler("GET", f"/api/v1/demandes/{numero}", Role.OPERATEUR, (200,))
    await charge.appeler(
        "PATCH",
        f"/api/v1/modifications/{modification}/brouillon",
        Role.OPERATEUR,
        (200,),
        json={"contact_support_telephone": f"+33 6 12 34 {i % 100:02d} 78"},
    )
    if issue != "renoncee":
        await charge.appeler(
            "POST",
            f"/api/v1/modifications/{modification}/pieces",
            Role.OPERATEUR,
            (201,),
            data={"type": "MSS_RESU_TEST_TECH"},
            files={"fichier": ("résultats.pdf", pdf, "application/pdf")},
        )
    if issue == "confirmee":
        await charge.appeler(
            "POST", f"/api/v1/modifications/{modification}/confirmer", Role.OPERATEUR, (200,)
        )
    elif issue == "renoncee":
        await charge.appeler("POST", f"/api/v1/modifications/{modification}/renoncer", Role.OPERATEUR, (200,))
    await charge.appeler("GET", f"/api/v1/modifications/{modification}", Role.OPERATEUR, (200,))
    return modification, issue


async def test_deux_api_deux_workers_pannes_et_rotation_des_cles(
    tmp_path: Path, base_pg: str, serveur_s3: ServeurS3
) -> None:
    debut = time.monotonic()
    boite = BoiteComptee()
    port_smtp = port_libre()
    smtp = Controller(boite, hostname="127.0.0.1", port=port_smtp)
    smtp.start()
    temporal = ServeurTemporalDev(tmp_path)
    temporal.demarrer()
    processus: list[Processus] = [temporal]
    cles = {"cle-1": generer_cle("ES256"), "cle-2": generer_cle("RS256")}
    jwks = tmp_path / "jwks.json"
    prefixe = f"replicas-{uuid.uuid4().hex}"
    ecrire_jwks(jwks, {"cle-1": cles["cle-1"]})
    env = {
        # Development only for the SMTP and portal defaults: the tokens here are all RS/ES from
        # the JWKS file, HS256 is never used.
        "MODIF_SOLDE_ENVIRONNEMENT": "developpement",
        "MODIF_SOLDE_DATABASE_URL": base_pg,
        "MODIF_SOLDE_TEMPORAL_ADDRESS": temporal.adresse,
        "MODIF_SOLDE_TASK_QUEUE": f"replicas-{os.getpid()}",
        "MODIF_SOLDE_SMTP_URL": f"smtp://127.0.0.1:{port_smtp}",
        "MODIF_SOLDE_PORTAIL_URL": "https://portail.example",
        "MODIF_SOLDE_JWT_JWKS_FICHIER": str(jwks),
        "MODIF_SOLDE_RELANCE_APRES": RELANCE,
        "MODIF_SOLDE_EXPIRATION_APRES": EXPIRATION,
        # A worker killed mid-update: its replacement answers within Temporal's task timeouts.
        "MODIF_SOLDE_DELAI_REPONSE_WORKFLOW": "PT90S",
        "MODIF_SOLDE_LOG_FORMAT": "texte",
        **stockage_env(serveur_s3, prefixe),
    }
    moteur = create_engine(base_pg)
    try:
        client: Client = await temporal.client()
        await asyncio.to_thread(
            subprocess.run,
            commande_modif_solde("migrate"),
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )

        def lancer(nom: str, *arguments: str) -> Processus:
            p = Processus(nom, commande_modif_solde(*arguments), tmp_path / f"{nom}.log", env)
            p.demarrer()
            processus.append(p)
            return p

        ports = [port_libre(), port_libre()]
        apis = [
            lancer(f"api-{k}", "api", "--host", "127.0.0.1", "--port", str(port))
            for k, port in enumerate(ports)
        ]
        workers = [lancer("worker-1", "worker"), lancer("worker-2", "worker")]
        bases = [f"http://127.0.0.1:{port}" for port in ports]

        async def pretes() -> bool:
            for api, base in zip(apis, bases, strict=True):
                assert api.vivant, api.sortie()
                try:
                    async with httpx.AsyncClient(timeout=10) as http:
                        if (await http.get(f"{base}/readyz")).status_code != 200:
                            return False
                except httpx.TransportError:
                    return False
            return True

        await attendre(pretes, 90, "les deux API sont prêtes")

        charge = Charge(bases, Jetons(cles, "cle-1"))
        pdf = PDF_EXEMPLE.read_bytes()

        async def echelonne(i: int) -> tuple[str, str]:
            await asyncio.sleep(i * 0.7)
            return await cycle(charge, i, pdf)

        def apres(n: int) -> Callable[[], bool]:
            """When `n` requests have been answered: the events fall in the middle of the load."""
            return lambda: sum(charge.statuts.values()) >= n

        async def pannes() -> None:
            # A replacement first, then the stop (in a thread: it waits for the process).
            await attendre(apres(CYCLES * 2), 600, "la charge avance")
            lancer("worker-3", "worker")
            await asyncio.to_thread(workers[0].tuer, signal.SIGTERM)
            charge.evenements.append(
                f"worker-1 arrêté (SIGTERM) après {sum(charge.statuts.values())} requêtes"
            )
            await attendre(apres(sum(charge.statuts.values()) + CYCLES), 600, "la charge avance")
            lancer("worker-4", "worker")
            await asyncio.to_thread(workers[1].tuer, signal.SIGKILL)
            charge.evenements.append(f"worker-2 tué (SIGKILL) après {sum(charge.statuts.values())} requêtes")

        async def rotation() -> None:
            await attendre(apres(CYCLES), 600, "la charge avance")
            ecrire_jwks(jwks, cles)  # the overlap: keys 1 and 2 published
            charge.evenements.append(f"JWKS clés 1 et 2 après {sum(charge.statuts.values())} requêtes")
            await attendre(apres(CYCLES * 2), 600, "la charge avance")
            charge.jetons.actuelle = "cle-2"  # the issuer signs with key 2
            # Key 1 withdrawn once no token of it is still on its way.
            await attendre(
                lambda: charge.jetons.en_cours["cle-1"] == 0, 120, "les requêtes de la clé 1 finissent"
            )
            ecrire_jwks(jwks, {"cle-2": cles["cle-2"]})
            charge.evenements.append(f"clé 1 retirée après {sum(charge.statuts.values())} requêtes")

        resultats, _, _ = await asyncio.gather(
            asyncio.gather(*(echelonne(i) for i in range(CYCLES))), pannes(), rotation()
        )
        attendus = dict(resultats)
        duree_charge = time.monotonic() - debut

        # Every cycle over (the expired ones at their deadline).
        for numero in attendus:
            await asyncio.wait_for(client.get_workflow_handle(numero).result(), timeout=180)
        # A token of the withdrawn key is now refused by both APIs.
        ancien = emettre_jeton(cles["cle-1"], "gestionnaire.replicas", Role.GESTIONNAIRE, kid="cle-1")
        for base in bases:
            async with httpx.AsyncClient(base_url=base) as http:
                assert (
                    await http.get("/api/v1/demandes", headers={"Authorization": f"Bearer {ancien}"})
                ).status_code == 401

        async with session_factory(moteur)() as session:
            modifications = {m.numero: m for m in (await session.exec(select(Modification))).all()}
            courriels = (await session.exec(select(Courriel))).all()
        assert {numero: m.statut for numero, m in modifications.items()} == attendus
        for numero, issue in attendus.items():
            m = modifications[numero]
            assert m.cloturee_le is not None
            types = {
                "confirmee": ["confirmation", "confirmation_gestionnaires"],
                "renoncee": ["renonciation"],
                "expiree": ["relance", "expiration"],
            }[issue]
            if issue == "expiree":
                assert m.cloturee_le >= m.expire_le
            recus = sorted(cle.split(":")[1] for cle, _, _ in boite.recus if cle.split(":")[0] == numero)
            if issue != "expiree" and "relance" in recus:
                # On a loaded machine the reminder's time may come before the operator's action:
                # then it went out (once) before the closure; a reminder due after it is dropped.
                assert m.relance_envoyee_le is not None and m.relance_envoyee_le <= m.cloturee_le
                types = [*types, "relance"]
            assert recus == sorted(["invitation", *types]), (numero, recus)

        # Exactly once: each message (key, Message-ID, recipient) at the SMTP server once, and
        # the same messages in the database, each marked sent.
        assert [x for x, n in Counter(boite.recus).items() if n > 1] == []
        assert len({cle for cle, _, _ in boite.recus}) == len(boite.recus)
        assert sorted(boite.recus) == sorted(
            (c.cle_idempotence, c.message_id, c.destinataire) for c in courriels
        )
        assert all(c.envoye_le is not None for c in courriels)

        verification = await asyncio.to_thread(
            subprocess.run,
            commande_modif_solde("verifier"),
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert verification.returncode == 0, verification.stdout + verification.stderr
        assert verification.stdout.strip() == "Aucune différence."

        # Every document uploaded through either API is in the bucket, and nothing else is.
        async with session_factory(moteur)() as session:
            cles_en_base = set((await session.exec(select(Piece.cle_stockage))).all())
        stockage = serveur_s3.stockage(prefixe)
        try:
            cles_s3 = {objet.cle async for objet in stockage.lister()}
        finally:
            await stockage.fermer()
        assert cles_s3 and cles_s3 == cles_en_base

        # No request refused, through the worker faults and the key rotation.
        assert charge.refus == []
        assert charge.jetons.par_cle["cle-1"] >= CYCLES * 2 and charge.jetons.par_cle["cle-2"] > 0
        assert len(charge.evenements) == 4
        # The figures the README quotes (shown with pytest -s).
        print(
            f"\nréplicas : {sum(charge.statuts.values())} requêtes {dict(charge.statuts)}, "
            f"clés {dict(charge.jetons.par_cle)}, {len(boite.recus)} courriels, "
            f"charge {duree_charge:.0f} s, total {time.monotonic() - debut:.0f} s ; "
            + " ; ".join(charge.evenements)
        )
    finally:
        for p in reversed(processus):
            p.tuer()
        smtp.stop()
        await moteur.dispose()
