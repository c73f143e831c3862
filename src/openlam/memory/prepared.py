"""Statements compiled once for an engine and run on the driver's own cursor.

SQLAlchemy executing an already-built statement still costs several times what the
database takes to run it: 105 µs for a one-row SELECT through the pool against 19 µs on
the driver's cursor (SQLite, bench/README.md "Cost per run"). The statements every run
executes again and again — the lease renewal and the checkpoint of each step, the
cancellation check, the audit records — go through :class:`Prepared` instead: the
statement is still built with SQLAlchemy (one definition, both dialects), compiled once
per engine, and its bind values converted by its own column types (JSON, say).

It runs inside a SQLAlchemy transaction (``with engine.begin() as conn``), on that
transaction's driver connection, so it commits or rolls back with everything else; the
driver's errors are raised as SQLAlchemy's (``IntegrityError``, ``OperationalError``…),
as ``conn.execute`` would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from openlam.memory.engines import without_nul


class Prepared:
    def __init__(self, engine: sa.Engine, statement: ClauseElement) -> None:
        self.dialect = dialect = engine.dialect
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("a statement with an expanding IN list cannot be prepared")
        self.sql = compiled.string
        self.defaults: dict[str, Any] = {**(compiled.params or {})}  # values it carries
        self.order = list(compiled.positiontup or [])  # qmark/format drivers: by position
        # Every value the statement has no value of must be given (an INSERT's columns
        # too): a forgotten one would go in as NULL rather than its column's default.
        self.required = frozenset(name for name, bind in compiled.binds.items() if bind.required)
        self.processors: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor

    def execute(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run with ``params`` (by bind name); the number of rows it changed."""
        return self._run(conn, params or {}, lambda cursor: cursor.rowcount)

    def first(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> Any:
        """The first row a query returns (a tuple of driver values), or None."""
        return self._run(conn, params or {}, lambda cursor: cursor.fetchone())

    def execute_many(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        self._run(conn, rows, lambda _cursor: None)

    def _run(self, conn: sa.Connection, params: Any, read: Any) -> Any:
        driver_error = self.dialect.loaded_dbapi.Error
        cursor = _driver(conn).cursor()
        try:
            if isinstance(params, Mapping):
                cursor.execute(self.sql, self._bind(params))
            else:
                cursor.executemany(self.sql, [self._bind(row) for row in params])
            return read(cursor)
        except driver_error as exc:  # as SQLAlchemy would raise it
            raise DBAPIError.instance(self.sql, None, exc, driver_error) from exc
        finally:
            cursor.close()

    def _bind(self, params: Mapping[str, Any]) -> Any:
        if not self.required <= params.keys():
            missing = ", ".join(sorted(self.required - params.keys()))
            raise ValueError(f"no value given for {missing} in: {self.sql}")
        values = {**self.defaults, **params}
        for name, processor in self.processors.items():
            values[name] = processor(values.get(name))
        if self.dialect.name == "postgresql":  # as the engine's own statements (engines.py)
            values = without_nul(values)
        if self.order:
            return tuple(values.get(name) for name in self.order)
        return values


def _driver(conn: sa.Connection) -> Any:
    driver = conn.connection.dbapi_connection
    assert driver is not None, "a Prepared statement runs on an open connection"
    return driver
