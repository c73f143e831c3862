"""Bad model output ends in a repaired plan or a clear failure: no traceback, no hang."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from openlam import Workforce
from openlam.actions.registry import load_plugins
from openlam.loop.plan import ModelReply
from openlam.loop.runner import RunEnv, Runner, RunRequest, local_action_call
from openlam.models.offline import OfflinePlanner
from openlam.testing import scripted_model

GOOD = {
    "steps": [{"id": "s1", "action": "files.write", "args": {"path": "out.md", "content": "ok"}}]
}


async def run(settings, replies, **overrides):
    name = f"test:bad-{id(replies)}"
    model = scripted_model(name, replies)
    async with Workforce(settings=settings.with_overrides(**overrides), model=name) as wf:
        return await wf.run("write the report"), model


async def test_invalid_json_is_repaired(settings, workspace: Path):
    outcome, model = await run(settings, ["Sure! Here is the plan: steps -> write file", GOOD])
    assert outcome.status.value == "completed"
    assert "not valid JSON" in model.requests[1][-1]["content"]
    assert outcome.usage.model_requests == 2


async def test_json_in_code_fence_with_chatter_is_accepted(settings):
    text = "Here you go:\n```json\n" + json.dumps(GOOD) + "\n```\nHope that helps."
    outcome, model = await run(settings, [text])
    assert outcome.status.value == "completed" and len(model.requests) == 1


async def test_wrong_argument_types_and_missing_fields_are_fed_back(settings):
    wrong = {"steps": [{"id": "s1", "action": "files.write", "args": {"path": 42}}]}
    outcome, model = await run(settings, [wrong, GOOD])
    assert outcome.status.value == "completed"
    feedback = model.requests[1][-1]["content"]
    assert "argument path: Input should be a valid string" in feedback
    assert "argument content: Field required" in feedback


async def test_missing_step_fields_are_fed_back(settings):
    outcome, model = await run(settings, [{"steps": [{"action": "files.write"}]}, GOOD])
    assert outcome.status.value == "completed"
    assert "plan field steps.0.id: Field required" in model.requests[1][-1]["content"]


async def test_bad_references_and_cycles_are_fed_back(settings):
    bad = {
        "steps": [
            {"id": "a", "action": "files.read", "args": {"path": "${z.output.path}"}},
            {
                "id": "b",
                "action": "files.write",
                "args": {"path": "x", "content": "${c.output.nope}"},
            },
            {"id": "c", "action": "files.read", "args": {"path": "${b.output.path}"}},
        ]
    }
    outcome, model = await run(settings, [bad, GOOD])
    feedback = model.requests[1][-1]["content"]
    assert "references ${z.output} but there is no step z" in feedback
    assert "files.read returns {path, text, bytes, note}, not nope" in feedback
    assert "dependency cycle" in feedback
    assert outcome.status.value == "completed"


async def test_repairs_are_bounded_and_the_failure_is_clear(settings):
    outcome, model = await run(settings, ["nonsense"] * 10, max_plan_repairs=2)
    assert outcome.status.value == "failed"
    assert len(model.requests) == 3
    assert "planning failed" in outcome.summary and "not valid JSON" in outcome.summary


async def test_a_model_that_replans_forever_is_stopped(settings):
    failing = {"steps": [{"id": "s1", "action": "files.read", "args": {"path": "missing.md"}}]}

    attempts = iter(range(100))

    def always_retry(chat):
        if "So far" not in chat[1]["content"]:
            return failing
        return {
            "steps": [
                {
                    "id": f"r{next(attempts)}",
                    "action": "files.read",
                    "args": {"path": "missing.md"},
                    "replaces": "s1",
                }
            ]
        }

    outcome, model = await run(settings, always_retry, max_replans=2)
    assert outcome.status.value == "failed"
    assert len(model.requests) == 3  # the plan and two replans, then it stops
    assert "no file 'missing.md'" in outcome.summary


# -- property: random model output never crashes the loop -------------------------------

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
_step = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["s1", "s2", "s3", ""]) | st.integers(),
        "action": st.sampled_from(
            ["files.write", "files.read", "nope", "delegate", "request_capability", "ask_human"]
        )
        | st.text(max_size=8),
    },
    optional={
        "args": st.dictionaries(
            st.sampled_from(["path", "content", "x", "agent", "goal", "capability", "reason"]),
            st.text(max_size=10)
            | st.sampled_from(["${s1.output.path}", "${s2.output}", "../../etc"])
            | _values,
            max_size=3,
        ),
        "depends_on": st.lists(st.sampled_from(["s1", "s2", "s3", "zz"]), max_size=3),
        "replaces": st.sampled_from(["s1", "s2"]),
    },
)
_reply = st.one_of(
    st.text(max_size=60),
    _values.map(json.dumps),
    st.fixed_dictionaries({"steps": st.lists(_step, max_size=4)}).map(json.dumps),
    st.lists(_step, max_size=3).map(json.dumps),
)


@hsettings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(replies=st.lists(_reply, min_size=1, max_size=4))
def test_random_model_output_never_crashes_the_loop(replies, tmp_path_factory):
    workspace = tmp_path_factory.mktemp("prop")
    registry = load_plugins().subset(["files.*"])
    calls = []

    async def call_model(messages, schema):
        calls.append(messages)
        text = replies[len(calls) - 1] if len(calls) <= len(replies) else '{"steps": []}'
        return ModelReply(text=text, input_tokens=1, output_tokens=1)

    env = RunEnv(
        registry=registry,
        call_model=call_model,
        call_action=local_action_call(registry),
        offline=OfflinePlanner(),
    )
    request = RunRequest(
        run_id="prop",
        goal="anything",
        model="test:prop",
        workspace=str(workspace),
        step_timeout=2,
        step_retries=0,
    )
    outcome = asyncio.run(asyncio.wait_for(Runner(request, env).run(), 20))
    assert outcome.status.value in {"completed", "partial", "blocked", "failed"}
    assert len(calls) <= (request.max_plan_repairs + 1) * (request.max_replans + 1)
    if outcome.status.value == "completed":
        assert outcome.steps and all(
            s.status.value == "succeeded" or s.recovered_by for s in outcome.steps
        )
    for s in outcome.steps:  # nothing escaped the workspace
        assert not (isinstance(s.output, dict) and str(s.output.get("path", "")).startswith(".."))
