"""``openlam init``: write a commented openlam.toml into the workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TEMPLATE = """\
# OpenLAM workspace settings. Environment variables override these (see README).
[openlam]
# model = "ollama:qwen3"          # or "openai:gpt-4.1-mini", "anthropic:claude-sonnet-4-5"
# openai_base_url = "http://127.0.0.1:8000/v1"   # any OpenAI-compatible server
# ollama_url = "http://127.0.0.1:11434"
# database_url = "postgresql://user@host/db"     # default: SQLite in .openlam/
# max_steps = 20
# max_replans = 2
# step_timeout = 60
# step_retries = 2
# model_timeout = 60    # seconds one model request may take, retries included
"""


def install(app: typer.Typer) -> None:
    app.command("init")(init)


def init(
    workspace: Annotated[Path, typer.Argument(help="Workspace directory.")] = Path("."),
) -> None:
    """Create a workspace: openlam.toml with commented defaults."""
    from openlam.config import CONFIG_FILE
    from openlam.errors import UserError

    if workspace.exists() and not workspace.is_dir():
        raise UserError(
            f"{workspace} is a file, not a directory",
            "give `openlam init` a directory (it is created if missing)",
        )
    workspace.mkdir(parents=True, exist_ok=True)
    target = workspace / CONFIG_FILE
    if target.exists():
        typer.echo(f"{target} already exists; left as it is.")
        return
    target.write_text(TEMPLATE, encoding="utf-8")
    typer.echo(f"Wrote {target}. Next: openlam run \"write 'hello' to hello.md\"")
