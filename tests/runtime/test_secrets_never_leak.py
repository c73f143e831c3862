"""Seeded secret values appear nowhere: not in the databases, logs, events or outcome."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from openlam import Workforce, action
from openlam.actions.secrets import SecretStore
from openlam.actions.spec import ActionContext, Risk
from openlam.errors import ActionError
from openlam.testing import scripted_model
from tests.conftest import allow_policy

STORED = "st0red-Secret-9f3e2a"
FROM_ENV = "env-Secret-77c1d0b"


@action("test.use_token", risk=Risk.external, secrets=("CRM_TOKEN",))
def use_token(ctx: ActionContext, note: str) -> dict:
    """Calls a pretend API and echoes what it sent (a careless plugin).

    Args:
        note: Anything.
    """
    token = ctx.secret("CRM_TOKEN")
    logging.getLogger("careless.plugin").warning("calling with token %s", token)
    return {"sent": f"Authorization: Bearer {token}", "note": note}


@action("test.fail_with_token", risk=Risk.external, secrets=("MAIL_PASSWORD",))
def fail_with_token(ctx: ActionContext) -> dict:
    """Fails with an error that quotes its credential (another careless plugin)."""
    raise ActionError(f"login refused for password {ctx.secret('MAIL_PASSWORD')}")


async def test_secrets_are_redacted_everywhere(settings, workspace, monkeypatch, caplog):
    monkeypatch.setenv("OPENLAM_SECRET_KEY", "a passphrase for the test store")
    monkeypatch.setenv("MAIL_PASSWORD", FROM_ENV)
    SecretStore.for_settings(settings).set("CRM_TOKEN", STORED)
    allow_policy(workspace, "scope: org\nallow_external: [test.*]\n")
    plan = {
        "steps": [
            {"id": "s1", "action": "test.use_token", "args": {"note": "hello"}},
            {"id": "s2", "action": "test.fail_with_token", "args": {}},
            {
                "id": "s3",
                "action": "files.write",
                "args": {"path": "echo.txt", "content": "${s1.output.sent}"},
            },
        ]
    }
    scripted_model("test:leaky", [plan, {"steps": [], "note": "cannot log in"}])
    events: list[dict] = []
    caplog.set_level(logging.INFO)
    async with Workforce(settings=settings, model="test:leaky") as wf:
        for fn in (use_token, fail_with_token):
            wf.runtime.registry.add(fn.__openlam_action__, replace=True)
        outcome = await wf.run("call the CRM", on_event=events.append)

    assert outcome.status.value == "partial"
    assert outcome.steps[0].output["sent"] == "Authorization: Bearer ***"
    assert "password ***" in outcome.steps[1].error
    texts = {
        "outcome": outcome.model_dump_json(),
        "events": json.dumps(events),
        "logs": caplog.text,
        "workspace file": (workspace / "echo.txt").read_text(),
    }
    for db in (workspace / ".openlam").glob("*.*"):  # openlam.db, dbos.sqlite (+ WAL files)
        if db.suffix != ".enc":
            texts[db.name] = db.read_bytes().decode("latin-1")
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "openlam",
            "runs",
            "show",
            outcome.run_id,
            "--workspace",
            str(workspace),
        ],
        capture_output=True,
        text=True,
    )
    texts["runs show"] = shown.stdout + shown.stderr
    assert "calling with token ***" in caplog.text
    for where, text in texts.items():
        for secret in (STORED, FROM_ENV):
            assert secret not in text, f"{secret} leaked into {where}"
