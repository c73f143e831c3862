"""executors (leases), checkpoints keyed by step, stored questions, cancellations,
triggers; longer run ids

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RUN_ID = 255


def upgrade() -> None:
    op.create_table(
        "executors",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("pid_start", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("recovered_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_executors_state", "executors", ["state"])
    op.create_table(
        "checkpoints",
        sa.Column("run_id", sa.String(RUN_ID), primary_key=True),
        sa.Column("key", sa.String(96), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("executor", sa.String(128), nullable=False),
        sa.Column("interruptions", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_table(
        "questions",
        sa.Column("run_id", sa.String(RUN_ID), primary_key=True),
        sa.Column("step_id", sa.String(64), primary_key=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("asked_at", sa.Float, nullable=False),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("answered_by", sa.String(128), nullable=True),
        sa.Column("answered_at", sa.Float, nullable=True),
    )
    op.create_table(
        "cancellations",
        sa.Column("run_id", sa.String(RUN_ID), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
    )
    op.create_table(
        "triggers",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("goal", sa.Text, nullable=False),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("department", sa.String(128), nullable=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    # Delegated children's ids grow with depth (run-….s1.s2): 64 characters were too few.
    # SQLite does not enforce a VARCHAR length (and rebuilding a referenced table there
    # would trip its foreign keys), so only other databases are altered.
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in (
        ("runs", "id"),
        ("runs", "parent_id"),
        ("steps", "run_id"),
        ("experiences", "run_id"),
    ):
        op.alter_column(table, column, type_=sa.String(RUN_ID))
    op.alter_column("steps", "idempotency_key", type_=sa.String(RUN_ID + 65))


def downgrade() -> None:
    op.drop_table("triggers")
    op.drop_table("cancellations")
    op.drop_table("questions")
    op.drop_table("checkpoints")
    op.drop_table("executors")
