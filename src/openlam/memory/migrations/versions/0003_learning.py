"""learning: playbooks, lessons from people, tool reliability

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "learn_playbooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("shape_key", sa.String(64), nullable=False),
        sa.Column("shape", sa.Text, nullable=False),
        sa.Column("pattern", sa.Text, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("example", sa.Text, nullable=False),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("runs", sa.JSON, nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("failing", sa.Integer, nullable=False),
        sa.Column("last_failure", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_learn_playbooks_shape_key", "learn_playbooks", ["shape_key"])
    op.create_index("ix_learn_playbooks_updated_at", "learn_playbooks", ["updated_at"])
    op.create_table(
        "learn_lessons",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("agent", sa.String(128), nullable=False),
        sa.Column("action", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_learn_lessons_agent", "learn_lessons", ["agent"])
    op.create_table(
        "learn_tool_stats",
        sa.Column("action", sa.String(256), primary_key=True),
        sa.Column("source", sa.String(256), nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("latencies", sa.JSON, nullable=False),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("learn_tool_stats")
    op.drop_table("learn_lessons")
    op.drop_table("learn_playbooks")
