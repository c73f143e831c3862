"""The Python API: ``Workforce`` runs goals durably in a workspace.

    async with Workforce(workspace="work", model="ollama:qwen3") as wf:
        outcome = await wf.run("save the page at https://example.org as notes.md")

In-process actions (``Workforce(actions=[func, module])``, :meth:`Workforce.add_actions`)
and :class:`openlam.Agent` objects need no plugin packaging; see README "From Python".
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openlam.config import Settings, load_settings
from openlam.errors import UserError
from openlam.loop.perceive import AgentProfile
from openlam.loop.runner import Routing, RunRequest
from openlam.loop.state import Outcome
from openlam.memory.store import Store
from openlam.runtime import boot, process
from openlam.runtime.admin import check_goal, check_max_steps

if TYPE_CHECKING:
    from openlam.agent import Agent


class Workforce:
    """A workspace's workforce: runs goals to verified outcomes, durably.

    ``workspace``: the directory of files, state and configuration (created if missing;
    default ``$OPENLAM_WORKSPACE``, else the current directory). ``model``: a spec such
    as ``"openai:gpt-4.1-mini"`` or ``"ollama:qwen3"`` (default: the resolution order
    of the settings), or a pydantic-ai ``Model`` object. ``base_url`` / ``api_key``:
    where that model's server is (an OpenAI-compatible ``…/v1`` for ``openai:``, the
    Ollama address for ``ollama:``) and its key, overriding the settings.
    ``actions``: in-process actions — functions (plain or ``@action``), modules — added
    to every installed one (see :meth:`add_actions`).

    Who makes it: users' Python code, the CLI (``openlam run``), and — over a runtime
    already started — workers, the server and scheduled workflows (:meth:`attached`).

    Lifecycle: constructing it reads the settings only. :meth:`open` (entered by
    ``async with Workforce(...) as wf``, or ``with`` for :meth:`run_sync`) starts the
    process runtime (:func:`openlam.runtime.process.start`: database, plugins, DBOS,
    governance, recovery of dead processes' runs); :meth:`close` stops it. One process
    serves one workspace at a time. Between the two, :meth:`run` prepares a
    :class:`~openlam.loop.runner.RunRequest` (the agent chosen, see :meth:`prepare`)
    and runs it as a durable workflow; :meth:`submit` queues it for workers instead.

        async with Workforce(workspace="work") as wf:
            outcome = await wf.run("list the files", agent="operator")
            print(outcome.status, outcome.summary)
    """

    def __init__(
        self,
        workspace: str | Path | None = None,
        *,
        model: Any = None,
        base_url: str | None = None,
        api_key: str | None = None,
        actions: Sequence[Any] = (),
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings or load_settings(workspace)
        self.model_flag = _model_spec(model)
        if base_url or api_key:
            self.settings = _model_server(self.settings, self.model_flag, base_url, api_key)
        self._rt: process.Runtime | None = None
        self._store: Store | None = None
        self._actions: list[Any] = list(actions)

    @classmethod
    def attached(cls, rt: process.Runtime) -> Workforce:
        """A Workforce over this process's runtime, already started (workers, the server
        and scheduled workflows use it)."""
        wf = cls(settings=rt.settings)
        wf._rt = rt
        return wf

    # -- lifecycle ------------------------------------------------------------------

    def open(self) -> Workforce:
        self._rt = boot.start(self.settings, submit=submit_goal)
        self._rt.registry.add_actions(self._actions)
        return self

    def add_actions(self, *actions: Any) -> list[str]:
        """Make in-process actions available to this workforce's runs; returns their
        names. Each is a function decorated with ``@action`` (its name and risk as
        declared), a plain function (``local.FUNCTION_NAME``, risk ``write``: its input
        schema from its type hints, its description from its docstring), or a module of
        ``@action`` functions. The general operator may use them; give them to an
        :class:`openlam.Agent` to narrow who may. A run that uses them can only be
        resumed by a process that added them too."""
        from openlam.actions.registry import ActionRegistry

        self._actions += [a for a in actions if a not in self._actions]
        registry = self._rt.registry if self._rt is not None else ActionRegistry()
        return registry.add_actions(actions)

    def close(self) -> None:
        process.stop()
        self._rt = None

    async def __aenter__(self) -> Workforce:
        # Opened on this loop's thread: DBOS then runs the runs it dequeues or recovers
        # on this same loop, so every run of the process shares one event loop.
        return self.open()

    async def __aexit__(self, *_exc: object) -> None:
        if self._rt is not None:  # runs still here (e.g. waiting for a person) resume elsewhere
            await self._rt.stop_runs()
        await process.close_plugins()
        await asyncio.to_thread(self.close)
        # DBOS makes its own pool the loop's default executor and shuts it down on close;
        # give the loop a fresh one so asyncio.to_thread keeps working afterwards.
        from concurrent.futures import ThreadPoolExecutor

        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())

    def __enter__(self) -> Workforce:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def runtime(self) -> process.Runtime:
        if self._rt is None:
            self.open()
        assert self._rt is not None
        return self._rt

    # -- runs -----------------------------------------------------------------------

    def request(
        self,
        goal: str,
        *,
        model: str | None = None,
        max_steps: int | None = None,
        run_id: str | None = None,
        parent_id: str | None = None,
        context: list[str] | None = None,
        deadline: float | str | None = None,
        tainted_by: list[str] | None = None,
        learn: bool = True,
    ) -> RunRequest:
        """A run request for ``goal`` with this workspace's settings. ``deadline``: seconds
        from now, or a duration like "10m"; past it no step starts and the run ends
        ``cancelled``. ``learn=False``: the run neither replays nor teaches playbooks."""
        from openlam.models.resolve import choose_model

        check_max_steps(max_steps)
        s = self.settings
        now = time.time()
        return RunRequest(
            run_id=run_id or new_run_id(),
            goal=check_goal(goal),
            model=choose_model(s, model or self.model_flag).spec,
            workspace=str(s.workspace),
            max_steps=max_steps or s.max_steps,
            max_replans=s.max_replans,
            max_plan_repairs=s.max_plan_repairs,
            step_timeout=s.step_timeout,
            step_retries=s.step_retries,
            parent_id=parent_id,
            context=context or [],
            started_at=now,
            deadline_at=now + seconds(deadline) if deadline else None,
            tainted_by=tainted_by or [],
            learn=learn,
        )

    async def prepare(
        self,
        goal: str,
        *,
        agent: str | Agent | dict[str, Any] | None = None,
        department: str | None = None,
        route: bool = False,
        **options: Any,
    ) -> RunRequest:
        """The request for a goal with its agent chosen (see :meth:`run`)."""
        from openlam.agent import Agent

        request = self.request(goal, **options)
        if isinstance(agent, Agent):  # given in code: no routing
            request.agent = agent.profile(self.add_actions(*agent.in_process))
            if agent.max_steps and not options.get("max_steps"):
                request.max_steps = agent.max_steps
        elif isinstance(agent, str) or department or route:
            from openlam.org.select import select_agent

            installed = [s.name for s in self.runtime.registry] if self._rt else None
            chosen = await select_agent(
                self.settings,
                goal,
                agent=agent if isinstance(agent, str) else None,
                department=department,
                model=request.model,
                installed=installed,
                learn=request.learn,
            )
            request.agent, request.routing = chosen
        elif isinstance(agent, dict):
            request.agent = AgentProfile.model_validate(agent)
        else:
            from openlam.actions.grants import source_access

            sources, problems = source_access(self.settings)  # read once for both
            request.agent = self.general_operator(sources)
            warnings = self.workspace_warnings(problems)
            if warnings:  # shown by `openlam run`, as routing's are
                request.routing = Routing(warnings=warnings)
        if request.agent.model and not (options.get("model") or self.model_flag):
            request.model = request.agent.model
        return request

    def general_operator(self, sources: Sequence[Any] | None = None) -> AgentProfile:
        """The agent of a goal given no agent and not routed: every installed action,
        except those of configured sources (MCP, OpenAPI) not granted to ``operator``
        (``openlam actions grant SOURCE operator``). ``sources``: as ``source_access``
        returns them, if already read."""
        from openlam.actions.grants import source_access

        if sources is None:
            sources = source_access(self.settings)[0]  # a broken file: no exclusion
        hidden = [f"!{s.pattern}" for s in sources if not s.grants_to("operator")]
        return AgentProfile(actions=("*", *hidden))

    def workspace_warnings(self, source_problems: list[str] | None = None) -> list[str]:
        """Problems with the workspace's agent files and source configurations that a run
        goes on without (each names the file and what is wrong). ``source_problems``: as
        ``source_access`` returns them, if already read."""
        from openlam.actions.grants import source_access
        from openlam.org.loader import load_catalog

        if (self.settings.workspace / "agents").is_dir():  # the catalog's own check
            problems = list(load_catalog(self.settings.workspace).load_errors)
        elif source_problems is not None:
            problems = source_problems
        else:
            problems = source_access(self.settings)[1]
        for problem in problems:  # logged as routing logs them: never silently dropped
            logging.getLogger("openlam.org").warning(problem)
        return problems

    async def run(
        self,
        goal: str,
        *,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        agent: str | Agent | dict[str, Any] | None = None,
        department: str | None = None,
        route: bool = False,
        **options: Any,
    ) -> Outcome:
        """Run a goal to its outcome in this process (durably: a crash resumes it).

        ``agent``: an :class:`openlam.Agent`, or the id of a catalog agent;
        ``department``: the best agent of that department takes it; ``route=True``: the
        chief of staff picks across the organisation (asking the model when one is
        connected: one more model request). With none of them — the default, as for
        ``openlam run`` without ``--route`` — the goal runs as the general operator with
        every action (see :meth:`general_operator`).

        ``outcome.answer`` holds the answer to a question, built from the steps' outputs.
        """
        request = await self.prepare(
            goal, agent=agent, department=department, route=route, **options
        )
        return await self.submit_and_wait(request, on_event)

    async def submit(
        self,
        goal: str,
        *,
        agent: str | None = None,
        department: str | None = None,
        route: bool = True,
        priority: int | None = None,
        **options: Any,
    ) -> RunRequest:
        """Queue a goal for the workers (``openlam worker``) and return its request at
        once; ``await wf.wait(request.run_id)`` waits for the outcome."""
        request = await self.prepare(
            goal, agent=agent, department=department, route=route, **options
        )
        await self.enqueue(request, priority=priority)
        return request

    async def enqueue(self, request: RunRequest, *, priority: int | None = None) -> bool:
        """Put a prepared request on its queue; False if a run with its id exists."""
        from openlam.runtime import admin

        return await asyncio.to_thread(admin.submit, self.settings, self.store, request, priority)

    @property
    def store(self) -> Store:
        """The project database (runs, steps, questions), opened without the runtime."""
        if self._rt is not None:
            return self._rt.store
        if self._store is None:
            self._store = Store(self.settings.app_database_url)
        return self._store

    async def submit_and_wait(
        self, request: RunRequest, on_event: Callable[[dict[str, Any]], None] | None = None
    ) -> Outcome:
        """Start a prepared run in this process and wait for its outcome."""
        from dbos import DBOS, SetWorkflowID

        from openlam.runtime.durable import run_workflow

        rt = self.runtime
        listener = _only(request.run_id, on_event) if on_event else None
        if listener:
            rt.listeners.append(listener)
        try:
            with SetWorkflowID(request.run_id):
                handle = await DBOS.start_workflow_async(
                    run_workflow, request.model_dump(mode="json")
                )
            return Outcome.model_validate(await handle.get_result())
        finally:
            if listener:
                rt.listeners.remove(listener)

    def run_sync(self, goal: str, **options: Any) -> Outcome:
        return asyncio.run(self.run(goal, **options))

    async def wait(self, run_id: str) -> Outcome:
        """Wait for a run already started (e.g. one being recovered after a crash)."""
        from dbos import DBOS

        handle = await DBOS.retrieve_workflow_async(run_id)
        return Outcome.model_validate(await handle.get_result())

    async def resume(self, run_id: str) -> Outcome:
        """Finish an interrupted run from its last finished step.

        A run that a live process is executing is refused: resuming it here would run its
        in-flight step a second time."""
        from dbos import DBOS

        rt = self.runtime
        status = await DBOS.get_workflow_status_async(run_id)
        if status is None:
            raise UserError(f"no run {run_id}", "list runs with `openlam runs list`")
        if status.status == "PENDING" and status.executor_id != rt.executor_id:
            owner = rt.executors.get(status.executor_id or "")
            if owner is not None and not rt.executors.is_dead(owner):
                raise UserError(
                    f"run {run_id} is being executed by a live OpenLAM process ({owner.kind}, "
                    f"pid {owner.pid} on {owner.host})",
                    "wait for it to finish (`openlam runs show` shows its progress), or stop "
                    "that process; its runs are then resumed without repeating a step",
                )
            await asyncio.to_thread(process.recover_dead, rt)
        if status.status in ("PENDING", "ENQUEUED", "SUCCESS"):
            return await self.wait(run_id)
        handle = await DBOS.resume_workflow_async(run_id)
        return Outcome.model_validate(await handle.get_result())

    async def finish_adopted(self, run_id: str, poll: float = 0.2) -> str:
        """Wait for a run taken over from a dead process while it makes progress; stop
        waiting once it waits for a person (it waits as well without this process).
        Returns its final status, or where it stands."""
        from dbos import DBOS

        rt = self.runtime
        while True:
            status = await DBOS.get_workflow_status_async(run_id)
            if status is None or status.status not in ("PENDING", "ENQUEUED"):
                stored = await asyncio.to_thread(rt.store.get_run, run_id)
                return stored["status"] if stored else "unknown"
            if status.status == "PENDING" and status.executor_id != rt.executor_id:
                return "being resumed by another OpenLAM process"
            if run_id in rt.waiting:
                return "waiting for a person (it continues when they decide)"
            await asyncio.sleep(poll)

    def answer(self, run_id: str, step_id: str, text: str, by: str = "api") -> None:
        """Answer a question a run asked (``ask_human`` / ``human.ask``); it continues."""
        from openlam.runtime.human import answer

        answer(self.settings, run_id, step_id, text, by)

    def interrupted_runs(self) -> list[str]:
        """Runs left unfinished by dead processes, handed back to the queue at start (this
        process or another live one resumes them)."""
        return list(self.runtime.recovering)

    async def adopted_runs(self, own: set[str]) -> list[str]:
        """Runs this process is executing besides ``own``: ones it took over from dead
        processes. Those waiting for a person are left out (they wait as well after this
        process stops, and another process resumes them)."""
        from dbos import DBOS

        rt = self.runtime
        mine = await DBOS.list_workflows_async(
            status="PENDING", executor_id=rt.executor_id, load_input=False, load_output=False
        )
        return [
            w.workflow_id
            for w in mine
            if w.workflow_id not in own
            and not any(w.workflow_id.startswith(o + ".") for o in own)
            and w.workflow_id not in rt.waiting
        ]


def _model_spec(model: Any) -> str | None:
    """A model spec for a spec or a pydantic-ai ``Model`` object (registered by name)."""
    if model is None or isinstance(model, str):
        return model
    from pydantic_ai.models import Model

    from openlam.models import register_model

    if not isinstance(model, Model):
        raise UserError(
            f"model {model!r} is neither a spec nor a pydantic-ai Model",
            'give e.g. model="openai:gpt-4.1-mini" or model="ollama:qwen3"',
        )
    name = f"python:{model.model_name}-{id(model):x}"
    register_model(name, model)
    return name


def _model_server(
    settings: Settings, spec: str | None, base_url: str | None, api_key: str | None
) -> Settings:
    """The settings with the model's server address and key set (by its provider)."""
    provider = (spec or "").partition(":")[0]
    if provider not in ("openai", "ollama"):
        raise UserError(
            f"base_url and api_key need an openai: or ollama: model, not {spec or 'none'}",
            'e.g. Workforce(model="openai:NAME", base_url="http://127.0.0.1:8000/v1", api_key=...)',
        )
    if base_url and not base_url.startswith(("http://", "https://")):
        raise UserError(
            f"base_url {base_url!r} is not an http(s) URL",
            'e.g. base_url="http://127.0.0.1:8000/v1"',
        )
    if provider == "ollama":
        if api_key:
            raise UserError("an Ollama server takes no api_key", "drop api_key")
        return settings.with_overrides(ollama_url=base_url)
    return settings.with_overrides(openai_base_url=base_url, openai_api_key=api_key)


def seconds(value: float | str) -> float:
    """A duration: a number of seconds, or text like "90s", "10m", "2h", "1d"."""
    from openlam.governance.policy import parse_duration

    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    parsed = parse_duration(str(value).strip()) if isinstance(value, str) else None
    if not parsed or parsed <= 0:
        raise UserError(f"{value!r} is not a duration", 'use e.g. "90s", "10m", "2h" or "1d"')
    return parsed


async def submit_goal(rt: process.Runtime, goal: str, **options: Any) -> bool:
    """Prepare ``goal`` over this process's runtime (``options`` as for
    :meth:`Workforce.prepare`) and queue it; False if its run exists already. The
    runtime is given it at start: a schedule's firing submits its goal through it."""
    wf = Workforce.attached(rt)
    return await wf.enqueue(await wf.prepare(goal, **options))


def new_run_id() -> str:
    return f"run-{uuid.uuid4().hex[:12]}"


def _only(run_id: str, callback: Callable[[dict[str, Any]], None]):
    def listener(event: dict[str, Any]) -> None:
        if event.get("run_id") == run_id or event.get("root_id") == run_id:
            callback(event)

    return listener
