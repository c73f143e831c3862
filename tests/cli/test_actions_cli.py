"""`openlam actions|mcp|openapi` through typer's CliRunner, with a real MCP server
(mcp-server-time) and a real local REST service (the fake CRM)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from openlam.cli import actions as actions_cli
from openlam.cli import mcp as mcp_cli
from openlam.cli import openapi as openapi_cli
from openlam.errors import UserError
from tests.fakes.crm_api import create_app, serve

runner = CliRunner()


@pytest.fixture
def cli(workspace: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("CRM_TOKEN", raising=False)
    app = typer.Typer()
    for module in (actions_cli, mcp_cli, openapi_cli):
        module.install(app)

    def invoke(*args: str) -> Result:  # GROUP COMMAND --workspace WS ARGS…
        return runner.invoke(app, [*args[:2], "--workspace", str(workspace), *args[2:]])

    return invoke


@pytest.fixture
def crm_url() -> Iterator[str]:
    with serve(create_app()) as url:
        yield url


def user_error(result: Result) -> str:
    assert result.exit_code != 0
    assert isinstance(result.exception, UserError), result.output
    return str(result.exception)


def test_mcp_add_list_actions_show_and_rm(cli):
    added = cli("mcp", "add", "time", "--", "mcp-server-time", "--local-timezone", "Etc/UTC")
    assert added.exit_code == 0, added.output
    assert "time.get_current_time" in added.output and "2 tools" in added.output

    listed = cli("mcp", "list")
    assert "time" in listed.output and "mcp-server-time" in listed.output

    actions = cli("actions", "list", "--source", "mcp", "--json")
    assert actions.exit_code == 0, actions.output
    rows = json.loads(actions.stdout)
    unvouched = "default for a tool of an unvouched MCP server (its readOnlyHint is not believed)"
    assert [(r["name"], r["risk"], r["risk_reason"], r["source"]) for r in rows] == [
        ("time.convert_time", "external", unvouched, "mcp:time"),
        ("time.get_current_time", "external", unvouched, "mcp:time"),
    ]

    trusted = cli("actions", "trust", "time")
    assert trusted.exit_code == 0 and "Vouching for MCP server time" in trusted.output
    shown = cli("actions", "show", "time.get_current_time")
    assert shown.exit_code == 0, shown.output
    for expected in (
        "mcp:time",
        "read: readOnlyHint (server vouched for by you)",
        "timezone",
        "secrets",
        "none",
        "may be used by",
        "operator",
    ):
        assert expected in shown.output
    assert "readOnlyHint" in cli("actions", "list", "--source", "mcp:time").output

    removed = cli("mcp", "rm", "time")
    assert removed.exit_code == 0
    assert json.loads(cli("actions", "list", "--source", "mcp", "--json").stdout) == []


def test_mcp_add_trust_risk_and_grants(cli):
    typo = cli("mcp", "add", "time", "--risk", "get_curent_time=read", "--", "mcp-server-time")
    assert (
        "--risk names no tool of the server: get_curent_time (did you mean "
        "get_current_time?)" in user_error(typo)
    )  # a typo is not saved silently
    assert "No MCP servers" in cli("mcp", "list").output
    assert "no agent 'nobody'" in user_error(
        cli("mcp", "add", "time", "--grant", "nobody", "--", "mcp-server-time")
    )
    added = cli(
        "mcp",
        "add",
        "time",
        "--trust",
        "--grant",
        "department:data",
        "--risk",
        "convert_time=write",
        "--",
        "mcp-server-time",
    )
    assert added.exit_code == 0, added.output
    assert "Agents that may use time.*: operator, department data" in added.output
    assert "readOnlyHint (server vouched for by you)" in added.output
    assert "set by you (--risk)" in added.output
    rows = {
        r["name"]: r
        for r in json.loads(cli("actions", "list", "--source", "mcp:time", "--json").stdout)
    }
    assert rows["time.convert_time"]["risk"] == "write"
    assert rows["time.get_current_time"]["risk"] == "read"

    assert "not granted to department:sales" in user_error(
        cli("actions", "revoke", "time", "department:sales")
    )
    assert cli("actions", "revoke", "time", "operator").exit_code == 0
    shown = json.loads(cli("actions", "show", "time.convert_time", "--json").stdout)
    assert shown["grants"] == ["department:data"]
    assert "did you mean time" in user_error(cli("actions", "grant", "tme", "all"))
    assert cli("actions", "trust", "mcp:time", "--undo").exit_code == 0
    assert (
        json.loads(cli("actions", "show", "time.get_current_time", "--json").stdout)["risk"]
        == "external"
    )


def test_mcp_add_refuses_bad_input(cli):
    assert "installed plugin" in user_error(cli("mcp", "add", "files", "--", "mcp-server-time"))
    assert "either a command" in user_error(cli("mcp", "add", "t"))
    assert "not found" in user_error(cli("mcp", "add", "t", "--", "no-such-server-xyz"))
    assert "not KEY=VALUE" in user_error(
        cli("mcp", "add", "t", "--env", "JUSTKEY", "--", "mcp-server-time")
    )
    assert "no MCP server named nope" in user_error(cli("mcp", "test", "nope"))
    assert "No MCP servers" in cli("mcp", "list").output


def test_openapi_add_then_actions_filtered_and_shown_with_their_secrets(cli, crm_url):
    assert "installed plugin" in user_error(cli("openapi", "add", "crm", f"{crm_url}/openapi.json"))
    added = cli(
        "openapi",
        "add",
        "acme",
        f"{crm_url}/openapi.json",
        "--auth",
        "bearer:CRM_TOKEN",
        "--risk",
        "delete_contact=write",
        "--trust",
    )
    assert added.exit_code == 0, added.output
    assert "acme.create_contact" in added.output and "8 operations" in added.output

    listed = cli("openapi", "list")
    assert "Fake CRM 1.2.0" in listed.output and "bearer:CRM_TOKEN" in listed.output
    assert "acme" in listed.output

    reads = json.loads(
        cli("actions", "list", "--source", "openapi:acme", "--risk", "read", "--json").stdout
    )
    assert {r["name"] for r in reads} == {
        "acme.list_contacts",
        "acme.get_contact",
        "acme.slow_report",
        "acme.maintenance",
    }
    writes = json.loads(
        cli("actions", "list", "--source", "openapi", "--risk", "write", "--json").stdout
    )
    assert "acme.delete_contact" in {r["name"] for r in writes}

    shown = cli("actions", "show", "acme.create_contact")
    assert shown.exit_code == 0, shown.output
    assert "CRM_TOKEN (not set)" in shown.output and "openapi:acme" in shown.output
    assert '"email"' in shown.output  # the resolved body schema

    as_json = json.loads(cli("actions", "show", "acme.get_contact", "--json").stdout)
    assert as_json["risk"] == "read" and as_json["secrets"] == ["CRM_TOKEN"]
    assert as_json["input_schema"]["required"] == ["contact_id"]

    assert "already configured" in user_error(
        cli("openapi", "add", "acme", f"{crm_url}/openapi.json")
    )
    assert cli("openapi", "rm", "acme").exit_code == 0
    assert "No OpenAPI services" in cli("openapi", "list").output


def test_openapi_add_refuses_bad_input(cli, tmp_path, crm_url):
    spec = tmp_path / "bad.json"
    spec.write_text(json.dumps({"swagger": "2.0"}))
    assert "Swagger 2.0" in user_error(cli("openapi", "add", "svc", str(spec)))
    assert "not understood" in user_error(
        cli("openapi", "add", "svc", f"{crm_url}/openapi.json", "--auth", "bearer")
    )
    assert "not OPERATION=TIER" in user_error(
        cli("openapi", "add", "svc", f"{crm_url}/openapi.json", "--risk", "x")
    )
    assert "unknown risk" in user_error(
        cli("openapi", "add", "svc", f"{crm_url}/openapi.json", "--risk", "get_contact=scary")
    )
    assert "(did you mean get_contact" in user_error(
        cli("openapi", "add", "svc", f"{crm_url}/openapi.json", "--risk", "get_contct=read")
    )
    assert cli("openapi", "add", "svc", f"{crm_url}/openapi.json").exit_code == 0
    assert "already the name of an OpenAPI service" in user_error(
        cli("mcp", "add", "svc", "--", "mcp-server-time")
    )


def test_actions_list_filters_and_show_suggests(cli):
    everything = json.loads(cli("actions", "list", "--json").stdout)
    assert any(r["name"] == "files.write" for r in everything)
    reads = json.loads(cli("actions", "list", "--risk", "read", "--json").stdout)
    assert reads and all(r["risk"] == "read" for r in reads)
    files = json.loads(cli("actions", "list", "--source", "files", "--json").stdout)
    assert {r["name"] for r in files} == {"files.copy", "files.read", "files.write"}

    table = cli("actions", "list", "--source", "files")
    assert table.exit_code == 0 and "files.write" in table.output and "3 of" in table.output
    assert "unknown risk tier" in user_error(cli("actions", "list", "--risk", "scary"))
    assert "did you mean files.write" in user_error(cli("actions", "show", "files.wrte"))


def test_actions_list_warns_of_a_plugin_table_with_its_fix(cli, workspace: Path):
    (workspace / "openlam.toml").write_text("[web]\nmax_byte = 5\n", encoding="utf-8")
    listed = cli("actions", "list", "--source", "web")
    assert listed.exit_code == 0 and "web.fetch" in listed.output  # the plugin still loads
    words = " ".join(listed.output.split())
    assert "plugin web: [web] in openlam.toml is invalid: max_byte: unknown field" in words
    assert "(did you mean 'max_bytes'?)" in words
    assert f"fix: correct max_byte under [web] in {workspace / 'openlam.toml'}" in words
