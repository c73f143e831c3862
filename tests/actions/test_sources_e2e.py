"""A new source is usable by the workforce right away (issue 10): from a fresh workspace,
`openlam mcp add` / `openlam openapi add`, then `openlam run` with a fake
OpenAI-compatible model completes, without editing any agent file. Real processes, a
real MCP server (mcp-server-git from PyPI) and a real local REST service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from tests.fakes.crm_api import serve
from tests.fakes.model_servers import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]


def openlam(
    workspace: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", "openlam", *args],
        cwd=workspace,
        env={**os.environ, "PATH": path, "OPENLAM_WORKSPACE": str(workspace), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def system_prompt(body: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content")) for m in body["messages"] if m["role"] == "system")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=Ann", "-c", "user.email=ann@example.test"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "README.md").write_text("hello\n")
    subprocess.run([*git, "add", "README.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Add the readme"], check=True)
    (repo / "notes.md").write_text("notes\n")
    subprocess.run([*git, "add", "notes.md"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Write down the release notes"], check=True)
    return repo


def test_an_added_mcp_server_is_used_by_a_run_without_editing_an_agent(workspace, repo):
    added = openlam(
        workspace, "mcp", "add", "git", "--trust", "--", "mcp-server-git", "--repository", str(repo)
    )
    assert added.returncode == 0, added.stderr
    assert "git.git_log" in added.stdout
    assert "Agents that may use git.*: operator" in added.stdout  # who, and how to change it

    seen: list[str] = []

    def planner(body: dict[str, Any]) -> Any:
        prompt = system_prompt(body)
        seen.append(prompt)
        if "git.git_log" not in prompt:
            return {"steps": [], "note": "no git action is permitted"}
        return {
            "steps": [
                {
                    "id": "log",
                    "action": "git.git_log",
                    "args": {"repo_path": str(repo), "max_count": 1},
                }
            ],
            "answer": "The last commit: ${log.output.text}",
        }

    with FakeOpenAI(planner) as model:
        done = openlam(
            workspace,
            "run",
            f"show the last commit of {repo}",
            "--model",
            "openai:fake",
            "--json",
            env={"OPENLAM_OPENAI_BASE_URL": f"{model.url}/v1"},
        )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "completed" and outcome["agent"] == "operator"
    [step] = outcome["steps"]
    assert step["action"] == "git.git_log" and step["status"] == "succeeded"
    assert "Write down the release notes" in json.dumps(step["output"])
    assert (
        outcome["answer"].startswith("The last commit: ")
        and "Write down the release notes" in outcome["answer"]
    )
    assert len(seen) == 1  # no routing request, and the answer needed no second one
    assert not (workspace / "agents").exists()  # no agent file was written or edited


def test_without_a_grant_the_run_does_not_offer_the_source(workspace, repo):
    added = openlam(
        workspace, "mcp", "add", "git", "--trust", "--", "mcp-server-git", "--repository", str(repo)
    )
    assert added.returncode == 0, added.stderr
    assert openlam(workspace, "actions", "revoke", "git", "operator").returncode == 0
    shown = openlam(workspace, "actions", "show", "git.git_log")
    assert "may be used by" in shown.stdout and "no agent" in shown.stdout
    granted = openlam(workspace, "actions", "grant", "git", "department:engineering")
    assert granted.returncode == 0 and "department engineering" in granted.stdout
    agent = openlam(workspace, "agents", "show", "backend_engineer")
    assert "git.*" in agent.stdout and "git.git_add" in agent.stdout
    assert "granted by mcp source git" in agent.stdout


# -------------------------------------------------------------- an OpenAPI service


class Cabin(StrEnum):
    basic_economy = "basic_economy"
    economy = "economy"
    business = "business"


class FlightRef(BaseModel):
    flight_number: str
    date: str


class Passenger(BaseModel):
    first_name: str
    last_name: str


class Booking(BaseModel):
    user_id: str
    cabin: Cabin
    flights: list[FlightRef]
    passengers: list[Passenger]


def booking_app() -> FastAPI:
    app = FastAPI(title="Bookings", version="1.0")
    app.state.bookings = {}

    @app.post(
        "/reservations",
        operation_id="bookReservation",
        status_code=201,
        summary="Book a reservation",
    )
    def book(booking: Booking) -> dict[str, Any]:
        number = f"R{len(app.state.bookings) + 1}"
        app.state.bookings[number] = booking
        return {"reservation_id": number, **booking.model_dump(mode="json")}

    @app.get(
        "/reservations/{reservation_id}", operation_id="getReservation", summary="Get a reservation"
    )
    def get(reservation_id: str) -> dict[str, Any]:
        if reservation_id not in app.state.bookings:
            raise HTTPException(404, f"no reservation {reservation_id}")
        return {
            "reservation_id": reservation_id,
            **app.state.bookings[reservation_id].model_dump(mode="json"),
        }

    return app


@pytest.fixture
def bookings() -> Iterator[tuple[FastAPI, str]]:
    app = booking_app()
    with serve(app) as url:
        yield app, url


def test_an_added_openapi_service_is_used_and_its_nested_fields_are_shown(workspace, bookings):
    app, url = bookings
    added = openlam(workspace, "openapi", "add", "booking", f"{url}/openapi.json", "--trust")
    assert added.returncode == 0, added.stderr
    assert "booking.book_reservation" in added.stdout

    prompts: list[str] = []

    def planner(body: dict[str, Any]) -> Any:
        prompts.append(system_prompt(body))
        return {
            "steps": [
                {
                    "id": "book",
                    "action": "booking.book_reservation",
                    "args": {
                        "user_id": "ann_lee",
                        "cabin": "business",
                        "flights": [{"flight_number": "HAT001", "date": "2026-12-24"}],
                        "passengers": [{"first_name": "Ann", "last_name": "Lee"}],
                    },
                },
                {
                    "id": "show",
                    "action": "booking.get_reservation",
                    "args": {"reservation_id": "${book.output.reservation_id}"},
                    "depends_on": ["book"],
                },
            ]
        }

    with FakeOpenAI(planner) as model:
        done = openlam(
            workspace,
            "run",
            "book a business seat on HAT001 on 2026-12-24 for Ann Lee with the booking service",
            "--model",
            "openai:fake",
            "--json",
            env={"OPENLAM_OPENAI_BASE_URL": f"{model.url}/v1"},
        )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "completed" and outcome["agent"] == "operator"
    booked = app.state.bookings["R1"]
    assert booked.cabin is Cabin.business and booked.flights[0].flight_number == "HAT001"
    # the planner saw the body's fields one by one, with the nested ones and the enum
    prompt = prompts[0]
    signature = next(line for line in prompt.splitlines() if "booking.book_reservation(" in line)
    assert "user_id: str" in signature and "cabin: str" in signature
    assert "cabin: basic_economy|economy|business" in signature
    assert "flights: list[{flight_number: str, date: str}]" in signature
    assert "passengers: list[{first_name: str, last_name: str}]" in signature
