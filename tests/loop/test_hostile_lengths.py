"""Text of any length from anywhere — a 120 KB goal from a webhook, a page a tool read
and passed on in an email's body — is scanned in time linear in its length. Each pattern
below once restarted at every position of a long run of its characters: 120 KB of one
word in a goal took over ten minutes to learn from, holding the event loop (and every
other run of that process) all along. On that code these tests hit their timeout; now
each finishes in a fraction of a second (no timing is asserted, only that they end)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest

from openlam.actions import httpkit
from openlam.actions.builtin.crm.records import email_key_of
from openlam.actions.builtin.web import read_html
from openlam.errors import ActionError
from openlam.governance.policy import domains_in
from openlam.learning.literals import literals, shape
from openlam.learning.playbooks import REFERENCE
from openlam.learning.scrub import Scrubber
from openlam.loop.references import ReferenceError_, follow
from openlam.loop.reply_json import json_in
from tests.procs import openlam

N = 200_000
RUNS = {
    "one word": "x" * N,
    "hyphenated": "a-" * (N // 2),
    "dotted": "a." * (N // 2),
    "a path": "a/" * (N // 2),
    "digits then @": "a1" * (N // 2) + "@",
    "an address's shape": "a." * (N // 4) + "@" + "b." * (N // 4),
    "an open quote": "'" + "x" * N,
    "open references": "${" * (N // 2),
    "blanks": " \t" * (N // 2) + "x",
    "scheme-like": "a+" * (N // 2),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("text", RUNS.values(), ids=list(RUNS))
def test_every_scan_of_untrusted_text_ends(text: str):
    assert shape(text) is not None and isinstance(literals(text), list)
    assert isinstance(domains_in({"to": text, "body": [text]}), list)  # governance
    assert isinstance(Scrubber().text(text), str)  # what learning may share
    assert isinstance(REFERENCE.sub("", text), str)  # a plan's references
    read_html(f"<p>{text}</p>".encode(), "utf-8", "https://example.org/", "text")  # web.fetch
    with contextlib.suppress(ActionError):
        email_key_of(text)  # the CRM's address check


def test_the_scans_still_find_what_they_found():
    goal = "email jane.doe@example.com the file reports/q3.pdf about order A-1001 and 42"
    assert [(lit.kind, lit.value) for lit in literals(goal)] == [
        ("email", "jane.doe@example.com"),
        ("file", "reports/q3.pdf"),
        ("id", "A-1001"),
        ("number", "42"),
    ]
    assert shape(goal) == "email <email> the file <file> about order <id> and <number>"
    body = "cc josé@evil.example and _x@other.example, see https://files.example/a"
    assert sorted(domains_in({"body": body})) == [
        "evil.example", "files.example", "other.example"
    ]  # fmt: skip
    assert "x@a.example" not in Scrubber().text("write to _x@a.example")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "reply",
    ["<think>" * 150_000, "[" * 100_000, "```" * 300_000, '{"a": 1, ' * 100_000],
    ids=["unclosed reasoning", "nested too deep", "fences", "unclosed objects"],
)
def test_a_model_reply_of_any_shape_is_read_or_refused(reply: str):
    assert json_in(reply, lambda v: isinstance(v, dict) and "steps" in v) is None


def test_tool_output_nested_too_deep_is_text_not_a_crash():
    deep = "[" * 100_000
    with pytest.raises(ReferenceError_, match="has no field 'id'"):
        follow({"text": deep}, "s1", ".id")  # a reference into a tool's text
    page = httpkit.Reply(200, httpx.Headers(), deep.encode(), "https://api.example/x")  # HTTP
    with pytest.raises(ActionError, match="something that is not JSON"):
        page.json("the service")


def test_a_list_index_of_thousands_of_digits_is_a_missing_field():
    """int() refuses more than 4,300 digits: a model's reference must still come back as
    feedback the model can act on, not as an error that ends the run."""
    with pytest.raises(ReferenceError_, match="has no field '9999"):
        follow({"items": [1, 2]}, "s1", ".items." + "9" * 5000)
    assert follow({"items": [1, 2]}, "s1", ".items.1") == 2
    # "²" is a digit to str.isdigit, not to int(): a missing field too, not a ValueError
    with pytest.raises(ReferenceError_, match="has no field '²'"):
        follow({"items": [1, 2]}, "s1", ".items.²")


@pytest.mark.timeout(120)
def test_a_goal_of_120_kb_runs_to_its_end(workspace: Path):
    word = "x" * 120_000
    proc = openlam(workspace, "run", f"write '{word}' to big.md")
    _out, err = proc.communicate(timeout=110)
    assert proc.returncode == 0, err[-2000:]
    assert (workspace / "big.md").read_text() == word
