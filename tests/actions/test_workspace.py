"""The one chokepoint for paths: actions may not write the files the workforce acts under
(openlam.toml, policies/, agents/, .openlam/, source definitions) nor read .openlam/,
whatever action, spelling or symbolic link they use."""

from __future__ import annotations

import json
import os
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from openlam.actions.builtin import browser, documents, files, search
from openlam.actions.builtin.email import actions as email_actions
from openlam.actions.spec import ActionContext, ActionSpec
from openlam.actions.workspace import resolve
from openlam.errors import ActionError
from openlam.loop.state import RunStatus
from openlam.testing import run_goal
from tests.fakes.action_ctx import action_context


def spec_of(func: Any) -> ActionSpec:
    return func.__openlam_action__


WRITE = spec_of(files.write)
READ = spec_of(files.read)
WRITERS = {
    name: spec_of(getattr(documents, name))
    for name in ("write_markdown", "write_csv", "write_html", "write_pdf")
}
EVIL_POLICY = "scope: org\nallow_external: ['*']\n"


@pytest.fixture
def ctx(workspace: Path) -> ActionContext:
    (workspace / "policies").mkdir()
    (workspace / "policies" / "org.yaml").write_text("scope: org\n")
    (workspace / "agents").mkdir()
    (workspace / ".openlam").mkdir()
    (workspace / ".openlam" / "openlam.db").write_bytes(b"SQLite format 3\x00")
    return action_context(workspace, "[openlam]\nmax_steps = 20\n")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (and beside it) with its content."""
    return {
        str(p.relative_to(root.parent)): p.read_bytes()
        for p in sorted(root.parent.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("openlam.toml", "openlam.toml is the workspace's configuration"),
        ("policies/evil.yaml", "policies/ holds the workspace's governance policies"),
        ("policies/org.yaml", "policies/ holds the workspace's governance policies"),
        ("Policies/evil.yaml", "policies/ holds"),  # file systems that ignore case
        ("./reports/../policies/evil.yaml", "policies/ holds"),
        ("agents/sales.yaml", "agents/ holds the workspace's agent definitions"),
        (".openlam/openlam.db", ".openlam/ holds the workspace's state"),
        (".openlam/mcp.json", ".openlam/ holds the workspace's state"),
        (".openlam/cache/openapi/crm.json", ".openlam/ holds the workspace's state"),
    ],
)
async def test_files_write_refuses_governance_config_and_state(
    ctx: ActionContext, path: str, why: str
) -> None:
    before = snapshot(ctx.workspace)
    with pytest.raises(ActionError) as refused:
        await WRITE.call(ctx, {"path": path, "content": EVIL_POLICY})
    assert why in str(refused.value)
    assert "actions may not write there" in str(refused.value)
    assert snapshot(ctx.workspace) == before


@pytest.mark.parametrize("name", sorted(WRITERS))
@pytest.mark.parametrize(
    "path", ["policies/evil", "agents/x.yaml", ".openlam/openlam.db", "openlam.toml"]
)
async def test_documents_refuse_the_same_paths(ctx: ActionContext, name: str, path: str) -> None:
    args: dict[str, Any] = {"path": path, "content": "x"}
    if name == "write_csv":
        args = {"path": path, "rows": [["x"]]}
    before = snapshot(ctx.workspace)
    with pytest.raises(ActionError, match="actions may not write there"):
        await WRITERS[name].call(ctx, args)
    assert snapshot(ctx.workspace) == before


async def test_a_screenshot_may_not_land_in_agents(ctx: ActionContext) -> None:
    with pytest.raises(ActionError, match="agents/ holds the workspace's agent definitions"):
        await spec_of(browser.screenshot).call(ctx, {"path": "agents/shot.png"})
    assert ctx.run_id not in browser.open_runs()  # refused before a browser started


async def test_reads_of_state_are_refused_policies_may_be_read(ctx: ActionContext) -> None:
    with pytest.raises(ActionError, match=r"\.openlam/ holds .* actions may not read there"):
        await READ.call(ctx, {"path": ".openlam/openlam.db"})
    assert (await READ.call(ctx, {"path": "policies/org.yaml"}))["text"] == "scope: org\n"
    with pytest.raises(ActionError, match="actions may not read there"):  # an attachment
        email_actions._attach(ctx, EmailMessage(), [".openlam/openlam.db"])
    with pytest.raises(ActionError, match="actions may not read there"):
        await spec_of(search.documents).call(ctx, {"query": "x", "folder": ".openlam"})


async def test_symbolic_links_are_followed_before_the_check(
    ctx: ActionContext, tmp_path: Path
) -> None:
    ws = ctx.workspace
    (ws / "rules").symlink_to(ws / "policies")
    (ws / "notes.md").symlink_to(ws / ".openlam" / "openlam.db")
    (ws / "later.md").symlink_to(ws / "agents" / "new.yaml")  # dangling until written
    (ws / "away").symlink_to(tmp_path)
    before = snapshot(ws)
    for path, why in (
        ("rules/evil.yaml", "policies/ holds"),
        ("notes.md", ".openlam/ holds"),
        ("later.md", "agents/ holds"),
    ):
        with pytest.raises(ActionError) as refused:
            await WRITE.call(ctx, {"path": path, "content": EVIL_POLICY})
        assert why in str(refused.value) and f"({path!r} leads there)" in str(refused.value)
    with pytest.raises(ActionError, match="actions may not read there"):
        await READ.call(ctx, {"path": "notes.md"})
    with pytest.raises(ActionError, match="leads outside the workspace"):
        await WRITE.call(ctx, {"path": "away/x.txt", "content": "x"})
    assert snapshot(ws) == before


@pytest.mark.parametrize("path", [".", "", "./", "reports/", "reports", "..", "/etc/x"])
async def test_a_write_needs_a_file_in_the_workspace(ctx: ActionContext, path: str) -> None:
    (ctx.workspace / "reports").mkdir()
    before = snapshot(ctx.workspace)
    with pytest.raises(ActionError, match=r"directory|outside the workspace"):
        await WRITE.call(ctx, {"path": path, "content": "lost?"})
    assert snapshot(ctx.workspace) == before  # nothing beside the workspace either


async def test_configured_policies_and_source_files_are_protected(workspace: Path) -> None:
    (workspace / "servers").mkdir()
    (workspace / "servers" / "crm_mcp.py").write_text("print('mcp')\n")
    (workspace / "specs").mkdir()
    (workspace / "specs" / "crm.yaml").write_text("openapi: 3.0.0\n")
    (workspace / ".openlam").mkdir()
    (workspace / ".openlam" / "mcp.json").write_text(
        json.dumps(
            {
                "servers": {
                    "crm": {
                        "transport": "stdio",
                        "command": "python",
                        "args": ["servers/crm_mcp.py"],
                    }
                }
            }
        )
    )
    (workspace / ".openlam" / "openapi.json").write_text(
        json.dumps({"services": {"crm": {"spec": "specs/crm.yaml"}}})
    )
    ctx = action_context(workspace, '[governance]\npolicies = ["governance/rules.yaml"]\n')
    for path, why in (
        ("governance/rules.yaml", "named by [governance] policies"),
        ("servers/crm_mcp.py", "run by the MCP server crm"),
        ("specs/crm.yaml", "the spec of the OpenAPI service crm"),
    ):
        with pytest.raises(ActionError, match=re.escape(why)):
            await WRITE.call(ctx, {"path": path, "content": "x"})
    assert (await WRITE.call(ctx, {"path": "governance/notes.md", "content": "ok"}))["bytes"]


def test_resolve_takes_a_workspace_path_too(workspace: Path) -> None:
    assert resolve(workspace, "a/b.md", for_write=True) == workspace.resolve() / "a" / "b.md"
    with pytest.raises(ActionError, match=r"openlam\.toml is the workspace's configuration"):
        resolve(workspace, "openlam.toml", for_write=True)
    assert resolve(workspace, "openlam.toml", for_write=False).name == "openlam.toml"


@pytest.mark.timeout(120)
async def test_a_plan_cannot_rewrite_the_policies_it_runs_under(workspace: Path) -> None:
    """Through the durable loop, as `openlam run` would: the write fails, the run does not
    complete, and neither the policy nor the database is touched."""
    plan = {
        "steps": [
            {
                "id": "evil",
                "action": "files.write",
                "args": {"path": "policies/evil.yaml", "content": EVIL_POLICY},
            },
            {
                "id": "db",
                "action": "files.write",
                "args": {"path": ".openlam/openlam.db", "content": "garbage"},
            },
            {"id": "ok", "action": "files.write", "args": {"path": "notes.md", "content": "hi"}},
        ]
    }
    outcome = await run_goal("write the notes", [plan], workspace)
    steps = {s.id: s for s in outcome.steps}
    assert outcome.status is not RunStatus.completed, outcome.summary
    assert steps["evil"].status == "failed"
    assert "policies/ holds the workspace's governance policies" in (steps["evil"].error or "")
    assert steps["db"].status == "failed"
    assert steps["ok"].status == "succeeded"
    assert not (workspace / "policies" / "evil.yaml").exists()
    assert (workspace / ".openlam" / "openlam.db").read_bytes().startswith(b"SQLite format 3")
    assert os.listdir(workspace.parent) == [workspace.name]


async def test_a_workspace_nested_inside_keeps_its_state_and_rules(ctx: ActionContext) -> None:
    """A folder of this workspace that is a workspace itself (its own openlam.toml or
    .openlam/): a run here may not read its databases and secrets nor rewrite its rules."""
    inner = ctx.workspace / "clients" / "acme"
    (inner / ".openlam").mkdir(parents=True)
    (inner / ".openlam" / "secrets.enc").write_bytes(b"gAAAA-encrypted")
    (inner / "policies").mkdir()
    (inner / "policies" / "org.yaml").write_text("scope: org\n")
    (inner / "openlam.toml").write_text("[openlam]\n")
    before = snapshot(ctx.workspace)
    with pytest.raises(ActionError, match=r"clients/acme/\.openlam/secrets\.enc: \.openlam/ holds"):
        await READ.call(ctx, {"path": "clients/acme/.openlam/secrets.enc"})
    for path in ("clients/acme/policies/org.yaml", "clients/acme/openlam.toml"):
        with pytest.raises(ActionError, match="actions may not write there"):
            await WRITE.call(ctx, {"path": path, "content": EVIL_POLICY})
    assert snapshot(ctx.workspace) == before
    assert (await READ.call(ctx, {"path": "clients/acme/policies/org.yaml"}))["text"]
    await WRITE.call(ctx, {"path": "clients/acme/notes.md", "content": "fine"})


async def test_the_secret_key_is_not_readable_even_inside_the_workspace(
    ctx: ActionContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workspace that holds the user's configuration folder (openlam run in one's home
    directory): the key that decrypts every workspace's secrets stays out of reach."""
    monkeypatch.delenv("OPENLAM_SECRET_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(ctx.workspace / ".config"))
    key = ctx.workspace / ".config" / "openlam" / "secret.key"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"a-fernet-key\n")
    with pytest.raises(ActionError, match="it is OpenLAM's secret key"):
        await READ.call(ctx, {"path": ".config/openlam/secret.key"})
    with pytest.raises(ActionError, match="actions may not write there"):
        await WRITE.call(ctx, {"path": ".config/openlam/secret.key", "content": "mine"})
    assert key.read_bytes() == b"a-fernet-key\n"
