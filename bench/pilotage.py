"""The steering dashboard and the queue's export at 100,000 requests, on PostgreSQL: the
figures' queries timed (target p95 ≤ 200 ms) over this month and over a year, and the export
of every request streamed as CSV and ODS, timed, with its memory peak (tracemalloc) beside the
peak for a tenth of the rows: flat when the two are alike."""

from __future__ import annotations

import asyncio
import logging
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import asyncpg

from bench import bases, file
from modif_solde.db import create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.models.enums import StatutDemande
from modif_solde.services import export, pilotage
from modif_solde.services.lecture import FiltresFile

journal = logging.getLogger("bench")

BASE = "modif_solde_bench_pilotage"
DEMANDES = 100_000
MESURES = 15
CIBLE_MS = 200.0


def _remplissage(demandes: int) -> list[str]:
    """The queue's set (bench/file.py), then a closed round on every request `en_cours` over the
    last year (each outcome in turn, answered in 0 to 19 days, reminded past 10) and its e-mail,
    one in twenty given up."""
    return [
        *file._remplissage(demandes, min(file.OPERATEURS, demandes))[:-1],
        """
        INSERT INTO modification (numero, demande_id, rang, commentaire, champs_attendus, statut, brouillon,
            ouverte_par, ouverte_le, relance_le, expire_le, relance_envoyee_le, cloturee_le, brouillon_version)
        SELECT d.numero || 'M2', d.id, 2, 'Merci de corriger.', '["contact_support_telephone"]',
               (ARRAY['confirmee', 'renoncee', 'retiree', 'expiree'])[1 + d.id % 4], '{}', 'gestionnaire.bench',
               o, o + interval '10 days', o + interval '20 days',
               CASE WHEN j >= 10 THEN o + interval '10 days' END, o + j * interval '1 day' + interval '3 hours', 0
        FROM demande AS d,
             LATERAL (SELECT now() - (1 + d.id % 365) * interval '1 day' AS o, (d.id * 37) % 20 AS j) AS x
        WHERE d.statut = 'en_cours'
        """,
        """
        INSERT INTO courriel (demande_id, modification_id, type, destinataire, sujet, corps_texte, corps_html,
            cle_idempotence, message_id, cree_le, envoye_le, tentatives, statut_envoi, erreur_envoi)
        SELECT m.demande_id, m.id, (ARRAY['invitation', 'relance', 'confirmation'])[1 + m.id % 3],
               'operateur@bench.invalid', 'Sujet', 'Texte', '<p>Texte</p>', 'bench-' || m.id,
               '<' || m.id || '@bench>', m.ouverte_le, m.ouverte_le, 1,
               CASE WHEN m.id % 20 = 0 THEN 'echec' ELSE 'envoye' END,
               CASE WHEN m.id % 20 = 0 THEN '550 boîte inconnue' END
        FROM modification AS m WHERE m.rang = 2
        """,
        "ANALYZE",
    ]


async def _exporter(
    sessions: Any, filtres: FiltresFile, flux: Callable[[Any], AsyncIterator[bytes]]
) -> dict[str, Any]:
    """One export read to its end, timed; then again under tracemalloc (which slows Python
    down), for its memory peak."""

    async def lire() -> int:
        taille = 0
        async for morceau in flux(export.lignes(sessions, filtres, export.Libelles({}, {}))):
            taille += len(morceau)
        return taille

    debut = time.perf_counter()
    taille = await lire()
    duree = time.perf_counter() - debut
    tracemalloc.start()
    try:
        await lire()
        pic = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"octets": taille, "duree_s": round(duree, 2), "pic_memoire_mo": round(pic / 1e6, 2)}


async def mesurer(admin: str, demandes: int = DEMANDES) -> dict[str, Any]:
    """Its own database, migrated, filled with SQL, measured, dropped."""
    r: dict[str, Any] = {"demandes": demandes, "cible_ms": CIBLE_MS}
    journal.info("[pilotage] base %s : migrations puis %d demandes", BASE, demandes)
    url = await file._recreer(admin, BASE)
    try:
        await asyncio.to_thread(migrer, bases.url_async(url))
        debut = time.monotonic()
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for sql in _remplissage(demandes):
                await conn.execute(sql)
            r["modifications"] = await conn.fetchval("SELECT count(*) FROM modification")
            r["courriels"] = await conn.fetchval("SELECT count(*) FROM courriel")
        finally:
            await conn.close()
        r["remplissage_s"] = round(time.monotonic() - debut, 1)
        journal.info(
            "[pilotage]   rempli en %.1f s (%d modifications)", r["remplissage_s"], r["modifications"]
        )

        engine = create_engine(bases.url_async(url))
        sessions = session_factory(engine)
        try:
            jour = pilotage.aujourd_hui()
            periodes = {
                "mois": ("tableau de bord, ce mois-ci", pilotage.mois_de(jour)),
                "annee": ("tableau de bord, 12 mois", pilotage.Periode(jour - timedelta(days=364), jour)),
            }
            mesures: dict[str, Any] = {}
            for cle, (libelle, periode) in periodes.items():

                async def appel(periode: pilotage.Periode = periode) -> pilotage.Pilotage:
                    async with unit_of_work(sessions) as session:
                        return await pilotage.lire_pilotage(session, periode)

                durees = await file._chronometrer(appel, MESURES)
                chiffres = await appel()
                m: dict[str, Any] = {"libelle": libelle, **file._centiles(durees)}
                m["atteint"] = m["p95_ms"] <= CIBLE_MS
                m["ouvertes"] = chiffres.ouvertes
                m["reponses"] = chiffres.delai_reponse.reponses
                mesures[cle] = m
                journal.info(
                    "[pilotage]   %-28s p50 %6.1f ms  p95 %6.1f ms", libelle, m["p50_ms"], m["p95_ms"]
                )
            r["tableau_de_bord"] = mesures

            exports: dict[str, Any] = {}
            un_dixieme = FiltresFile(statut=StatutDemande.A_MODIFIER)
            for nom, flux in (("csv", export.csv_flux), ("ods", export.ods_flux)):
                tout = await _exporter(sessions, FiltresFile(), flux)
                dixieme = await _exporter(sessions, un_dixieme, flux)
                exports[nom] = {"tout": tout, "dixieme": dixieme}
                journal.info(
                    "[pilotage]   export %s : %d demandes en %.2f s, %.1f Mo, pic %.2f Mo (un dixième : pic %.2f Mo)",
                    nom, demandes, tout["duree_s"], tout["octets"] / 1e6, tout["pic_memoire_mo"],
                    dixieme["pic_memoire_mo"],
                )  # fmt: skip
            r["export"] = exports
        finally:
            await engine.dispose()
    finally:
        await file.supprimer(admin, BASE)
    return r


def tableau(r: dict[str, Any]) -> list[str]:
    """The report's lines for the steering scenario."""
    if not r.get("tableau_de_bord"):
        return []
    lignes = [
        f"Pilotage (PostgreSQL, {r['demandes']} demandes, {r['modifications']} modifications, "
        f"{r['courriels']} courriels ; {MESURES} mesures chacune) :",
        f"  {'scénario':<34}{'p50 ms':>9}{'p95 ms':>9}  cible p95 ≤ {r['cible_ms']:.0f} ms",
    ]
    for m in r["tableau_de_bord"].values():
        lignes.append(
            f"  {m['libelle']:<34}{m['p50_ms']:>9.1f}{m['p95_ms']:>9.1f}  {'oui' if m['atteint'] else 'NON'}"
        )
    lignes.append(
        f"  {'export':<10}{'demandes':>10}{'durée s':>9}{'Mo':>8}{'pic Mo':>8}{'pic 1/10':>10}  cible : pic plat"
    )
    for nom, e in r.get("export", {}).items():
        t, d = e["tout"], e["dixieme"]
        plat = t["pic_memoire_mo"] <= 1.3 * d["pic_memoire_mo"] + 0.5
        lignes.append(
            f"  {nom:<10}{r['demandes']:>10}{t['duree_s']:>9.2f}{t['octets'] / 1e6:>8.1f}"
            f"{t['pic_memoire_mo']:>8.2f}{d['pic_memoire_mo']:>10.2f}  {'oui' if plat else 'NON'}"
        )
    return lignes
