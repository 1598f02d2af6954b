"""The `modif-solde` console command: dev, api, worker, token, import, migrate."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from modif_solde.config import get_settings


def _importer(fichier: Path) -> int:
    from modif_solde.db import create_engine, session_factory, unit_of_work
    from modif_solde.migrations import migrer
    from modif_solde.services.demandes import importer_demande, lire_import
    from modif_solde.services.erreurs import ErreurDomaine
    from modif_solde.services.stockage import Stockage

    settings = get_settings()
    try:
        brut = fichier.read_bytes()
    except OSError as exc:
        print(f"Impossible de lire {fichier} : {exc.strerror}", file=sys.stderr)
        return 2
    migrer(settings.DATABASE_URL)

    async def run() -> int:
        engine = create_engine(settings.DATABASE_URL)
        try:
            async with unit_of_work(session_factory(engine)) as session:
                demande = await importer_demande(session, Stockage(settings.STORAGE_DIR), lire_import(brut))
                numero = demande.numero
        except ErreurDomaine as exc:
            print(f"Import refusé : {exc.message}", file=sys.stderr)
            for erreur in exc.erreurs:
                print(f"  - {erreur['message']}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        print(f"Demande {numero} importée.")
        return 0

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="modif-solde", description="Cycle de modification des demandes de solde MSS."
    )
    commandes = parser.add_subparsers(dest="commande", required=True)
    p_import = commandes.add_parser("import", help="importer une demande de solde (JSON)")
    p_import.add_argument("fichier", type=Path)
    commandes.add_parser("migrate", help="mettre la base de données au dernier schéma")
    args = parser.parse_args(argv)

    if args.commande == "import":
        return _importer(args.fichier)
    if args.commande == "migrate":
        from modif_solde.migrations import migrer

        migrer(get_settings().DATABASE_URL)
        print("Base de données à jour.")
        return 0
    parser.error(f"commande inconnue : {args.commande}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
