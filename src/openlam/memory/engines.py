"""One SQLAlchemy engine per database URL for the whole process.

Runs, the CRM, sent mail and governance all keep their tables in the project database;
sharing one engine per URL gives them one connection pool instead of one each.

SQLite runs in WAL mode with synchronous=NORMAL: a commit survives the process being
killed (what durable runs need) without an fsync per commit; only the last commits may
be lost, and only if the machine itself loses power. ``postgresql://`` URLs use the
psycopg 3 driver (SQLAlchemy would otherwise look for psycopg2).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, MetaData, create_engine, event, make_url

POOL_SIZE, MAX_OVERFLOW = 3, 1  # per process: 20 processes stay within 100 connections
_pool = {"pool_size": POOL_SIZE, "max_overflow": MAX_OVERFLOW}
_engines: dict[str, Engine] = {}
_created: set[tuple[str, int]] = set()
_lock = threading.Lock()


def engine_for(url: str, metadata: MetaData | None = None) -> Engine:
    """The process's engine for ``url``, made on first use; ``metadata``'s tables are
    created the first time it is passed for this URL. Safe to call from any thread."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _new_engine(url)
        if metadata is not None and (url, id(metadata)) not in _created:
            with engine.begin() as conn:
                schema_lock(conn)
                metadata.create_all(conn)
            _created.add((url, id(metadata)))
    return engine


P = ParamSpec("P")
T = TypeVar("T")


async def db_work(engine: Engine, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``work(*args, **kwargs)``, a short piece of database work on ``engine``, from the
    event loop. On SQLite (a file on this machine: a commit is tens of µs, and WAL readers
    never wait) it runs right here: handing it to a thread and back costs more CPU than
    the work (≈ 100 µs and the GIL passed twice; bench/README.md). On a server database,
    where a round trip can be slow, on a thread, so it never holds up the loop."""
    if engine.dialect.name == "sqlite":
        return work(*args, **kwargs)
    return await asyncio.to_thread(work, *args, **kwargs)


SCHEMA_LOCK = 0x0E1A3  # any constant: the PostgreSQL advisory lock for schema changes


def schema_lock(conn: Any) -> None:
    """Serialize schema changes of processes starting at once on a fresh database: on
    PostgreSQL an advisory lock held until the transaction ends; on SQLite the database's
    write lock, taken at once."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
    elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
        # The driver runs DDL outside a transaction: two processes on a new file would both
        # find no tables and both create them. Take the write lock first (others wait for
        # it, up to busy_timeout) so the second one sees the first one's schema.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def configure_pool(settings: Any) -> None:
    """``[database] pool_size`` and ``max_overflow`` in openlam.toml bound the connections
    this process opens to a server database (DBOS shares the same pool)."""
    from openlam.config import whole_number

    _pool["pool_size"] = whole_number(settings, "database", "pool_size", POOL_SIZE, 1)
    _pool["max_overflow"] = whole_number(settings, "database", "max_overflow", MAX_OVERFLOW)


def _new_engine(url: str) -> Engine:
    """An engine of its own, not shared: SQLite as above, PostgreSQL through psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return sqlite_engine(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_pre_ping=True, pool_timeout=60, **_pool)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "before_cursor_execute", _without_nul, retval=True)
    return engine


NUL, REPLACEMENT = "\x00", "\ufffd"


def without_nul(value: Any) -> Any:
    """``value`` (a statement's parameters) with each NUL in its text as U+FFFD.

    PostgreSQL's text cannot hold NUL, and text from outside may carry one (a tool's error
    quoting binary data, a webhook's payload in a goal): refused, it would leave the run
    unsaved. SQLite stores it as it is. (JSON values are escaped already: ``\\u0000``.)"""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT) if NUL in value else value
    if isinstance(value, dict):
        return {k: without_nul(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(without_nul(v) for v in value)
    return value


def _without_nul(
    _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool
) -> tuple[str, Any]:
    return statement, without_nul(parameters)


def sqlite_engine(url: str) -> Engine:
    """A SQLite engine of its own, in WAL mode, its file's directory created. DBOS gets
    a fresh one for its system database at every launch: it is DBOS's alone, not shared
    through :func:`engine_for`."""
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def opened(engine: Engine) -> Engine:
    """``engine``, once a connection to its database has been made, or a UserError that
    names the database and what to do (a damaged SQLite file: restore or move it aside)."""
    try:
        with engine.connect():
            return engine
    except Exception as exc:
        raise open_failed(str(engine.url), exc) from None


def open_failed(url: str, exc: Exception) -> Exception:
    """The UserError for a database at ``url`` that could not be opened because of ``exc``."""
    from openlam.errors import UserError

    text = str(getattr(exc, "orig", None) or exc)
    try:
        parsed = make_url(url)
    except Exception:
        return UserError(
            f"cannot open the database: {text}",
            "give a PostgreSQL or SQLite URL (postgresql://USER@HOST:5432/DATABASE)",
        )
    path = parsed.database if parsed.drivername.startswith("sqlite") else None
    if path and ("not a database" in text or "malformed" in text):
        return UserError(
            f"the database file {path} is damaged ({text})",
            f"restore it from a backup; or, to start afresh, move it aside together with "
            f"{Path(path).name}-wal and {Path(path).name}-shm if they are there (what it "
            "held stays in the moved file)",
        )
    return UserError(
        f"cannot open the database {parsed.render_as_string(hide_password=True)}: {text}",
        "check OPENLAM_DATABASE_URL (or unset it to use SQLite)",
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def release_engines(folder: Path) -> None:
    """Dispose and forget the engines of the SQLite files under ``folder`` — the databases
    of a workspace that is going away (the evaluation harness makes one per task; kept,
    their engines would hold the deleted files open for the life of the process)."""

    def inside(url: str) -> bool:
        database = make_url(url).database if url.startswith("sqlite") else None
        return bool(database) and Path(database).is_relative_to(folder)

    with _lock:
        for url in [u for u in _engines if inside(u)]:
            _engines.pop(url).dispose()
        _created.difference_update({k for k in _created if inside(k[0])})
