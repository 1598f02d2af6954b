"""Entry of the bench's own child processes: `python -m bench.enfant noop|nu ...`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.enfant")
    commandes = parser.add_subparsers(dest="commande", required=True)
    p_noop = commandes.add_parser("noop", help="le worker du workflow sans effet")
    p_noop.add_argument("--adresse", required=True)
    p_noop.add_argument("--file", required=True)
    p_nu = commandes.add_parser("nu", help="l'application FastAPI nue")
    p_nu.add_argument("--hote", default="127.0.0.1")
    p_nu.add_argument("--port", type=int, required=True)
    p_nu.add_argument("--corps", type=Path, required=True)
    p_une = commandes.add_parser("une-requete", help="la page de la demande en une requête SQL")
    p_une.add_argument("--hote", default="127.0.0.1")
    p_une.add_argument("--port", type=int, required=True)
    p_une.add_argument("--base", required=True, help="URL PostgreSQL de la base du banc")
    p_une.add_argument("--portail-url", default="")
    args = parser.parse_args(argv)
    # Imported here so that the workflow module is `bench.noop`, never `__main__` (the sandbox
    # re-imports a workflow's module by name).
    if args.commande == "noop":
        from bench.noop import executer_worker

        asyncio.run(executer_worker(args.adresse, args.file))
    elif args.commande == "une-requete":
        from bench.unerequete import servir as servir_une

        servir_une(args.hote, args.port, args.base)
    else:
        from bench.nu import servir

        servir(args.hote, args.port, args.corps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
