"""An ActionContext for calling one action directly, as the loop would."""

from __future__ import annotations

from pathlib import Path

from openlam.actions.spec import ActionContext
from openlam.config import load_settings


def action_context(
    workspace: Path,
    toml: str = "",
    secrets: dict[str, str] | None = None,
    *,
    step_id: str = "s1",
    run_id: str = "run-1",
) -> ActionContext:
    """A context for ``workspace`` with ``toml`` as its openlam.toml and ``secrets`` as the
    only credentials (the process environment is not consulted)."""
    (workspace / "openlam.toml").write_text(toml, encoding="utf-8")
    known = dict(secrets or {})
    return ActionContext(
        run_id=run_id,
        step_id=step_id,
        idempotency_key=f"{run_id}:{step_id}",
        workspace=workspace,
        settings=load_settings(workspace),
        secret=known.get,
    )
