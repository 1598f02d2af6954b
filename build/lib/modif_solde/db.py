"""Database engine and sessions: one async engine per URL, one transaction per unit of work."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

journal = logging.getLogger(__name__)


def create_engine(url: str, lecture_seule: bool = False, **kwargs: Any) -> AsyncEngine:
    """`lecture_seule`: for SQLite, transactions that only read and so need not take the write
    lock (WAL lets them run beside a writer); the same engine as usual elsewhere."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _serialise_sqlite_writes(engine, "BEGIN" if lecture_seule else "BEGIN IMMEDIATE")
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


def est_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _serialise_sqlite_writes(engine: AsyncEngine, debut: str) -> None:
    """SQLite: WAL, foreign keys, and BEGIN IMMEDIATE so that a read-then-write transaction
    takes the write lock first (two concurrent transitions queue instead of failing)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(debut)


SessionFactory = async_sessionmaker[AsyncSession]


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(factory: SessionFactory) -> AsyncIterator[AsyncSession]:
    """One transaction: committed when the block ends, rolled back if it raises.
    Services never commit; this boundary does (the API request, the activity)."""
    async with factory() as session:
        try:
            async with session.begin():
                yield session
        except BaseException:
            session.info.pop(_AFTER_COMMIT, None)
            await _executer(session.info.pop(_ON_ROLLBACK, []))
            raise
        session.info.pop(_ON_ROLLBACK, None)
        await _executer(session.info.pop(_AFTER_COMMIT, []))


async def _executer(hooks: list[Hook]) -> None:
    """Run each hook (awaited when it is a coroutine, like an object store's delete). A hook
    that fails is logged and the others still run: the transaction's outcome stands, and a
    file left behind is found by the sweep of `modif-solde verifier`."""
    for hook in hooks:
        try:
            resultat = hook()
            if inspect.isawaitable(resultat):
                # Shielded: a cancelled request still removes the file it wrote.
                with anyio.CancelScope(shield=True):
                    await resultat
        except Exception:
            journal.warning("action après la transaction en échec", exc_info=True)


_AFTER_COMMIT = "apres_commit"
_ON_ROLLBACK = "si_annule"


Hook = Callable[[], Awaitable[None] | None]


def after_commit(session: AsyncSession, hook: Hook) -> None:
    """Run `hook` once the transaction has committed (e.g. delete a discarded file): never
    before, so a rolled-back transaction loses nothing."""
    session.info.setdefault(_AFTER_COMMIT, []).append(hook)


def on_rollback(session: AsyncSession, hook: Hook) -> None:
    """Run `hook` if the transaction is rolled back (e.g. delete a file written for it)."""
    session.info.setdefault(_ON_ROLLBACK, []).append(hook)


@contextmanager
def compter_requetes(*engines: AsyncEngine | Engine) -> Iterator[list[str]]:
    """Every SQL statement sent to the database through `engines` while the block runs, in
    order (transaction control sent as SQL included, e.g. SQLite's BEGIN): `len()` of the list
    is the number of statements. For the tests and the bench; it costs nothing once the block
    has ended (the listener is removed).

        with compter_requetes(app.state.engine, app.state.engine_lecture) as requetes:
            await client.get("/api/v1/demandes/FINMSS009266")
        assert len(requetes) <= 4
    """
    requetes: list[str] = []

    def _noter(_conn: Any, _cursor: Any, instruction: str, *_args: Any) -> None:
        requetes.append(instruction)

    # The same engine may be given twice (PostgreSQL reads and writes share one): listened once.
    moteurs = list({id(e): e.sync_engine if isinstance(e, AsyncEngine) else e for e in engines}.values())
    for moteur in moteurs:
        event.listen(moteur, "before_cursor_execute", _noter)
    try:
        yield requetes
    finally:
        for moteur in moteurs:
            event.remove(moteur, "before_cursor_execute", _noter)
