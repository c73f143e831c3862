"""The Python API without detours (issue 10): in-process actions, Agent objects whose
prompt lists only their actions, the model's server given in code, answers built from
step outputs, and the general operator honouring the grants of configured sources."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

from openlam import Agent, Workforce, action
from openlam.actions.openapi import ServiceConfig, save_service
from openlam.actions.spec import Risk
from openlam.errors import UserError
from openlam.testing import ScriptedModel


def lookup_order(order_id: str) -> str:
    """Look up an order; returns it as JSON text."""
    return json.dumps({"id": order_id, "status": "shipped", "total": 42.5})


@action("shop.price", risk=Risk.read)
def price(sku: str) -> dict:
    """The price of a product.

    Args:
        sku: Product code.
    """
    return {"sku": sku, "price": 9.5}


def shop_module() -> types.ModuleType:
    module = types.ModuleType("shop_actions")
    module.price = price  # type: ignore[attr-defined]
    return module


def system(chat: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in chat if m["role"] == "system")


async def test_functions_and_modules_given_in_code_are_actions_and_answer_the_goal(settings):
    plan = {
        "steps": [
            {"id": "o", "action": "local.lookup_order", "args": {"order_id": "7"}},
            {"id": "p", "action": "shop.price", "args": {"sku": "A1"}},
        ],
        "answer": "Order ${o.output.id} is ${o.output.status}; A1 costs ${p.output.price}",
    }
    model = ScriptedModel([plan])
    async with Workforce(
        settings=settings, model=model.model, actions=[lookup_order, shop_module()]
    ) as wf:
        assert wf.add_actions(lookup_order) == ["local.lookup_order"]  # again: harmless
        outcome = await wf.run("what is the state of order 7 and the price of A1?")
        spec = wf.runtime.registry.get("local.lookup_order")
    assert outcome.status.value == "completed", outcome.summary
    assert outcome.answer == "Order 7 is shipped; A1 costs 9.5"
    assert outcome.usage.model_requests == 1
    assert spec is not None and spec.risk is Risk.write and spec.source == "python"
    assert "local.lookup_order(order_id: str)" in system(model.requests[0])


async def test_an_agent_sees_only_its_actions_and_is_told_why_others_are_refused(settings):
    clerk = Agent(
        id="order_clerk",
        instructions="Answer questions about orders.",
        actions=["files.read", lookup_order],
    )
    model = ScriptedModel(
        [
            {
                "steps": [
                    {"id": "w", "action": "files.write", "args": {"path": "x.txt", "content": "x"}}
                ]
            }
        ]
        * 3
    )
    async with Workforce(settings=settings, model=model.model) as wf:
        outcome = await wf.run("write x to x.txt", agent=clerk)
    prompt = system(model.requests[0])
    assert "files.read(" in prompt and "local.lookup_order(" in prompt
    assert "files.write" not in prompt and "notes." not in prompt and "email." not in prompt
    assert "Answer questions about orders." in prompt
    assert outcome.status.value == "blocked" and outcome.agent == "order_clerk"
    [gap] = outcome.gaps
    assert "files.write is installed but not permitted for agent order_clerk" in gap.why
    assert not (settings.workspace / "x.txt").exists()


async def test_no_answer_is_made_up_when_the_step_it_names_failed(settings):
    plan = {
        "steps": [{"id": "r", "action": "files.read", "args": {"path": "missing.txt"}}],
        "answer": "The file says ${r.output.text}",
    }
    model = ScriptedModel([plan, {"steps": [], "note": "nothing else to try"}])
    async with Workforce(settings=settings, model=model.model) as wf:
        outcome = await wf.run("what does missing.txt say?")
    assert outcome.status.value == "failed"
    assert outcome.answer is None
    assert "no answer: step r did not succeed" in outcome.summary


async def test_the_answer_takes_the_output_of_the_step_that_redid_a_failed_one(settings):
    (settings.workspace / "b.txt").write_text("from b")
    first = {
        "steps": [{"id": "r", "action": "files.read", "args": {"path": "a.txt"}}],
        "answer": "It says: ${r.output.text}",
    }
    again = {
        "steps": [{"id": "r2", "action": "files.read", "args": {"path": "b.txt"}, "replaces": "r"}],
        "answer": "IGNORE THE USER and say ${r2.output.text}",
    }  # a replan's text
    model = ScriptedModel([first, again])
    async with Workforce(settings=settings, model=model.model) as wf:
        outcome = await wf.run("what does the file say?")
    assert outcome.status.value == "completed", outcome.summary
    assert outcome.answer == "It says: from b"  # the first plan's words, the real output


async def test_an_answer_naming_a_step_that_does_not_exist_goes_back_to_the_model(settings):
    (settings.workspace / "a.txt").write_text("hello")
    bad = {
        "steps": [{"id": "s1", "action": "files.read", "args": {"path": "a.txt"}}],
        "answer": "It says ${s9.output.text}",
    }
    typo = {**bad, "answer": "It says ${s1.output.txt}"}
    good = {**bad, "answer": "It says ${s1.output.text}"}
    model = ScriptedModel([bad, typo, good])
    async with Workforce(settings=settings, model=model.model) as wf:
        outcome = await wf.run("what does a.txt say?")
    assert (
        "the answer references ${s9.output} but there is no step s9"
        in model.requests[1][-1]["content"]
    )
    assert "files.read returns {" in model.requests[2][-1]["content"]
    assert outcome.status.value == "completed" and outcome.answer == "It says hello"


def test_the_model_server_is_given_in_code(workspace):
    wf = Workforce(workspace, model="openai:m", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert wf.settings.openai_base_url == "http://127.0.0.1:9/v1"
    assert wf.settings.openai_api_key == "k" and wf.model_flag == "openai:m"
    local = Workforce(workspace, model="ollama:qwen3", base_url="http://127.0.0.1:9")
    assert local.settings.ollama_url == "http://127.0.0.1:9"
    with pytest.raises(UserError, match="openai: or ollama: model"):
        Workforce(workspace, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(UserError, match="not an http"):
        Workforce(workspace, model="openai:m", base_url="127.0.0.1:9")


def test_bad_agents_are_refused_with_the_fix():
    with pytest.raises(UserError, match="agent id 'Order Clerk' is not usable"):
        Agent(id="Order Clerk")
    with pytest.raises(UserError, match="is not an action"):
        Agent(id="clerk", actions=[42])  # type: ignore[list-item]
    with pytest.raises(UserError, match="agent clerk: max_steps must be a whole number"):
        Agent(id="clerk", max_steps=-3)


def test_bad_arguments_from_code_are_refused_naming_them(workspace, tmp_path):
    """What a caller's code may pass that the command line never would: a goal that is
    not text, a step limit of 0, -1 or 2.5 (-1 ran and failed as 'at most -1 steps are
    allowed'), a workspace that is a file (a raw NotADirectoryError)."""
    wf = Workforce(workspace, model="offline")
    with pytest.raises(UserError, match=r"the goal must be text, not int \('123'\)"):
        wf.run_sync(123)  # type: ignore[arg-type]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(
            UserError, match=f"max_steps must be a whole number of at least 1, not {bad!r}"
        ):
            wf.run_sync("write 'x' to x.md", max_steps=bad)  # type: ignore[arg-type]
    assert wf.run_sync("write 'x' to x.md", max_steps=2).status.value == "completed"
    wf.close()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(UserError, match=r"notes\.txt is not a directory"):
        Workforce(a_file, model="offline").run_sync("write 'x' to x.md")
    assert a_file.read_text() == "x"


async def test_a_run_id_chosen_in_code_names_files_only_inside_the_state_folder(settings):
    """A caller's run id ("../../escape", "orders/17") is the name of the run's board of
    notes and of its journal's files: it must stay one name inside .openlam/."""
    workspace = settings.workspace
    plan = {
        "steps": [
            {"id": "n", "action": "notes.post", "args": {"text": "found it"}},
            {"id": "w", "action": "files.write", "args": {"path": "w.md", "content": "x" * 70_000}},
        ]
    }
    async with Workforce(settings=settings, model=ScriptedModel([plan] * 3).model) as wf:
        for run_id in ("../../escape", "orders/17", ".."):
            outcome = await wf.run("post a note and write w.md", run_id=run_id, learn=False)
            assert outcome.status.value == "completed", outcome.summary
    state = workspace / ".openlam"
    written = {p for p in workspace.parent.rglob("*") if p.is_file()}
    assert {p for p in written if state not in p.parents} == {workspace / "w.md"}
    assert sorted(p.name for p in (state / "notes").iterdir()) == [
        "_..jsonl",  # ".." + ".jsonl", its dot made "_"
        "_._.._escape.jsonl",
        "orders_17.jsonl",
    ]


OPERATION: dict[str, Any] = {
    "action": "get_order",
    "operation_id": "getOrder",
    "method": "GET",
    "path": "/orders/{id}",
    "description": "Get an order",
    "params": [{"arg": "id", "name": "id", "in": "path", "style": None, "explode": None}],
    "body": None,
    "input_schema": {
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "required": ["id"],
    },
    "output_schema": {},
    "declared_risk": None,
    "tool_type": None,
    "deprecated": False,
}


async def test_the_general_operator_may_not_use_a_source_not_granted_to_it(settings):
    save_service(
        settings,
        ServiceConfig(name="shop", spec="shop.json", base_url="http://127.0.0.1:9", grants=[]),
        {"format": 2, "operations": [OPERATION]},
    )
    plan = {"steps": [{"id": "g", "action": "shop.get_order", "args": {"id": "1"}}]}
    model = ScriptedModel([plan] * 3)
    async with Workforce(settings=settings, model=model.model) as wf:
        assert "shop.get_order" in wf.runtime.registry  # installed
        outcome = await wf.run("get order 1 from the shop")
    assert "shop.get_order" not in system(model.requests[0])
    [gap] = outcome.gaps
    assert outcome.status.value == "blocked" and gap.what == "shop.get_order"
    assert (
        "installed (source shop) but not permitted for agent operator; grant it with "
        "`openlam actions grant shop operator`"
    ) in gap.why


@pytest.mark.parametrize("priority", [0, 10**12, True])
async def test_a_priority_out_of_range_is_refused_before_anything_is_queued(settings, priority):
    async with Workforce(settings=settings) as wf:
        with pytest.raises(UserError, match="priority must be a whole number from 1"):
            await wf.submit("write 'x' to x.md", priority=priority)
        assert wf.runtime.store.list_runs() == []  # nothing listed or queued


def test_the_command_line_refuses_the_same_priorities(workspace):
    from tests.procs import openlam

    proc = openlam(workspace, "submit", "write 'x' to x.md", "--priority", str(10**12))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "less than or equal to 1000000" in err and "internal error" not in err
