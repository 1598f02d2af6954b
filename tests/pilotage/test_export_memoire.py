"""The export streams: 100,000 requests written as CSV and as ODS in the memory of a few
partitions (tracemalloc's peak), the same peak as for 10,000: flat, not growing with the rows."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from modif_solde.db import SessionFactory, create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.models.tables import Demande, Operateur
from modif_solde.services import export, lecture


async def remplir(factory: SessionFactory, debut: int, fin: int) -> None:
    """Requests FINMSS1000000+i for i in [debut, fin), in one transaction."""
    le = datetime(2026, 3, 1, tzinfo=UTC)
    async with unit_of_work(factory) as session:
        connexion = await session.connection()
        if debut == 0:
            await connexion.execute(
                insert(Operateur),
                [
                    {
                        "id": 1, "siret": "50961588600025", "numero_ans": "pbrMSS0023", "denomination": "SCI VOITURE",
                        "adresse_ligne": "0 ESP DE ROUEN", "code_postal": "80021", "commune": "AMIENS",
                        "courriel": "operateur@sci-voiture.example", "cree_le": le,
                    }
                ],
            )  # fmt: skip
        lignes = [
            {
                "numero": f"FINMSS{1_000_000 + i}", "statut": "en_cours", "statut_modifie_le": le,
                "date_depot": date(2023, 6, 5), "operateur_id": 1, "operateur_numero_ans": "pbrMSS0023",
                "operateur_denomination": "Société générale d'hébergement", "operateur_adresse_ligne": "0 ESP DE ROUEN",
                "operateur_code_postal": "80021", "operateur_commune": "AMIENS",
                "operateur_courriel": "operateur@sci-voiture.example", "dsr": "DSR", "contact_support_telephone": "0600000000",
                "contact_support_courriel": "a@b.fr", "site_documentation_url": "https://x.fr", "bal_applicatives": 1,
                "bal_organisationnelles": 1, "bal_nominatives": 1, "avance_centimes": 1, "engagement_solde_centimes": 2,
                "solde_centimes": 1, "titulaire": "T", "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP",
                "version": 1, "importee_le": le,
            }
            for i in range(debut, fin)
        ]  # fmt: skip
        for i in range(0, len(lignes), 10_000):
            await connexion.execute(insert(Demande), lignes[i : i + 10_000])


async def mesurer(flux: Callable[[Any], AsyncIterator[bytes]], factory: SessionFactory) -> tuple[int, int]:
    """(bytes written, peak of memory traced while writing them)."""
    tracemalloc.start()
    try:
        taille = 0
        async for morceau in flux(export.lignes(factory, lecture.FiltresFile(), export.Libelles({}, {}))):
            taille += len(morceau)
        return taille, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture
async def factory_sqlite(tmp_path: Path) -> AsyncIterator[SessionFactory]:
    url = f"sqlite+aiosqlite:///{tmp_path}/export.db"
    await asyncio.to_thread(migrer, url)
    moteur = create_engine(url)
    yield session_factory(moteur)
    await moteur.dispose()


@pytest.mark.parametrize("flux", [export.csv_flux, export.ods_flux], ids=["csv", "ods"])
async def test_100_000_demandes_en_memoire_constante(
    factory_sqlite: SessionFactory, flux: Callable[[Any], AsyncIterator[bytes]]
) -> None:
    await remplir(factory_sqlite, 0, 10_000)
    taille_10k, pic_10k = await mesurer(flux, factory_sqlite)
    await remplir(factory_sqlite, 10_000, 100_000)
    taille_100k, pic_100k = await mesurer(flux, factory_sqlite)
    assert taille_100k > 9 * taille_10k
    # Flat: ten times the rows, not more memory (a margin for the allocator's noise).
    assert pic_100k < pic_10k * 1.3 + 512 * 1024, (pic_10k, pic_100k)
    # And small: a few partitions, far below what the whole file would take.
    assert pic_100k < 8 * 1024 * 1024, pic_100k
    print(
        f"{flux.__name__}: {taille_100k / 1e6:.1f} Mo écrits, pic {pic_100k / 1e6:.2f} Mo (10 000 : {pic_10k / 1e6:.2f} Mo)"
    )
