"""A copy of the code as it is when the bench starts, run by the bench and all its children."""

# Why: edits made meanwhile must not reach the processes being measured. The workflow sandbox
# re-reads the workflow's module from disk for every new workflow: a live edit of
# modif_solde/workflows/modification.py changed a running worker's code mid-run, and broke it.

from __future__ import annotations

import compileall
import shutil
import sys
import tempfile
from pathlib import Path

DEPOT = Path(__file__).resolve().parents[1]
PAQUETS = ("modif_solde", "bench")


def preparer(source: Path | None = None) -> tuple[Path, Path]:
    """The run's working directory and, inside it, the code's copy; the copy comes first on
    sys.path from now on (call it before anything imports modif_solde). `source`: another
    tree's modif_solde (a patched copy, to measure a proposed change) instead of this one's."""
    dossier = Path(tempfile.mkdtemp(prefix="modif-solde-bench-"))
    code = dossier / "code"
    for paquet in PAQUETS:
        origine = (source or DEPOT) if paquet == "modif_solde" else DEPOT
        shutil.copytree(
            origine / paquet,
            code / paquet,
            ignore=shutil.ignore_patterns("__pycache__", "results", "*.pyc"),
        )
    # Bytecode, as the Docker image has it (`pip install .` compiles): PYTHONDONTWRITEBYTECODE=1
    # here means that otherwise the sandbox recompiles the workflow's module from source at every
    # workflow it instantiates (about 2 ms each).
    if not compileall.compile_dir(code, quiet=1):
        raise RuntimeError(f"compilation de {code} en échec")
    if "modif_solde" in sys.modules:
        raise RuntimeError("modif_solde déjà importé : l'instantané doit précéder tout import")
    sys.path.insert(0, str(code))
    return dossier, code
