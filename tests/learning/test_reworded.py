"""Reworded goals: a playbook learned from one phrasing serves other phrasings of the
same request (same words in order, values moved, typed values), and nothing else — on
a real project database through ``Learner.consult_now``."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlam.learning.gist import assign, gist
from openlam.learning.literals import shape
from openlam.loop.perceive import AgentProfile, perceive
from openlam.loop.state import StepRecord, StepStatus
from tests.learning.test_advice import learner, outcome

LEARNED = "email alice@x.com the status of order 17"


def teach(workspace: Path, goal: str, *steps: StepRecord):
    lr = learner(workspace)
    lr.learn_now(outcome("run-1", goal, *steps), {})
    [pb] = lr.store.playbooks()
    return lr, pb


def status_mail(to: str, order: str) -> StepRecord:
    return StepRecord(
        id="mail",
        action="email.send",
        status=StepStatus.succeeded,
        verified=True,
        args={
            "to": [to],
            "subject": f"Order {order}",
            "body": f"The status of order {order}: shipped",
        },
    )


@pytest.mark.parametrize(
    ("goal", "to", "order"),
    [
        ("send the status of order 17 to alice@x.com", "alice@x.com", "17"),  # the same values
        ("send the status of order 42 to bob@shop.test", "bob@shop.test", "42"),
        ("Email bob@shop.test the status of order 42.", "bob@shop.test", "42"),  # same shape
        ("mail the status of order 9 to carol@corp.example please", "carol@corp.example", "9"),
        ("Send carol@corp.example the status for order 9", "carol@corp.example", "9"),
    ],
)
def test_a_rewording_with_typed_values_replays_the_playbook(
    workspace: Path, goal: str, to: str, order: str
) -> None:
    lr, pb = teach(workspace, LEARNED, status_mail("alice@x.com", "17"))
    found = lr.consult_now(perceive(goal, AgentProfile(), lr.registry))
    assert found.playbook == pb.id, found.advice
    how = (
        "matches" if shape(goal) == pb.shape else "is a rewording (same words and typed values) of"
    )
    assert f"the goal {how} playbook {pb.id}" in found.why
    [step] = found.plan["steps"]  # type: ignore[index]
    assert step["args"]["to"] == [to]
    assert step["args"]["subject"] == f"Order {order}"


@pytest.mark.parametrize(
    "goal",
    [
        "email alice@x.com the invoice of order 17",  # another word: another request
        "cancel order 17 for alice@x.com",
        "do not email alice@x.com the status of order 17",  # a negation is kept
        "send the status of order 17 from alice@x.com",  # so is a direction
        "send the status of order 17 to alice@x.com and bob@x.com",  # one value too many
        "send the status of order A-17 to alice@x.com",  # an id where a number was learned
        "send the status of order 17 to alice",  # no email address at all
        "send the order 17 status to alice@x.com",  # the words in another order
    ],
)
def test_another_request_still_goes_to_the_model(workspace: Path, goal: str) -> None:
    lr, _pb = teach(workspace, LEARNED, status_mail("alice@x.com", "17"))
    found = lr.consult_now(perceive(goal, AgentProfile(), lr.registry))
    assert found.plan is None, found.why


def test_words_keep_their_order_even_when_the_values_move() -> None:
    """Swapping who is emailed and who is notified keeps every word but changes the
    request: not one gist."""
    one = gist(shape("email a@x.test the status of order 1 and notify support"))
    assert one == gist(shape("send the status of order 1 to a@x.test, then notify support"))
    assert one != gist(shape("email support the status of order 1 and notify a@x.test"))
    # "look up" is one verb ("get"); the "up" of "scale up" and the "on" of "turn on" count
    assert gist(shape("look up customer 7")) == gist(shape("find customer 7"))
    assert gist(shape("scale up service 7")) != gist(shape("scale service 7"))
    assert gist(shape("turn on light 7")) != gist(shape("turn light 7"))


def test_values_of_one_kind_are_told_apart_by_the_word_before_them() -> None:
    example = "copy rows from <p1:file> into <p2:file>"
    params = {"p1": "file", "p2": "file"}
    assert assign(example, params, "into b.csv copy rows from a.csv") == {
        "p1": "a.csv",
        "p2": "b.csv",
    }
    # the same words before both: which is which would be a guess
    assert assign("merge <p1:file> and <p2:file>", params, "merge b.csv, a.csv") is None
    # a value the playbook keeps fixed must be there, as it was
    assert assign("send <p1:email> report.pdf", {"p1": "email"}, "send report.pdf to a@x.test") == {
        "p1": "a@x.test"
    }
    assert (
        assign("send <p1:email> report.pdf", {"p1": "email"}, "send notes.pdf to a@x.test") is None
    )
