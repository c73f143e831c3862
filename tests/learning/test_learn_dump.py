"""`openlam learn dump`: everything learned in one JSON document for review — playbooks
(parameters, not values), lessons, tool reliability per action and source, agents'
records — with the workspace's secrets masked and email addresses kept to their domain,
even in rows stored before they were (through the real command)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from openlam.loop.state import RunStatus
from tests.learning.test_advice import learner, outcome
from tests.learning.test_learn_cli import cli
from tests.learning.test_reworded import LEARNED, status_mail

SECRET = "Sup3r-Secret-Pw-42"


def test_dump_writes_everything_learned_without_secrets_or_addresses(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", SECRET)  # a secret email.send declares
    lr = learner(workspace)
    lr.learn_now(outcome("run-1", LEARNED, status_mail("alice@x.com", "17")), {})
    failed = status_mail("bob@y.org", "18").model_copy(
        update={"status": "failed", "error": f"550 bob@y.org refused; login {SECRET} rejected"}
    )
    lr.learn_now(
        outcome("run-2", "email bob@y.org the status of order 18", failed, status=RunStatus.failed),
        {},
    )
    # a row recorded as it was (address and secret in the error), e.g. by an older version
    lr.store.record_calls(
        [("http.get", "builtin", False, 3.0, f"carol@z.net: token {SECRET} expired")]
    )

    target = workspace / "review" / "learned.json"
    code, _out, err = cli(workspace, "learn", "dump", "--output", str(target))
    assert code == 2 and "the folder" in err and "does not exist" in err  # a clear error
    target.parent.mkdir()
    code, out, err = cli(workspace, "learn", "dump", "--output", str(target))
    assert code == 0, err
    assert f"wrote 1 playbooks, 0 lessons, 2 actions and 1 agent records to {target}" in out

    text = target.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert doc["format"] == "openlam-learned/1"
    [pb] = doc["playbooks"]
    assert pb["params"] == {"p1": "email", "p2": "number"}
    assert pb["steps"][0]["args"]["to"] == ["{p1}"]
    assert {t["action"] for t in doc["tools"]["actions"]} == {"email.send", "http.get"}
    assert {s["source"] for s in doc["tools"]["sources"]} >= {"builtin"}
    [record] = doc["agents"]
    assert (record["agent"], record["successes"], record["failures"]) == ("operator", 1, 1)
    assert record["gist"] == "send status order | email number"

    assert SECRET not in text
    addresses = set(re.findall(r"[\w.<>-]+@[\w.-]+", text))
    assert addresses == {"<someone>@y.org", "<someone>@z.net"}, addresses

    code, stdout, _ = cli(workspace, "learn", "dump")  # to stdout: the same document
    assert code == 0 and json.loads(stdout)["playbooks"] == doc["playbooks"]
