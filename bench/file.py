"""The gestionnaires' work queue at 100,000 requests: `file_de_travail` timed on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import event

from bench import bases
from modif_solde.db import create_engine, session_factory, unit_of_work
from modif_solde.migrations import migrer
from modif_solde.models.enums import StatutDemande
from modif_solde.services.lecture import FiltresFile, file_de_travail

journal = logging.getLogger("bench")

BASE = "modif_solde_bench_file"
DEMANDES = 100_000
OPERATEURS = 20_000
# One request in ten is `a_modifier` with an open modification (10,000 at 100,000).
PAS_OUVERTES = 10
PAR_PAGE = 50  # the page's size (modif_solde/pages/file.py)
PAGE_PROFONDE = 1_000
MESURES = 15
CIBLE_MS = 100.0


def _remplissage(demandes: int, operateurs: int) -> list[str]:
    """Set-based SQL: operators, requests, their open modifications (deadlines spread over
    -3..+17 days, one in three reminded) and a closed round on one request in five. Only the
    two integers are formatted into the SQL."""
    return [
        f"""
        INSERT INTO operateur (siret, numero_ans, denomination, adresse_ligne, code_postal, commune,
                               courriel, cree_le)
        SELECT '9' || lpad(i::text, 13, '0'), 'ANS' || i, 'Societe Alpha ' || i, '1 rue de la Paix',
               '75002', 'Paris', 'operateur' || i || '@bench.invalid', now()
        FROM generate_series(1, {operateurs}) AS i
        """,  # noqa: S608
        f"""
        INSERT INTO demande (numero, type, statut, statut_modifie_le, date_depot, operateur_id,
            operateur_numero_ans, operateur_denomination, operateur_adresse_ligne, operateur_code_postal,
            operateur_commune, operateur_courriel, dsr, contact_support_nom, contact_support_telephone,
            contact_support_courriel, site_documentation_url, bal_applicatives, bal_organisationnelles,
            bal_nominatives, avance_centimes, engagement_solde_centimes, solde_centimes, titulaire, iban,
            bic, version, importee_le)
        SELECT 'FINMSS' || lpad(i::text, 6, '0'), 'solde',
               CASE WHEN i % {PAS_OUVERTES} = 0 THEN 'a_modifier' ELSE 'en_cours' END,
               now() - (i % 90) * interval '1 day', current_date - i % 365,
               o, 'ANS' || o, 'Societe Alpha ' || o, '1 rue de la Paix', '75002', 'Paris',
               'operateur' || o || '@bench.invalid', 'DSR', 'Support', '0102030405',
               'support@bench.invalid', 'https://doc.bench.invalid', 1, 1, 1, 100000, 200000, 100000,
               'Titulaire', 'FR7630006000011234567890189', 'AGRIFRPP', 1, now()
        FROM generate_series(1, {demandes}) AS i, LATERAL (SELECT 1 + (i - 1) % {operateurs} AS o) AS op
        """,  # noqa: S608
        """
        INSERT INTO modification (numero, demande_id, rang, commentaire, champs_attendus, statut, brouillon,
            ouverte_par, ouverte_le, relance_le, expire_le, relance_envoyee_le, brouillon_version)
        SELECT d.numero || 'M1', d.id, 1, 'Merci de corriger.', '["contact_support_telephone"]', 'ouverte',
               '{}', 'gestionnaire.bench', e - interval '20 days', e - interval '5 days', e,
               CASE WHEN d.id % 3 = 0 THEN e - interval '5 days' END, 0
        FROM demande AS d,
             LATERAL (SELECT now() + ((d.id * 7919) % (20 * 24 * 60) - 3 * 24 * 60) * interval '1 minute'
                      AS e) AS x
        WHERE d.statut = 'a_modifier'
        """,
        """
        INSERT INTO modification (numero, demande_id, rang, commentaire, champs_attendus, statut, brouillon,
            ouverte_par, ouverte_le, relance_le, expire_le, cloturee_le, issue, brouillon_version)
        SELECT d.numero || 'M1', d.id, 1, 'Merci de corriger.', '["contact_support_telephone"]', 'confirmee',
               '{}', 'gestionnaire.bench', now() - interval '60 days', now() - interval '45 days',
               now() - interval '40 days', now() - interval '50 days', 'Confirmée', 0
        FROM demande AS d
        WHERE d.statut = 'en_cours' AND d.id % 5 = 1
        """,
        "ANALYZE",
    ]


def _scenarios(demandes: int) -> list[tuple[str, str, FiltresFile, int]]:
    """(key, label, filters, page): what a gestionnaire does in the queue."""
    milieu = max(1, demandes // 2)
    milieu -= milieu % PAS_OUVERTES  # an `a_modifier` one
    profonde = min(PAGE_PROFONDE, max(1, demandes // PAR_PAGE))
    dans_5_jours = datetime.now(UTC) + timedelta(days=5)
    return [
        ("premiere_page", "1re page (sans filtre)", FiltresFile(), 1),
        ("page_profonde", f"page {profonde} de {PAR_PAGE}", FiltresFile(), profonde),
        ("statut", "statut « à modifier »", FiltresFile(statut=StatutDemande.A_MODIFIER), 1),
        ("statut_profonde", "statut « en cours », page 100", FiltresFile(statut=StatutDemande.EN_COURS), 100),
        ("echeance_avant", "échéance avant J+5", FiltresFile(echeance_avant=dans_5_jours), 1),
        ("relancee", "relancée : oui", FiltresFile(relancee=True), 1),
        ("non_relancee", "relancée : non", FiltresFile(relancee=False), 1),
        ("recherche_numero", "recherche par numéro", FiltresFile(recherche=f"FINMSS{milieu:06d}"), 1),
        (
            "recherche_siret",
            "recherche par SIRET",
            FiltresFile(recherche=f"9{1 + milieu % OPERATEURS:013d}"),
            1,
        ),
        (
            "recherche_nom",
            "recherche par dénomination",
            FiltresFile(recherche=f"alpha {1 + milieu % OPERATEURS}"),
            1,
        ),
        # A part of a name that every request matches: past RECHERCHE_PAR_IDS, the slow path.
        ("recherche_large", "recherche large (toutes trouvées)", FiltresFile(recherche="alpha"), 1),
    ]


async def _recreer(admin: str, base: str = BASE) -> str:
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", base)
        await conn.execute(f'DROP DATABASE IF EXISTS "{base}"')
        await conn.execute(f'CREATE DATABASE "{base}"')
    finally:
        await conn.close()
    return admin.rsplit("/", 1)[0] + f"/{base}"


async def supprimer(admin: str, base: str = BASE) -> None:
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", base)
        await conn.execute(f'DROP DATABASE IF EXISTS "{base}"')
    finally:
        await conn.close()


def _centiles(durees: list[float]) -> dict[str, float]:
    ordonnees = sorted(durees)
    p95 = ordonnees[min(len(ordonnees) - 1, round(0.95 * (len(ordonnees) - 1)))]
    return {"p50_ms": round(statistics.median(ordonnees) * 1000, 1), "p95_ms": round(p95 * 1000, 1)}


async def _chronometrer(appel: Callable[[], Awaitable[Any]], fois: int) -> list[float]:
    await appel()  # warm: the plan cache and the pages read once
    durees = []
    for _ in range(fois):
        debut = time.perf_counter()
        await appel()
        durees.append(time.perf_counter() - debut)
    return durees


async def mesurer(admin: str, demandes: int = DEMANDES, operateurs: int = OPERATEURS) -> dict[str, Any]:
    """Its own database, migrated, filled with SQL, measured, dropped."""
    operateurs = min(operateurs, demandes)
    r: dict[str, Any] = {
        "demandes": demandes,
        "operateurs": operateurs,
        "par_page": PAR_PAGE,
        "cible_ms": CIBLE_MS,
    }
    journal.info("[file] base %s : migrations puis %d demandes, %d opérateurs", BASE, demandes, operateurs)
    url = await _recreer(admin)
    try:
        await asyncio.to_thread(migrer, bases.url_async(url))
        debut = time.monotonic()
        conn = await asyncpg.connect(url, timeout=10)
        try:
            for sql in _remplissage(demandes, operateurs):
                await conn.execute(sql)
            r["ouvertes"] = await conn.fetchval("SELECT count(*) FROM modification WHERE statut = 'ouverte'")
        finally:
            await conn.close()
        r["remplissage_s"] = round(time.monotonic() - debut, 1)
        journal.info(
            "[file]   rempli en %.1f s (%d modifications ouvertes)", r["remplissage_s"], r["ouvertes"]
        )

        engine = create_engine(bases.url_async(url))
        sessions = session_factory(engine)
        requetes: list[tuple[str, Any]] = []

        def noter(_conn: Any, _curseur: Any, sql: str, parametres: Any, *_: Any) -> None:
            requetes.append((sql, parametres))

        try:
            mesures: dict[str, Any] = {}
            for cle, libelle, filtres, page in _scenarios(demandes):

                async def appel(filtres: FiltresFile = filtres, page: int = page) -> Any:
                    async with unit_of_work(sessions) as session:
                        return await file_de_travail(session, filtres, PAR_PAGE, (page - 1) * PAR_PAGE)

                durees = await _chronometrer(appel, MESURES)
                liste = await appel()
                m: dict[str, Any] = {"libelle": libelle, "lignes": len(liste.demandes), "total": liste.total}
                m.update(_centiles(durees))
                m["atteint"] = m["p95_ms"] <= CIBLE_MS
                if cle in ("premiere_page", "page_profonde"):
                    requetes.clear()
                    event.listen(engine.sync_engine, "before_cursor_execute", noter)
                    try:
                        await appel()
                    finally:
                        event.remove(engine.sync_engine, "before_cursor_execute", noter)
                    m["plan"] = await _plan(engine, requetes)
                mesures[cle] = m
                journal.info(
                    "[file]   %-32s p50 %6.1f ms  p95 %6.1f ms  (%d lignes sur %d)",
                    libelle,
                    m["p50_ms"],
                    m["p95_ms"],
                    m["lignes"],
                    m["total"],
                )
            r["mesures"] = mesures
        finally:
            await engine.dispose()
    finally:
        await supprimer(admin)
    return r


async def _plan(engine: Any, requetes: list[tuple[str, Any]]) -> list[str]:
    """EXPLAIN ANALYZE of the page's ordered query (the one with OFFSET): its top lines."""
    sql, parametres = next((s, p) for s, p in requetes if "OFFSET" in s.upper())
    async with engine.connect() as conn:
        lignes = (await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", parametres)).all()
    return [ligne[0] for ligne in lignes]


def tableau(r: dict[str, Any]) -> list[str]:
    """The report's lines for the queue scenario."""
    mesures = r.get("mesures", {})
    if not mesures:
        return []
    lignes = [
        f"File de travail des gestionnaires (PostgreSQL, {r['demandes']} demandes, {r['operateurs']} "
        f"opérateurs, {r['ouvertes']} modifications ouvertes ; pages de {r['par_page']}, "
        f"{MESURES} mesures chacune) :",
        f"  {'scénario':<34}{'p50 ms':>9}{'p95 ms':>9}{'total':>9}  cible p95 ≤ {r['cible_ms']:.0f} ms",
    ]
    for m in mesures.values():
        lignes.append(
            f"  {m['libelle']:<34}{m['p50_ms']:>9.1f}{m['p95_ms']:>9.1f}{m['total']:>9}  "
            f"{'oui' if m['atteint'] else 'NON'}"
        )
    for cle in ("premiere_page", "page_profonde"):
        plan = mesures.get(cle, {}).get("plan")
        if plan:
            lignes.append(f"  plan ({mesures[cle]['libelle']}) :")
            lignes += [f"    {ligne}" for ligne in plan[:8]]
    return lignes
