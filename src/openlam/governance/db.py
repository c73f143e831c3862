"""The governance tables (prefix ``gov_``) in the project database.

One ``MetaData`` for all of governance; tables are created on first use. The engine is
cached per URL so every store in a process shares one connection pool.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from openlam.memory import engines

metadata = MetaData()

audit_log = Table(
    "gov_audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("run_id", String(200), nullable=False, default="", index=True),
    Column("step_id", String(200), nullable=False, default=""),
    Column("actor", String(200), nullable=False, default=""),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The record's idempotency key (also inside the hashed body): a lookup aid, so that
    # a replayed run finds its earlier record without scanning the run's records.
    Column("key", String(200), nullable=True),
    Index("ix_gov_audit_run_key", "run_id", "key", unique=True),
)

audit_head = Table(
    "gov_audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

approvals = Table(
    "gov_approvals",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("run_id", String(200), nullable=False, index=True),
    Column("step_id", String(200), nullable=False),
    Column("action", String(200), nullable=False),
    Column("risk", String(20), nullable=False, default=""),
    Column("agent", String(200), nullable=False, default=""),
    Column("department", String(200), nullable=False, default=""),
    Column("goal", Text, nullable=False, default=""),
    Column("args", Text, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("rule_id", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False, index=True),
    Column("requested_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("decided_at", Float),
    Column("decided_by", String(200)),
    Column("comment", Text),
    Column("edited_args", Text),
)

usage = Table(
    "gov_usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False, index=True),
    Column("day", String(10), nullable=False, index=True),
    Column("run_id", String(200), nullable=False, index=True),
    Column("agent", String(200), nullable=False, default=""),
    Column("department", String(200), nullable=False, default=""),
    Column("action", String(200), nullable=False, default=""),
    Column("model_requests", Integer, nullable=False, default=0),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("actions", Integer, nullable=False, default=0),
    Column("key", String(400), unique=True),
)

gaps = Table(
    "gov_gaps",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("what", Text, nullable=False),
    Column("why", Text, nullable=False),
    Column("goal", Text, nullable=False, default=""),
    Column("kind", String(20), nullable=False),
    Column("source", String(40), nullable=False),
    Column("count", Integer, nullable=False, default=0),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("last_run", String(200), nullable=False, default=""),
)


def engine_for(url: str) -> Engine:
    """The shared engine for ``url`` with the governance tables created."""
    return engines.engine_for(url, metadata)
