"""The test suite, and the scripts that live beside it (recording workflow histories)."""

import os

# The tests say "development" explicitly (the default is production): the settings they build,
# and those `lire_import` reads, may use the public development key. Here rather than in
# conftest.py so that `python -m tests.workflows.enregistrer_historiques` says it too.
os.environ.setdefault("MODIF_SOLDE_ENVIRONNEMENT", "developpement")
