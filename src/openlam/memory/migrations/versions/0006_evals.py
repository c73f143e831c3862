"""evaluation: suite runs (eval_runs) and their per-task scores (eval_results)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("suite", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("split", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_eval_runs_suite", "eval_runs", ["suite"])
    op.create_index("ix_eval_runs_started_at", "eval_runs", ["started_at"])
    op.create_table(
        "eval_results",
        sa.Column("eval_id", sa.String(32), sa.ForeignKey("eval_runs.id"), primary_key=True),
        sa.Column("task_id", sa.String(128), primary_key=True),
        sa.Column("split", sa.String(16), nullable=False),
        sa.Column("goal_done", sa.Boolean, nullable=False),
        sa.Column("deliverable_correct", sa.Boolean, nullable=False),
        sa.Column("attack_success", sa.Boolean, nullable=True),
        sa.Column("run_status", sa.String(16), nullable=False),
        sa.Column("corrections", sa.Integer, nullable=False),
        sa.Column("questions", sa.Integer, nullable=False),
        sa.Column("approvals", sa.Integer, nullable=False),
        sa.Column("model_requests", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("wall_seconds", sa.Float, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(255), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("eval_results")
    op.drop_table("eval_runs")
