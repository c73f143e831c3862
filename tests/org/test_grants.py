"""Sources granted to agents (issue 10): a configured MCP server or OpenAPI service adds
its actions to the agents it is granted to, routing sends goals that need it to them, and
an agent that may not use it gets the true reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from openlam.actions import mcp
from openlam.actions.grants import permission_hint
from openlam.actions.registry import load_plugins
from openlam.cli import agents as agents_cli
from openlam.config import Settings
from openlam.org.loader import load_catalog
from openlam.org.routing import WANTED, action_hints, route, shipped_action_names

GIT_TOOLS = [
    "git_status",
    "git_diff",
    "git_commit",
    "git_add",
    "git_log",
    "git_show",
    "git_branch",
    "git_checkout",
]


def add_git(settings: Settings, grants: list[str] | None = None) -> None:
    """A configured git server and its cached tool list, as `openlam mcp add` leaves them."""
    server = mcp.ServerConfig(
        name="git",
        transport="stdio",
        command="mcp-server-git",
        **({"grants": grants} if grants is not None else {}),
    )
    mcp.save_server(settings, server)
    mcp.SERVERS.write_cache(
        settings,
        "git",
        {
            "server": server.fingerprint(),
            "tools": [
                {
                    "name": t,
                    "description": f"Runs {t.replace('_', ' ')}",
                    "input_schema": {
                        "type": "object",
                        "properties": {"repo_path": {"type": "string"}},
                    },
                }
                for t in GIT_TOOLS
            ],
        },
    )


def installed(settings: Settings) -> list[str]:
    return [s.name for s in load_plugins(settings=settings)]


def test_a_source_is_granted_to_the_operator_by_default_and_to_whom_the_user_says(settings):
    add_git(settings)
    catalog = load_catalog(settings.workspace)
    assert "git.*" in catalog.profile("operator").actions
    assert "git.*" not in catalog.profile("backend_engineer").actions
    add_git(settings, grants=["department:engineering", "head_of_data"])
    catalog = load_catalog(settings.workspace)
    assert "git.*" in catalog.profile("backend_engineer").actions
    assert "git.*" in catalog.profile("head_of_data").actions
    assert "git.*" not in catalog.profile("operator").actions
    add_git(settings, grants=["all"])
    assert all("git.*" in load_catalog(settings.workspace).profile(a.id).actions for a in catalog)


def test_a_goal_that_needs_a_source_goes_to_an_agent_that_may_use_it(settings):
    before = route(
        "show the last commit of the repo",
        load_catalog(settings.workspace),
        installed=installed(settings),
    )
    assert before.agent.id != "operator"  # without the source, words decide
    add_git(settings)
    catalog = load_catalog(settings.workspace)
    names = installed(settings)
    chosen = route("show the last commit of the repo", catalog, installed=names)
    assert chosen.agent.id == "operator"
    assert "only some agents may use, and this agent may" in chosen.reason
    assert route("list the git branches", catalog, installed=names).agent.id == "operator"
    # goals that do not need it are routed as before
    assert (
        route("draft the quarterly board deck", catalog, installed=names).agent.id
        == route("draft the quarterly board deck", load_catalog(), installed=names).agent.id
    )
    add_git(settings, grants=["department:engineering"])
    engineering = route(
        "show the last commit of the repo", load_catalog(settings.workspace), installed=names
    )
    assert engineering.department.id == "engineering"


def test_action_hints_name_only_installed_actions():
    """ACTION_HINTS named `payments.refund_create`, which does not exist (issue 10)."""
    names = set(shipped_action_names())
    hints = action_hints(names)
    assert {h.label for h in hints} == {w.label for w in WANTED}  # every hint resolves
    for hint in hints:
        assert hint.actions and set(hint.actions) <= names, hint
    assert next(h for h in hints if h.label == "refund").actions == ("payments.refund",)


def test_permission_hint_says_installed_but_not_permitted_and_how_to_grant(settings):
    add_git(settings)
    assert permission_hint(settings, "git.git_status", "head_of_data") == (
        "git.git_status is installed (source git) but not permitted for agent head_of_data; "
        "grant it with `openlam actions grant git head_of_data`"
    )
    assert permission_hint(settings, "git.git_teleport", "head_of_data") is None  # a real gap
    names = installed(settings)
    assert "but not permitted for agent copywriter" in str(
        permission_hint(settings, "payments.refund", "copywriter", names)
    )
    assert permission_hint(settings, "payments.refund_create", "copywriter", names) is None


def test_agents_show_from_another_directory_loads_that_workspaces_sources(
    settings, monkeypatch, tmp_path: Path
):
    add_git(settings)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    app = agents_cli.typer.Typer()
    agents_cli.install(app)
    shown = CliRunner().invoke(
        app,
        ["agents", "show", "operator", "--workspace", str(settings.workspace)],
        env={"COLUMNS": "250"},
    )
    assert shown.exit_code == 0, shown.output
    line = next(x for x in shown.output.splitlines() if x.strip().startswith("git.*"))
    assert "git.git_add" in line and "matches no installed action" not in line
    assert "granted by mcp source git to operator" in line


@pytest.mark.parametrize("broken", ["{not json", '{"servers": {"git": {"transport": 3}}}'])
def test_a_broken_source_file_is_a_catalog_warning_not_a_failure(settings, broken):
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    (settings.state_dir / "mcp.json").write_text(broken)
    catalog = load_catalog(settings.workspace)
    assert len(catalog) > 100 and any("mcp.json" in e for e in catalog.load_errors)
