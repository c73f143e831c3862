"""``openlam agents list|show|tree|route`` and ``openlam departments``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from openlam.cli import agents as agents_cli
from openlam.errors import UserError
from openlam.org import load_catalog

WIDE = {"COLUMNS": "250"}


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    agents_cli.install(app)
    return app


def invoke(app: typer.Typer, workspace: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--workspace", str(workspace)], env=WIDE)


def test_list_shows_every_agent(app: typer.Typer, workspace: Path):
    result = invoke(app, workspace, "agents", "list")
    assert result.exit_code == 0, result.output
    catalog = load_catalog()
    for agent in catalog:
        assert agent.id in result.output
    assert f"{len(catalog)} agents in {len(catalog.departments)} departments." in result.output


def test_list_by_department_id_or_name(app: typer.Typer, workspace: Path):
    by_name = invoke(app, workspace, "agents", "list", "--department", "Customer Support")
    assert by_name.exit_code == 0, by_name.output
    assert "support_agent_tier1" in by_name.output and "accountant" not in by_name.output
    as_json = invoke(app, workspace, "agents", "list", "-d", "finance", "--json")
    rows = json.loads(as_json.output)
    assert {r["department"] for r in rows} == {"finance"}
    assert "accountant" in {r["id"] for r in rows}
    bad = invoke(app, workspace, "agents", "list", "--department", "salez")
    assert isinstance(bad.exception, UserError)
    assert "did you mean 'sales'" in str(bad.exception)


def test_show_an_agent(app: typer.Typer, workspace: Path):
    result = invoke(app, workspace, "agents", "show", "chief_of_staff")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Noor Haddad — Chief of Staff" in out
    assert "reports to  Chief Executive Officer (ceo)" in out
    assert "executive_assistant" in out and "front door of the workforce" in out
    assert "files.*" in out and "files.read, files.write" in out
    assert "max_steps=25" in out
    data = json.loads(invoke(app, workspace, "agents", "show", "controller", "--json").output)
    assert data["manager"] == "chief_financial_officer"
    assert "accountant" in data["reports"]
    missing = invoke(app, workspace, "agents", "show", "copywritr")
    assert isinstance(missing.exception, UserError)
    assert "did you mean 'copywriter'" in str(missing.exception)


def test_tree_is_the_org_chart(app: typer.Typer, workspace: Path):
    result = invoke(app, workspace, "agents", "tree")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Chief Executive Officer" in lines[0]
    catalog = load_catalog()
    for agent in catalog:
        assert agent.id in result.output
    # A report is drawn below and indented further than its manager.
    row = {a.id: next(i for i, line in enumerate(lines) if f" {a.id} " in line) for a in catalog}
    indent = {a: len(lines[i]) - len(lines[i].lstrip("│├└─ ")) for a, i in row.items()}
    for agent in catalog:
        if agent.manager:
            assert row[agent.id] > row[agent.manager]
            assert indent[agent.id] > indent[agent.manager]
    part = invoke(app, workspace, "agents", "tree", "--department", "data")
    assert "head_of_data" in part.output.splitlines()[0]
    assert "analytics_engineer" in part.output and "accountant" not in part.output


def test_departments(app: typer.Typer, workspace: Path):
    result = invoke(app, workspace, "departments")
    assert result.exit_code == 0, result.output
    catalog = load_catalog()
    for dept in catalog.departments.values():
        assert dept.id in result.output and dept.name in result.output
    rows = json.loads(invoke(app, workspace, "departments", "--json").output)
    assert rows[0]["id"] == "executive" and rows[0]["head"] == "ceo"
    assert sum(r["agents"] for r in rows) == len(catalog)


def test_route_explains_its_choice(app: typer.Typer, workspace: Path):
    result = invoke(
        app, workspace, "agents", "route", "Refund order 1182 to the customer", "--json"
    )
    data = json.loads(result.output)
    assert data["agent"] == "billing_operations_specialist"
    assert data["reason"].startswith("Chose Laura Schmidt (billing_operations_specialist")
    assert len(data["candidates"]) == 5
    table = invoke(app, workspace, "agents", "route", "Refund order 1182 to the customer")
    assert "billing_operations_specialist" in table.output and "score" in table.output


def test_workspace_agents_appear_in_the_cli(app: typer.Typer, workspace: Path):
    (workspace / "agents").mkdir()
    (workspace / "agents" / "extra.yaml").write_text(
        textwrap.dedent("""
        agents:
          - id: podcast_producer
            name: Pat Quinn
            title: Podcast Producer
            department: marketing
            manager: chief_marketing_officer
            instructions: Produce the weekly podcast. Book guests and write show notes.
            actions: [documents.*, files.*]
    """).lstrip(),
        encoding="utf-8",
    )
    result = invoke(app, workspace, "agents", "list", "-d", "marketing")
    assert "podcast_producer" in result.output
    shown = invoke(app, workspace, "agents", "show", "podcast_producer")
    assert "defined in  agents/extra.yaml:2" in shown.output


def _openlam(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "openlam", *args],
        cwd=workspace,
        env={**os.environ, "OPENLAM_WORKSPACE": str(workspace)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_real_command_reports_bad_catalogs_without_a_traceback(workspace: Path):
    done = _openlam(workspace, "--help")
    assert done.returncode == 0 and "agents" in done.stdout and "departments" in done.stdout
    (workspace / "agents").mkdir()
    (workspace / "agents" / "bad.yaml").write_text("agents:\n  - id: x\n    name: [oops\n")
    broken = _openlam(workspace, "departments")
    assert broken.returncode == 0  # the workspace goes on without the broken file…
    assert "agents/bad.yaml was skipped" in broken.stderr  # …and says so
    assert (
        "agents/bad.yaml:4: could not parse YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence that starts at line 3)" in broken.stderr
    )
    assert "Traceback" not in broken.stderr and "Engineering" in broken.stdout


def test_a_run_goes_on_without_a_broken_agent_file_and_says_so(workspace: Path):
    """Issue 8 §8: one broken agents/*.yaml stopped every run in the workspace."""
    (workspace / "agents").mkdir()
    (workspace / "agents" / "bad.yaml").write_text("agents:\n  - id: x\n    name: [oops\n")
    done = _openlam(workspace, "run", "write 'Hello' to hello.md")
    assert done.returncode == 0, done.stderr
    assert (workspace / "hello.md").read_text() == "Hello"
    assert "agents/bad.yaml was skipped" in done.stderr
    assert "agents/bad.yaml:4: could not parse YAML" in done.stderr
