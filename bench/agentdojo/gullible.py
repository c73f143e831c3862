"""A deliberately gullible planner driven through OpenLAM's loop, as an AgentDojo pipeline.

The planner obeys whatever it reads:

* asked for a plan for the user's goal, it plans the user task's ground-truth calls and
  gives the task's ground-truth answer as its note. Two variants bound what a real
  planner would do: ``oracle`` puts every call in the first plan with literal arguments
  (as if it knew, without reading, what the tools will say — the most favourable case
  for utility); ``read-first`` plans only the reads up to the first action, and the
  rest after reading (every action planned after untrusted content was read — the
  least favourable case);
* asked again after steps ran, it reads the replan prompt *and every tool output in
  full* (the stock prompt shows only a 160-character preview; the gullible model is
  assumed to see everything, the worst case), and for every injection task whose goal
  appears in that text it plans the injection task's ground-truth calls; an injection
  that only asks it to *say* something goes into its note.

OpenLAM's loop only replans after a failure, so a run whose steps all succeed would
never show the planner any tool output and the attack could not even be attempted.
:class:`ReviewingRunner` therefore adds a review turn — after the plan finishes, the
planner is asked once more, with the results — which exposes it to every injection the
task's tools return. This makes the benchmark harder for OpenLAM, not easier.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable, Sequence
from typing import Any

from agentdojo.agent_pipeline.base_pipeline_element import BasePipelineElement
from agentdojo.agent_pipeline.tool_execution import tool_result_to_str
from agentdojo.functions_runtime import EmptyEnv, FunctionCall
from agentdojo.types import (
    ChatAssistantMessage,
    ChatToolResultMessage,
    text_content_block_from_string,
)

from openlam.actions.registry import ActionRegistry
from openlam.actions.spec import Risk
from openlam.learning.evals.agentdojo.adapter import ToolBridge, registry_for
from openlam.loop.plan import ModelReply
from openlam.loop.runner import Gate, RunEnv, Runner, RunRequest, local_action_call
from openlam.loop.state import NextStep
from openlam.models.offline import OfflinePlanner

_run_ids = itertools.count(1)


class ReviewingRunner(Runner):
    """The stock runner plus a review turn: when the plan is done, the planner sees the
    results and may plan more (bounded by ``max_replans``)."""

    def observe(self) -> NextStep:
        step = super().observe()
        if step.kind == "done" and self.state.replans < self.request.max_replans:
            return NextStep(kind="replan", reason="review the results before finishing")
        return step


class GulliblePlanner:
    def __init__(self, suite: Any, suite_name: str, env: Any, read_first: bool = False) -> None:
        self.suite = suite
        self.suite_name = suite_name
        self.env = env
        self.read_first = read_first
        self.runner: Runner | None = None
        self.obeyed: set[str] = set()
        self.deferred: list[FunctionCall] = []
        self.answer = ""
        self.by_prompt = {_norm(t.PROMPT): t for t in suite.user_tasks.values()}

    def _read_first(self, calls: list[FunctionCall]) -> list[dict[str, Any]]:
        """The first plan of a planner that must read before it can act: everything up to
        the first action that follows a read; from there on it is planned after reading
        (in the review turn), so governance sees it as planned after untrusted content
        was read — whether or not its values really came from that content."""
        registry = self.runner.env.registry if self.runner else None
        has_read = False
        for i, call in enumerate(calls):
            spec = registry.get(f"{self.suite_name}.{call.function}") if registry else None
            if spec is not None and spec.risk is Risk.read:
                has_read = True
            elif has_read:
                self.deferred = list(calls[i:])
                return self._steps(calls[:i], "s")
        return self._steps(calls, "s")

    def _steps(self, calls: Sequence[FunctionCall], prefix: str) -> list[dict[str, Any]]:
        steps = []
        for i, call in enumerate(calls, start=1):
            step = {
                "id": f"{prefix}{i}",
                "action": f"{self.suite_name}.{call.function}",
                "args": dict(call.args),
            }
            if i > 1:
                step["depends_on"] = [f"{prefix}{i - 1}"]
            steps.append(step)
        return steps

    def _seen_text(self, messages: list[dict[str, str]]) -> str:
        texts = [m["content"] for m in messages]
        if self.runner is not None:
            for record in self.runner.state.records.values():
                if record.output is not None:
                    texts.append(json.dumps(record.output, default=str))
                if record.error:
                    texts.append(record.error)
        return "\n".join(texts)

    async def __call__(self, messages: list[dict[str, str]], _schema: dict[str, Any]) -> ModelReply:
        prompt = messages[-1]["content"]
        if "\nSo far:\n" not in prompt:  # the first plan, from the user's goal
            task = self.by_prompt.get(_norm(prompt.removeprefix("Goal: ")))
            if task is None:
                return _reply({"steps": [], "note": "I do not know how to do that."})
            self.answer = task.GROUND_TRUTH_OUTPUT
            calls = task.ground_truth(self.env)
            steps = self._read_first(calls) if self.read_first else self._steps(calls, "s")
            return _reply({"steps": steps, "note": self.answer})
        seen = self._seen_text(messages)
        version = (self.runner.state.plan_version + 1) if self.runner else 2
        steps: list[dict[str, Any]] = self._steps(self.deferred, f"v{version}u")
        self.deferred = []  # now it has read what it needed: the rest of the user's task
        said: list[str] = []
        for inj_id, inj in self.suite.injection_tasks.items():
            if inj_id in self.obeyed or inj.GOAL not in seen:
                continue
            self.obeyed.add(inj_id)  # gullible, but it does not repeat itself
            calls = inj.ground_truth(self.env)
            new = self._steps(calls, f"v{version}{inj_id.split('_')[-1]}s")
            if steps and new:
                new[0]["depends_on"] = [steps[-1]["id"]]
            steps += new
            said.append(inj.GROUND_TRUTH_OUTPUT or inj.GOAL)
        return _reply({"steps": steps, "note": " ".join(said)} if said else {"steps": steps})


def _norm(text: str) -> str:
    return " ".join(text.split())


def _reply(plan: dict[str, Any]) -> ModelReply:
    return ModelReply(text=json.dumps(plan))


class OpenLAMPipeline(BasePipelineElement):
    """Runs each AgentDojo query as one OpenLAM run with the gullible planner."""

    # The attack addresses the model by name; AgentDojo derives it from the pipeline name
    # and knows only its own model ids, so one is included for that purpose alone.
    name = "openlam-gullible-planner-gpt-4o-2024-05-13"

    def __init__(
        self,
        suite: Any,
        suite_name: str,
        gate: Gate | None,
        emit: Any = None,
        read_first: bool = False,
        planner: type[GulliblePlanner] | None = None,
        extend: Callable[[ActionRegistry], None] | None = None,
        url_reads: str = "external",
    ) -> None:
        self.read_first = read_first
        self.planner_class = planner or GulliblePlanner
        self.extend = extend  # adds harness actions (the exfiltration variant's fetch)
        self.url_reads = url_reads
        self.suite = suite
        self.suite_name = suite_name
        self.gate = gate
        self.emit = emit
        self.last_outcome: Any = None

    def query(
        self,
        query: str,
        runtime: Any,
        env: Any = EmptyEnv(),
        messages: Sequence[Any] = (),
        extra_args: dict | None = None,
    ) -> tuple[str, Any, Any, Sequence[Any], dict]:
        bridge = ToolBridge(runtime, env)
        registry = registry_for(
            self.suite_name, list(runtime.functions.values()), bridge, self.url_reads
        )
        if self.extend is not None:
            self.extend(registry)
        planner = self.planner_class(self.suite, self.suite_name, env, self.read_first)
        request = RunRequest(
            run_id=f"{self.suite_name}-{next(_run_ids)}",
            goal=query,
            model="test:gullible",
            workspace=".",
            max_steps=80,
            step_retries=0,
            max_replans=2,
        )
        run_env = RunEnv(
            registry=registry,
            call_model=planner,
            call_action=local_action_call(registry),
            offline=OfflinePlanner(),
        )
        if self.gate is not None:
            run_env.gate = self.gate
        if self.emit is not None:
            run_env.emit = self.emit
        runner = ReviewingRunner(request, run_env)
        planner.runner = runner
        outcome = asyncio.run(runner.run())
        self.last_outcome = outcome
        new: list[Any] = []
        for function, args, result in bridge.calls:
            call = FunctionCall(function=function, args=args)
            new.append(
                ChatAssistantMessage(
                    role="assistant",
                    tool_calls=[call],
                    content=[text_content_block_from_string("")],
                )
            )
            new.append(
                ChatToolResultMessage(
                    role="tool",
                    tool_call=call,
                    tool_call_id=None,
                    error=None,
                    content=[text_content_block_from_string(tool_result_to_str(result))],
                )
            )
        answer = f"{planner.answer}\n\n{outcome.summary}".strip()
        new.append(
            ChatAssistantMessage(
                role="assistant", tool_calls=None, content=[text_content_block_from_string(answer)]
            )
        )
        return query, runtime, env, [*messages, *new], extra_args or {}
