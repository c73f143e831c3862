"""The project database's tables (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("parent_id", sa.String(64), sa.ForeignKey("runs.id"), nullable=True, index=True),
    sa.Column("goal", sa.Text, nullable=False),
    sa.Column("agent", sa.String(128), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sa.Column("outcome", sa.JSON, nullable=True),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

steps = sa.Table(
    "steps", metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("step_id", sa.String(64), primary_key=True),
    sa.Column("plan_version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(256), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("output", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("idempotency_key", sa.String(160), nullable=False, default=""),
    sa.Column("duration_ms", sa.Float, nullable=False, default=0.0),
)

experiences = sa.Table(
    "experiences", metadata,
    sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("goal", sa.Text, nullable=False),
    sa.Column("agent", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("plan", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
