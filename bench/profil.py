"""Optional (`--profil`): py-spy samples of the API and worker during a phase, summarised."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

from bench.processus import BIN, Enfant, Enfants

_LIGNE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    local = BIN / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def demarrer(enfants: Enfants, cible: Enfant, sortie: Path) -> Enfant | None:
    """Sample `cible` until stopped (SIGINT), as collapsed stacks; None without py-spy."""
    binaire = py_spy()
    if binaire is None:
        return None
    commande = [binaire, "record", "--pid", str(cible.pid), "--rate", "100", "--nonblocking"]
    return enfants.lancer(f"py-spy-{sortie.stem}", [*commande, "--format", "raw", "--output", str(sortie)])


def resumer(fichier: Path, lignes: int = 25) -> str:
    """Top functions by own samples (leaf) and by inclusive samples, file:line dropped."""
    propre: Counter[str] = Counter()
    inclusif: Counter[str] = Counter()
    total = 0
    for ligne in fichier.read_text().splitlines():
        pile, _, nombre = ligne.rpartition(" ")
        if not pile or not nombre.isdigit():
            continue
        n = int(nombre)
        total += n
        cadres = [_LIGNE.sub(")", c) for c in pile.split(";")]
        propre[cadres[-1]] += n
        for cadre in set(cadres):
            inclusif[cadre] += n
    if not total:
        return f"{fichier.name} : aucun échantillon\n"
    sortie = [f"== {fichier.name} : {total} échantillons (actifs)", "-- propre"]
    sortie += [f"{100 * n / total:5.1f}%  {c}" for c, n in propre.most_common(lignes)]
    sortie.append("-- inclusif")
    sortie += [f"{100 * n / total:5.1f}%  {c}" for c, n in inclusif.most_common(lignes * 2)]
    return "\n".join(sortie) + "\n"
