"""Generalising a plan into a playbook and matching goals against it."""

from __future__ import annotations

from openlam.learning.literals import literals, shape
from openlam.learning.playbooks import PlaybookIndex, generalise

GOAL = "Look up customer jane@acme.test, fetch their order 1042, email them its status"
STEPS = [
    {"id": "s1", "action": "crm.contact_get", "args": {"email": "jane@acme.test"}},
    {"id": "s2", "action": "http.get", "args": {"url": "http://orders.test/orders/1042"}},
    {
        "id": "s3",
        "action": "email.send",
        "depends_on": ["s1", "s2"],
        "args": {
            "to": ["jane@acme.test"],
            "subject": "Order 1042 {status}",
            "body": "Hi ${s1.output.name}: ${s2.output.text}",
            "priority": 1042,
        },
    },
]


def test_literals_are_typed_and_make_the_shape() -> None:
    found = literals("save https://a.test/x.html as notes.md, 'Hi there', ticket ORD-7 and 42")
    assert [(lit.kind, lit.value) for lit in found] == [
        ("url", "https://a.test/x.html"),
        ("file", "notes.md"),
        ("text", "Hi there"),
        ("id", "ORD-7"),
        ("number", "42"),
    ]
    assert shape("Fetch  order 7 for a@b.test.") == "fetch order <number> for <email>"


def test_goal_literals_in_arguments_become_typed_parameters() -> None:
    pb, why = generalise(GOAL, STEPS)
    assert pb is not None, why
    assert pb.params == {"p1": "email", "p2": "number"}
    assert pb.steps[0]["args"] == {"email": "{p1}"}
    assert pb.steps[1]["args"]["url"] == "http://orders.test/orders/{p2}"
    assert pb.steps[2]["args"]["body"] == "Hi ${s1.output.name}: ${s2.output.text}"
    assert pb.steps[2]["args"]["priority"] == {"$param": "p2"}
    assert pb.steps[2]["depends_on"] == ["s1", "s2"]
    assert pb.example == (
        "Look up customer <p1:email>, fetch their order <p2:number>, email them its status"
    )

    values = pb.extract(
        "look up customer  bob@shop.test, fetch their order 77, email them its status."
    )
    assert values == {"p1": "bob@shop.test", "p2": "77"}
    steps = pb.instantiate(values)
    assert steps[1]["args"]["url"] == "http://orders.test/orders/77"
    assert steps[2]["args"]["to"] == ["bob@shop.test"]
    assert steps[2]["args"]["subject"] == "Order 77 {status}"  # the plan's own braces stay
    assert steps[2]["args"]["priority"] == 77


def test_a_goal_of_another_shape_or_with_a_badly_typed_value_does_not_match() -> None:
    pb, _ = generalise(GOAL, STEPS)
    assert pb is not None
    assert (
        pb.extract("Look up customer jane@acme.test, fetch their order A-1, email them its status")
        is None
    )  # an id where a number was learned
    assert (
        pb.extract("Look up customer jane@acme.test, cancel their order 7, email them its status")
        is None
    )
    index = PlaybookIndex([pb])
    assert index.candidates(
        "look up customer x@y.test, fetch their order 9, email them its status"
    ) == [pb]
    assert index.candidates("look up customer x@y.test") == []


def test_literals_the_plan_does_not_use_stay_fixed() -> None:
    pb, _ = generalise(
        "post the 3 newest notes to notes.md",
        [{"id": "a", "action": "files.write", "args": {"path": "notes.md"}}],
    )
    assert pb is not None and pb.params == {"p1": "file"}
    assert pb.extract("post the 3 newest notes to other.md") == {"p1": "other.md"}
    assert pb.extract("post the 5 newest notes to other.md") is None


def test_a_number_that_names_a_file_is_a_parameter_of_the_path_too() -> None:
    # learned from one child of a fan-out, replayed by a sibling: the sibling must write
    # its own file, not the first one's
    pb, why = generalise(
        "write status note 0",
        [{"id": "a", "action": "files.write", "args": {"path": "notes/0.md", "content": "0"}}],
    )
    assert pb is not None, why
    assert pb.steps[0]["args"] == {"path": "notes/{p1}.md", "content": "{p1}"}
    steps = pb.instantiate(pb.extract("write status note 12") or {})
    assert steps[0]["args"] == {"path": "notes/12.md", "content": "12"}
    # a decimal is still not the integer it starts with
    pb, _ = generalise(
        "set the rate to 1",
        [{"id": "a", "action": "notes.add", "args": {"text": "rate 1.5, was 1"}}],
    )
    assert pb is not None and pb.steps[0]["args"] == {"text": "rate 1.5, was {p1}"}


def test_no_email_address_or_secret_is_stored_verbatim() -> None:
    pb, why = generalise(
        "email the report",
        [{"id": "a", "action": "email.send", "args": {"to": ["boss@corp.test"]}}],
    )
    assert pb is None and "email address" in why
    pb, why = generalise(
        "tell jane@acme.test hello",
        [{"id": "a", "action": "social.slack_post", "args": {"text": "hello"}}],
    )
    assert pb is None and "email address" in why  # it would sit in the goal pattern

    def redact(value):
        import json

        return json.loads(json.dumps(value).replace("tok-12345", "***"))

    pb, why = generalise(
        "fetch order 5",
        [{"id": "a", "action": "http.get", "args": {"url": "https://x.test/5?key=tok-12345"}}],
        secret=redact,
    )
    assert pb is None and "secret" in why


def test_a_parameter_is_never_taken_from_inside_a_step_reference() -> None:
    pb, _ = generalise(
        "copy order 1 twice",
        [
            {"id": "s1", "action": "http.get", "args": {"url": "https://x.test/1"}},
            {
                "id": "s2",
                "action": "files.write",
                "args": {"path": "o.txt", "content": "${s1.output.text}"},
            },
        ],
    )
    assert pb is not None
    assert pb.steps[1]["args"]["content"] == "${s1.output.text}"
    assert pb.instantiate({"p1": "9"})[0]["args"]["url"] == "https://x.test/9"
