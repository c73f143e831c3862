"""Validate (OAP): each problem is one exact sentence, found before anything runs."""

from __future__ import annotations

import pytest

from openlam.actions.registry import load_plugins
from openlam.loop.references import ReferenceError_, resolve
from openlam.loop.state import Plan
from openlam.loop.validate import parse_plan, validate_plan

REGISTRY = load_plugins().subset(["files.*", "http.*"])


def check(*steps, **kw):
    return validate_plan(Plan.model_validate({"steps": list(steps)}), REGISTRY, **kw)


def test_a_valid_plan_has_no_errors_and_references_imply_dependencies():
    plan = Plan.model_validate(
        {
            "steps": [
                {"id": "a", "action": "http.get", "args": {"url": "http://x.test/"}},
                {
                    "id": "b",
                    "action": "files.write",
                    "args": {"path": "p", "content": "${a.output.text}"},
                },
            ]
        }
    )
    assert validate_plan(plan, REGISTRY) == []
    assert plan.steps[1].depends_on == ["a"]


def test_unknown_action_suggests_close_names():
    [error] = check({"id": "a", "action": "files.wirte", "args": {}})
    assert error.startswith(
        "step a (files.wirte): unknown action files.wirte; did you mean files.write"
    )


def test_argument_errors_name_the_argument():
    errors = check({"id": "a", "action": "files.write", "args": {"path": 3, "extra": 1}})
    assert "step a (files.write): argument path: Input should be a valid string" in errors
    assert "step a (files.write): argument content: Field required" in errors
    assert "step a (files.write): argument extra: Extra inputs are not permitted" in errors


def test_references_to_missing_steps_and_fields():
    errors = check(
        {"id": "a", "action": "files.read", "args": {"path": "x"}},
        {
            "id": "b",
            "action": "files.write",
            "args": {"path": "${zz.output.path}", "content": "${a.output.txt}"},
        },
    )
    assert "step b (files.write): references ${zz.output} but there is no step zz" in errors
    assert (
        "step b (files.write): ${a.output.txt} — "
        "files.read returns {path, text, bytes, note}, not txt"
    ) in errors


def test_cycles_duplicates_unknown_dependencies_and_size():
    errors = check(
        {"id": "a", "action": "files.read", "args": {"path": "x"}, "depends_on": ["b"]},
        {"id": "b", "action": "files.read", "args": {"path": "y"}, "depends_on": ["a"]},
        {"id": "c", "action": "files.read", "args": {"path": "z"}, "depends_on": ["q"]},
        {"id": "c", "action": "files.read", "args": {"path": "w"}},
        max_steps=3,
    )
    assert any(e.startswith("dependency cycle") for e in errors)
    assert "step id c is used more than once; give every step its own id" in errors
    assert "step c (files.read): depends_on names unknown step q" in errors
    assert "the plan has 4 steps; at most 3 are allowed" in errors


def test_special_steps_need_their_arguments():
    errors = check({"id": "d", "action": "delegate", "args": {"agent": "cfo"}})
    assert errors == ["step d (delegate): argument goal (text) is required"]


def test_replans_may_reference_finished_steps_but_not_reuse_their_ids():
    errors = check(
        {
            "id": "s1",
            "action": "files.write",
            "args": {"path": "x", "content": "${old.output.text}"},
        },
        done={"old": "files.read", "s1": "files.read"},
    )
    assert errors == ["step id s1 is already taken by a finished step; choose a new id"]


PLAN = '{"steps": [{"id": "s1", "action": "files.read", "args": {"path": "notes.md"}}]}'


@pytest.mark.parametrize(
    "text",
    [
        PLAN,
        f"```json\n{PLAN}\n```",
        f"Here is the plan: {PLAN} Let me know.",
        # reasoning models think first, in braces and JSON-looking examples
        '<think>Read it with {files.read}; a step looks like {"id": "x"}.</think>\n' + PLAN,
        'A step is shaped like {"id": "…", "action": "…"}; mine:\n' + PLAN,
        '[{"id": "s1", "action": "files.read", "args": {"path": "notes.md"}}]',
    ],
)
def test_a_plan_is_read_from_whatever_surrounds_it(text):
    plan, errors = parse_plan(text)
    assert errors == [] and plan is not None
    assert [(s.id, s.action, s.args) for s in plan.steps] == [
        ("s1", "files.read", {"path": "notes.md"})
    ]


@pytest.mark.parametrize("text", ["", "no json here", "[1, 2", '{"steps": 5}'])
def test_unparseable_plans_say_what_to_send(text):
    plan, errors = parse_plan(text)
    assert plan is None and errors


def test_resolve_keeps_types_for_whole_references_and_text_inside_strings():
    outputs = {"a": {"n": 3, "items": ["x", "y"], "d": {"k": "v"}}}
    assert resolve("${a.output.n}", outputs) == 3
    assert resolve({"v": ["${a.output.items.1}"]}, outputs) == {"v": ["y"]}
    assert resolve("n=${a.output.n}, d=${a.output.d}", outputs) == 'n=3, d={"k": "v"}'
    with pytest.raises(ReferenceError_, match="has no field 'nope'"):
        resolve("${a.output.nope}", outputs)


def test_files_are_confined_to_the_workspace(tmp_path):
    import asyncio

    from openlam.actions.spec import ActionContext
    from openlam.loop.act import execute

    spec = REGISTRY.get("files.write")
    assert spec is not None
    ctx = ActionContext(run_id="r", step_id="s", idempotency_key="r:s", workspace=tmp_path)
    for path in ("../escape.txt", "/etc/passwd", "a/../../b"):
        result = asyncio.run(
            execute(spec, ctx, {"path": path, "content": "x"}, timeout=5, retries=0)
        )
        assert result.status == "failed" and "outside the workspace" in (result.error or "")
    (tmp_path / "link").symlink_to("/tmp")
    result = asyncio.run(
        execute(spec, ctx, {"path": "link/x.txt", "content": "x"}, timeout=5, retries=0)
    )
    assert result.status == "failed"
    assert not (tmp_path.parent / "escape.txt").exists()
