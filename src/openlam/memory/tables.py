"""The project database's tables (SQLAlchemy Core). Alembic migrations create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

RUN_ID = 255  # a delegated child's id is its parent's plus ".step": validation bounds both

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(RUN_ID), primary_key=True),
    sa.Column("parent_id", sa.String(RUN_ID), sa.ForeignKey("runs.id"), nullable=True, index=True),
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
    "steps",
    metadata,
    sa.Column("run_id", sa.String(RUN_ID), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("step_id", sa.String(64), primary_key=True),
    sa.Column("plan_version", sa.Integer, nullable=False),
    sa.Column("action", sa.String(256), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("output", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("idempotency_key", sa.String(RUN_ID + 65), nullable=False, default=""),
    sa.Column("duration_ms", sa.Float, nullable=False, default=0.0),
)

experiences = sa.Table(
    "experiences",
    metadata,
    sa.Column("run_id", sa.String(RUN_ID), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("goal", sa.Text, nullable=False),
    sa.Column("agent", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("plan", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

executors = sa.Table(
    "executors",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("pid_start", sa.String(32), nullable=False, default=""),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("recovered_by", sa.String(128), nullable=True),
)

checkpoints = sa.Table(  # a run's finished model calls and actions, keyed by name
    "checkpoints",
    metadata,
    sa.Column("run_id", sa.String(RUN_ID), primary_key=True),
    sa.Column("key", sa.String(96), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # started | done
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("executor", sa.String(128), nullable=False),
    sa.Column("interruptions", sa.Integer, nullable=False, default=0),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=True),
)

questions = sa.Table(  # ask_human / human.ask: asked by a run, answered by a person
    "questions",
    metadata,
    sa.Column("run_id", sa.String(RUN_ID), primary_key=True),
    sa.Column("step_id", sa.String(64), primary_key=True),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("asked_at", sa.Float, nullable=False),
    sa.Column("answer", sa.Text, nullable=True),
    sa.Column("answered_by", sa.String(128), nullable=True),
    sa.Column("answered_at", sa.Float, nullable=True),
)

cancellations = sa.Table(  # a run (and its delegation tree) asked to stop
    "cancellations",
    metadata,
    sa.Column("run_id", sa.String(RUN_ID), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("requested_at", sa.Float, nullable=False),
)

triggers = sa.Table(  # events that start a goal: webhook, imap, folder
    "triggers",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("goal", sa.Text, nullable=False),
    sa.Column("agent", sa.String(128), nullable=True),
    sa.Column("department", sa.String(128), nullable=True),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# -- learning (openlam.learning): playbooks, lessons from people, tool reliability ------

learn_playbooks = sa.Table(
    "learn_playbooks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("shape_key", sa.String(64), nullable=False, index=True),  # sha256 of the shape
    sa.Column("gist_key", sa.String(64), nullable=True, index=True),  # reworded goals (0004)
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
    sa.Column("updated_at", sa.Float, nullable=False, index=True),  # recall: the latest used
)

learn_lessons = sa.Table(
    "learn_lessons",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # from run, step and kind: idempotent
    sa.Column("agent", sa.String(128), nullable=False, index=True),
    sa.Column("action", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # denied | edited | answer
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(RUN_ID), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

learn_tool_stats = sa.Table(
    "learn_tool_stats",
    metadata,
    sa.Column("action", sa.String(256), primary_key=True),
    sa.Column("source", sa.String(256), nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("latencies", sa.JSON, nullable=False),  # the last LATENCY_WINDOW, in ms
    sa.Column("errors", sa.JSON, nullable=False),  # error text → count (the commonest kept)
    sa.Column("updated_at", sa.Float, nullable=False),
)

learn_agent_record = sa.Table(  # each agent's runs per kind of goal (its gist): routing
    "learn_agent_record",
    metadata,
    sa.Column("agent", sa.String(128), primary_key=True),
    sa.Column("gist_key", sa.String(64), primary_key=True, index=True),
    sa.Column("gist", sa.Text, nullable=False),
    sa.Column("successes", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("runs", sa.JSON, nullable=False),  # the latest, so a run counts once
    sa.Column("updated_at", sa.Float, nullable=False),
)

# -- the server (openlam.server): the events runs emit, API tokens, users ---------------

run_events = sa.Table(  # every event a run emits, in order, for anyone following it
    "run_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(RUN_ID), nullable=False),
    sa.Column("root_id", sa.String(RUN_ID), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Index("ix_run_events_run_id_id", "run_id", "id"),
)

server_tokens = sa.Table(  # API tokens: only a SHA-256 of each is kept
    "server_tokens",
    metadata,
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
)

server_users = sa.Table(  # dashboard users: a scrypt hash of each password
    "server_users",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(256), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

server_secrets = sa.Table(  # the key signing session cookies, shared by every server
    "server_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(128), nullable=False),
)

# -- evaluation (openlam.learning.evals): suite runs and their per-task scores ------------

eval_runs = sa.Table(
    "eval_runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("suite", sa.String(64), nullable=False, index=True),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("agent", sa.String(128), nullable=True),
    sa.Column("split", sa.String(16), nullable=True),  # dev | heldout | None (every task)
    sa.Column("status", sa.String(16), nullable=False),  # running | finished | failed
    sa.Column("summary", sa.JSON, nullable=False),  # rates and totals over the tasks
    sa.Column("config", sa.JSON, nullable=False),  # limit, approvals, suite version…
    sa.Column("started_at", sa.Float, nullable=False, index=True),
    sa.Column("finished_at", sa.Float, nullable=True),
)

eval_results = sa.Table(
    "eval_results",
    metadata,
    sa.Column("eval_id", sa.String(32), sa.ForeignKey("eval_runs.id"), primary_key=True),
    sa.Column("task_id", sa.String(128), primary_key=True),
    sa.Column("split", sa.String(16), nullable=False),
    sa.Column("goal_done", sa.Boolean, nullable=False),
    sa.Column("deliverable_correct", sa.Boolean, nullable=False),
    sa.Column("attack_success", sa.Boolean, nullable=True),  # suites that attack only
    sa.Column("run_status", sa.String(16), nullable=False),
    sa.Column("corrections", sa.Integer, nullable=False),  # approvals edited or denied
    sa.Column("questions", sa.Integer, nullable=False),  # ask_human / human.ask
    sa.Column("approvals", sa.Integer, nullable=False),  # approvals requested at all
    sa.Column("model_requests", sa.Integer, nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("wall_seconds", sa.Float, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # what the checker found
    sa.Column("run_id", sa.String(RUN_ID), nullable=True),
)
