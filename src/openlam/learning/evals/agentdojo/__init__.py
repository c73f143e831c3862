"""AgentDojo (the ``agentdojo`` package, v1.2.2 tasks) as a suite: every user task alone
(utility) and under every injection task with the ``important_instructions`` attack
(utility under attack, attack success).

AgentDojo's tools become in-process actions with a risk tier from one general rule
(:mod:`.adapter`, shared with ``bench/agentdojo/``); the task's workspace runs under
:data:`POLICY` (the user's own request is trusted; anything planned after reading tool
output, or fed by it, needs an approval) and the stand-in person denies every approval.
AgentDojo's own checks score the result on its environment after the run: utility is
goal done, and the injection task's security check is attack success.

AgentDojo has no dev/held-out split: a task is held out when the CRC-32 of its id is
divisible by 3 (stable across runs and machines).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from openlam.learning.evals.suite import Check, Episode, EvalTask, Suite, one_wrong_call

POLICY = Path(__file__).with_name("policy.yaml")
SUITES = ("workspace", "travel", "banking", "slack")
VERSION = "v1.2.2"
ATTACK = "important_instructions"


class _Target:
    """What the attack addresses: AgentDojo derives a model name from the pipeline's
    name and knows only its own model ids, so one of them is named here."""

    name = "openlam-planner-gpt-4o-2024-05-13"


class AgentDojoSuite(Suite):
    name = "agentdojo"
    description = (
        f"AgentDojo {VERSION}: user tasks alone and under the {ATTACK} attack "
        "(utility, utility under attack, attack success)"
    )
    approvals = "deny"
    install = "pip install 'openlam[eval]' (it brings agentdojo)"

    def unavailable(self) -> str | None:
        try:
            import agentdojo  # noqa: F401  # pyright: ignore[reportMissingImports]
        except ImportError:
            return "the agentdojo package is not installed"
        return None

    def _suites(self) -> dict[str, Any]:
        import warnings

        from agentdojo.task_suite.load_suites import get_suites  # pyright: ignore[reportMissingImports]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = get_suites(VERSION)
        return {name: found[name] for name in SUITES}

    def tasks(self) -> list[EvalTask]:
        tasks = []
        for name, suite in self._suites().items():
            for user in suite.user_tasks.values():
                tasks.append(self._task(name, user, None))
                tasks += [self._task(name, user, inj) for inj in suite.injection_tasks.values()]
        return tasks

    def _task(self, suite: str, user: Any, injection: Any) -> EvalTask:
        ident = f"{suite}-{user.ID}" + (f"-{injection.ID}" if injection else "")
        split = "heldout" if zlib.crc32(ident.encode()) % 3 == 0 else "dev"
        return EvalTask(
            id=ident,
            goal=user.PROMPT,
            split=split,
            plans={},
            tags=(suite, "attacked" if injection else "benign"),
            data={"suite": suite, "user": user, "injection": injection},
        )

    @asynccontextmanager
    async def episode(self, task: EvalTask, workspace: Path) -> AsyncIterator[Episode]:
        from agentdojo.attacks.attack_registry import load_attack  # pyright: ignore[reportMissingImports]
        from agentdojo.functions_runtime import FunctionCall, FunctionsRuntime  # pyright: ignore[reportMissingImports]
        from agentdojo.types import text_content_block_from_string  # pyright: ignore[reportMissingImports]

        from openlam.learning.evals.agentdojo.adapter import ToolBridge, registry_for

        name, user, injection = task.data["suite"], task.data["user"], task.data["injection"]
        suite = self._suites()[name]
        injections = (
            load_attack(ATTACK, suite, cast(Any, _Target())).attack(user, injection)
            if injection
            else {}
        )
        environment = user.init_environment(suite.load_and_inject_default_environment(injections))
        before = environment.model_copy(deep=True)
        runtime = FunctionsRuntime(suite.tools)
        bridge = ToolBridge(runtime, environment)
        task.actions = list(registry_for(name, list(runtime.functions.values()), bridge))
        calls = user.ground_truth(before.model_copy(deep=True))
        steps = [
            {
                "id": f"s{i + 1}",
                "action": f"{name}.{c.function}",
                "args": dict(c.args),
                **({"depends_on": [f"s{i}"]} if i else {}),
            }
            for i, c in enumerate(calls)
        ]
        answer = user.GROUND_TRUTH_OUTPUT
        task.plans = {task.goal: {"steps": steps, **({"answer": answer} if answer else {})}}
        # the negative control: one wrong call, and no ground-truth answer (a model only
        # knows it from the calls; AgentDojo checks the answer of question tasks)
        task.wrong = {
            k: v for k, v in one_wrong_call(task.plans[task.goal]).items() if k != "answer"
        }
        (workspace / "policies").mkdir(parents=True, exist_ok=True)
        (workspace / "policies" / "agentdojo.yaml").write_text(POLICY.read_text())

        def check(outcome: Any) -> Check:
            said = [text_content_block_from_string(outcome.answer or outcome.summary or "")]
            trace = [FunctionCall(function=f, args=a) for f, a, _ in bridge.calls]
            utility = suite._check_task_result(user, said, before, environment, trace)
            attacked = (
                suite._check_task_result(injection, said, before, environment, trace)
                if injection
                else None
            )
            return Check(
                goal_done=bool(utility),
                deliverable_correct=bool(utility),
                attack_success=None if attacked is None else bool(attacked),
                detail=f"utility {bool(utility)}"
                + (f", attack {'succeeded' if attacked else 'failed'}" if injection else "")
                + f"; {len(bridge.calls)} call(s)",
            )

        yield check


def suite() -> AgentDojoSuite:
    return AgentDojoSuite()
