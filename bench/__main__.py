"""Entry point of `python -m bench` (what `make bench` runs)."""

import argparse
import sys
from pathlib import Path

from bench.instantane import preparer

# --source is needed before anything imports modif_solde; the other options are parsed later.
_avant = argparse.ArgumentParser(add_help=False)
_avant.add_argument("--source", type=Path, default=None)
_source = _avant.parse_known_args()[0].source

# Before anything imports modif_solde: this process and its children run the copy.
dossier, code = preparer(_source)

from bench.banc import main  # noqa: E402

sys.exit(main(dossier=dossier, code=code))
