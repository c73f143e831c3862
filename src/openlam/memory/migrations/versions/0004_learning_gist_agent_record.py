"""learning: reworded goals (gist_key on playbooks) and each agent's record per kind of goal

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("learn_playbooks", sa.Column("gist_key", sa.String(64), nullable=True))
    op.create_index("ix_learn_playbooks_gist_key", "learn_playbooks", ["gist_key"])
    _backfill()
    op.create_table(
        "learn_agent_record",
        sa.Column("agent", sa.String(128), primary_key=True),
        sa.Column("gist_key", sa.String(64), primary_key=True),
        sa.Column("gist", sa.Text, nullable=False),
        sa.Column("successes", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("runs", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_learn_agent_record_gist_key", "learn_agent_record", ["gist_key"])


def _backfill() -> None:
    """Existing playbooks get the key their shape has today (the function is imported:
    a copy here could drift from what matching computes)."""
    from openlam.learning.gist import gist_key

    conn = op.get_bind()
    table = sa.table(
        "learn_playbooks",
        sa.column("id", sa.String),
        sa.column("shape", sa.Text),
        sa.column("gist_key", sa.String),
    )
    for ident, shape in conn.execute(sa.select(table.c.id, table.c.shape)).all():
        conn.execute(sa.update(table).where(table.c.id == ident).values(gist_key=gist_key(shape)))


def downgrade() -> None:
    op.drop_table("learn_agent_record")
    op.drop_index("ix_learn_playbooks_gist_key", "learn_playbooks")
    with op.batch_alter_table("learn_playbooks") as batch:  # SQLite: a table rebuild
        batch.drop_column("gist_key")
