"""Open Action Protocol: what an action is, and the ``@action`` decorator.

An action's input schema comes from its type hints, its descriptions from its
docstring; arguments are validated by pydantic before the action ever runs.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_type_hints

import docstring_parser
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError, create_model

from openlam.config import Settings
from openlam.errors import UserError


class Risk(StrEnum):
    read = "read"
    write = "write"
    external = "external"
    financial = "financial"
    destructive = "destructive"


def _env_secret(name: str) -> str | None:
    import os

    return os.environ.get(name)


@dataclass
class ActionContext:
    """What an action may know about the run that calls it.

    ``secret(NAME)`` returns a credential (environment first, then the encrypted store)
    or None; ``settings`` is the workspace's :class:`openlam.config.Settings`.
    """

    run_id: str
    step_id: str
    idempotency_key: str
    workspace: Path
    settings: Settings | None = None  # None: the action loads the workspace's own
    secret: Callable[[str], str | None] = _env_secret
    extras: dict[str, Any] = field(default_factory=dict)


Verify = Callable[[dict[str, Any], Any, ActionContext], str | Awaitable[str | None] | None]
"""Checks an action's effect after it ran, asking the peer where it can (a function or a
coroutine function): returns None if verified, else what is wrong."""

FindEffect = Callable[[dict[str, Any], ActionContext], Awaitable[Any]]
"""Has this step's effect already happened? Given the step's arguments and context (the
same ``idempotency_key`` as the attempt that may have delivered it), returns that
attempt's output if the effect is found, else None. The runtime asks before running
again a step that was in flight when its process died."""

_DEFERRED = ("args_model", "input_schema", "output_schema")

Delivery = Literal["idempotent", "keyed", "checked", "at least once"]
"""What a repeated step does at the peer; see :attr:`ActionSpec.delivery`."""


@dataclass
class ActionSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    risk: Risk
    func: Callable[..., Any] | None = None
    idempotent: bool = False
    secrets: tuple[str, ...] = ()
    source: str = "builtin"
    verify: Verify | None = None
    timeout: float | None = None
    args_model: type[BaseModel] | None = None
    wants_context: bool = False
    validator: Callable[[dict[str, Any]], None] | None = None
    """For specs without ``args_model`` (MCP tools, OpenAPI operations): checks the
    arguments against ``input_schema``, raising pydantic's ``ValidationError``; see
    :func:`json_schema_validator`."""
    egress: bool = False
    """The action sends data to a host or recipient the plan chooses (a URL, an address,
    a channel): tainted arguments to it need approval whatever its risk tier."""
    keyed: bool = False
    """The peer deduplicates by the step's idempotency key (Stripe, Mastodon…): a repeat
    of the step returns the first attempt's effect instead of making a second."""
    find_effect: FindEffect | None = None
    """Finds an earlier delivery of the step (see :data:`FindEffect`)."""
    verify_async: Verify | None = field(default=None, repr=False)
    """The coroutine behind ``verify`` when it asks the peer asynchronously."""

    def __post_init__(self) -> None:
        if self.verify is not None and inspect.iscoroutinefunction(self.verify):
            self.verify_async, self.verify = self.verify, _blocking(self.verify)

    def defer_schemas(self, build: Callable[[], dict[str, Any]]) -> None:
        """Build ``args_model``, ``input_schema`` and ``output_schema`` on first access
        (``build`` returns the three): pydantic models and JSON schemas of actions a
        process never calls are not worth their start-up time and memory."""
        for name in _DEFERRED:
            self.__dict__.pop(name, None)
        self.__dict__["_build_schemas"] = build

    def build_schemas(self) -> None:
        """Build deferred schemas now (a plugin's errors surface when it is loaded)."""
        build = self.__dict__.get("_build_schemas")
        if build is not None:
            self.__dict__.update(build())
            self.__dict__.pop("_build_schemas", None)

    def __getattr__(self, name: str) -> Any:  # only for attributes not set: deferred ones
        if name in _DEFERRED and "_build_schemas" in self.__dict__:
            self.build_schemas()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def delivery(self) -> Delivery:
        """What a repeat of a step (a retry, a recovery after a crash) does to the peer:
        ``idempotent`` (harmless), ``keyed`` (the peer deduplicates by the idempotency
        key), ``checked`` (``find_effect`` finds an earlier delivery before repeating),
        else ``at least once`` (the effect may happen twice)."""
        if self.idempotent:
            return "idempotent"
        if self.keyed:
            return "keyed"
        return "checked" if self.find_effect is not None else "at least once"

    async def check_effect(
        self, args: dict[str, Any], output: Any, ctx: ActionContext
    ) -> str | None:
        """Run the effect check (None when there is none or it passed; else the problem),
        awaiting it when it asks the peer asynchronously."""
        if self.verify_async is not None:
            result = self.verify_async(args, output, ctx)
        elif self.verify is not None:
            result = self.verify(args, output, ctx)
        else:
            return None
        return await result if inspect.isawaitable(result) else result

    def validate_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Return the arguments coerced to the schema; raises ``ValidationError``."""
        if self.args_model is None:
            if self.validator is not None:
                self.validator(args)
            return dict(args)
        return self.args_model.model_validate(args).model_dump(exclude_unset=True)

    def arg_errors(self, args: dict[str, Any]) -> list[str]:
        try:
            self.validate_args(args)
        except ValidationError as exc:
            return [_describe(err) for err in exc.errors()]
        return []

    async def call(self, ctx: ActionContext, args: dict[str, Any]) -> Any:
        if self.func is None:
            raise UserError(f"action {self.name} has no implementation")
        kwargs = self.validate_args(args)
        if self.wants_context:
            kwargs["ctx"] = ctx
        if inspect.iscoroutinefunction(self.func):
            return await self.func(**kwargs)
        from openlam.actions.threads import in_action_thread

        return await in_action_thread(self.func, **kwargs)

    def signature(self) -> str:
        """A compact one-line form for prompts: ``name(a: str, b?: int) -> {x, y}: what``
        (made once: every planning prompt lists it)."""
        made = self.__dict__.get("_signature")
        if made is None or made[0] != (self.name, self.description):
            made = ((self.name, self.description), self._signature())
            self.__dict__["_signature"] = made
        return made[1]

    def _signature(self) -> str:
        # An MCP server or a spec may send any JSON as a schema: what is not the expected
        # shape shows as ``any`` rather than failing every planning prompt that lists it.
        props = _mapping(_mapping(self.input_schema).get("properties"))
        required = _names(_mapping(self.input_schema).get("required"))
        params = ", ".join(
            f"{n}{'' if n in required else '?'}: {_type_name(p)}" for n, p in props.items()
        )
        out = list(_mapping(_mapping(self.output_schema).get("properties")))
        fields = ", ".join(map(str, out[:6])) + (", …" if len(out) > 6 else "")
        returns = " -> {" + fields + "}" if out else ""
        return f"{self.name}({params}){returns}: {self.summary}"

    @property
    def summary(self) -> str:
        """The description's first sentence (at most MAX_SUMMARY characters)."""
        return _first_sentence(self.description)


# Every planning prompt lists it: an MCP server's 1 MB description must not be. Room for an
# OpenAPI operation's, which carries its arguments' details (schema_text: ≤ 600 + ≤ 540).
MAX_SUMMARY = 1200


@lru_cache(maxsize=4096)  # every run ranks every action by its summary
def _first_sentence(text: str) -> str:
    first = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return first if len(first) <= MAX_SUMMARY else first[: MAX_SUMMARY - 1] + "…"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> set[str]:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else set()


# A field's default lives on the class too (ActionSpec.args_model is None), where it would
# answer for a deferred attribute before __getattr__ is asked: the instance's own value
# (set by __init__, or built on first use) is the only one.
for _name in _DEFERRED:
    if _name in ActionSpec.__dict__:
        delattr(ActionSpec, _name)


def _blocking(check: Callable[..., Coroutine[Any, Any, str | None]]) -> Verify:
    """A synchronous face for an asynchronous effect check, for callers that do not await
    (:meth:`ActionSpec.check_effect` awaits the coroutine itself): it runs on its own
    event loop in a worker thread while the caller waits."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    def verify(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
        with ThreadPoolExecutor(1, thread_name_prefix="openlam-verify") as pool:
            return pool.submit(asyncio.run, check(args, output, ctx)).result()

    return verify


def action(
    name: str,
    *,
    risk: Risk | str = Risk.read,
    idempotent: bool = False,
    secrets: tuple[str, ...] = (),
    verify: Verify | None = None,
    timeout: float | None = None,
    egress: bool = False,
    keyed: bool = False,
    find_effect: FindEffect | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a function as an OpenLAM action.

    A parameter named ``ctx`` receives the :class:`ActionContext`; every other parameter
    is an argument the planner supplies, typed by its annotation. ``egress``, ``keyed``
    and ``find_effect`` are described on :class:`ActionSpec`.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        func.__openlam_action__ = spec_from_function(  # type: ignore[attr-defined]
            func,
            name,
            risk=Risk(risk),
            idempotent=idempotent,
            secrets=secrets,
            verify=verify,
            timeout=timeout,
            egress=egress,
            keyed=keyed,
            find_effect=find_effect,
        )
        return func

    return decorate


def spec_from_function(
    func: Callable[..., Any] | Callable[..., Awaitable[Any]],
    name: str,
    *,
    risk: Risk,
    idempotent: bool = False,
    secrets: tuple[str, ...] = (),
    verify: Verify | None = None,
    timeout: float | None = None,
    source: str = "builtin",
    egress: bool = False,
    keyed: bool = False,
    find_effect: FindEffect | None = None,
) -> ActionSpec:
    """The spec of a Python function. Its pydantic argument model and JSON schemas are
    built on first use (:meth:`ActionSpec.build_schemas`): a process that loads every
    installed action but calls few — ``openlam run`` — does not pay for the rest."""
    doc = docstring_parser.parse(inspect.getdoc(func) or "")
    wants_context = "ctx" in inspect.signature(func).parameters
    description = " ".join(filter(None, [doc.short_description, doc.long_description]))
    spec = ActionSpec(
        name=name,
        description=description.strip() or name,
        input_schema={},
        output_schema={},
        risk=risk,
        func=func,
        idempotent=idempotent,
        secrets=secrets,
        source=source,
        verify=verify,
        timeout=timeout,
        wants_context=wants_context,
        egress=egress,
        keyed=keyed,
        find_effect=find_effect,
    )
    spec.defer_schemas(lambda: _function_schemas(func, name, doc))
    return spec


def _function_schemas(
    func: Callable[..., Any], name: str, doc: docstring_parser.Docstring
) -> dict[str, Any]:
    """``args_model``, ``input_schema`` and ``output_schema`` from the type hints."""
    param_docs = {p.arg_name: p.description or "" for p in doc.params}
    hints = get_type_hints(func)
    fields: dict[str, Any] = {}
    for pname, param in inspect.signature(func).parameters.items():
        if pname == "ctx":
            continue
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        from pydantic import Field

        fields[pname] = (annotation, Field(default, description=param_docs.get(pname) or None))
    model = create_model(  # type: ignore[call-overload]
        f"{name.replace('.', '_')}_args", __config__=ConfigDict(extra="forbid"), **fields
    )
    output_schema: dict[str, Any] = {}
    if "return" in hints and hints["return"] is not None:
        try:
            # ``-> Json[Order]``: the function returns JSON text; the schema is Order's
            # (references reach into the text, see openlam.loop.references).
            output_schema = TypeAdapter(hints["return"]).json_schema(
                mode="serialization" if _is_json_text(hints["return"]) else "validation"
            )
        except Exception as exc:
            raise UserError(
                f"action {name}: its return type has no JSON schema ({exc})",
                "return a TypedDict (typing_extensions), a pydantic model, or plain JSON types",
            ) from None
    return {
        "args_model": model,
        "input_schema": model.model_json_schema(),
        "output_schema": output_schema,
    }


def _is_json_text(annotation: Any) -> bool:
    """Whether a return annotation is pydantic's ``Json[T]`` (``Annotated[T, Json]``)."""
    from typing import Annotated, get_args, get_origin

    from pydantic import types as pydantic_types

    marker: Any = pydantic_types.Json  # Json[T] is Annotated[T, Json()]
    return get_origin(annotation) is Annotated and any(
        isinstance(m, marker) for m in get_args(annotation)[1:]
    )


def json_schema_validator(
    schema: dict[str, Any], title: str = "arguments"
) -> Callable[[dict[str, Any]], None]:
    """A validator for :attr:`ActionSpec.validator` checking arguments against a JSON
    schema (the draft named by its ``$schema``, else 2020-12).

    Violations are raised as pydantic's ``ValidationError`` so that plan validation and
    the act phase report them like any other argument error. A schema that is not valid
    JSON Schema checks nothing (the action's owner validates then). The schema is checked
    at the first validation, not before: an API of hundreds of operations, most never
    called, took tens of seconds to check at every start.
    """
    checker: Any = None  # built at the first call; False when the schema is not JSON Schema

    def validate(args: dict[str, Any]) -> None:
        nonlocal checker
        if checker is None:
            checker = _checker_for(schema)
        if checker is False:
            return
        errors = list(checker.iter_errors(args))
        if errors:
            from pydantic_core import InitErrorDetails, PydanticCustomError

            details: list[InitErrorDetails] = []
            for err in errors:
                loc: tuple[str | int, ...] = tuple(err.absolute_path)
                if err.validator in ("required", "additionalProperties") and isinstance(
                    err.instance, dict
                ):
                    loc += tuple(_offending_keys(err))[:1]
                details.append(
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "json_schema", "{reason}", {"reason": err.message}
                        ),
                        loc=loc,
                        input=err.instance,
                    )
                )
            raise ValidationError.from_exception_data(title, details)

    return validate


def _checker_for(schema: dict[str, Any]) -> Any:
    """A jsonschema validator for ``schema``, or False when it is not valid JSON Schema."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    if not isinstance(schema, dict | bool):
        return False
    cls = validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError:
        return False
    return cls(schema)


def _offending_keys(err: Any) -> list[str]:
    if err.validator == "required":
        return [k for k in err.validator_value if k not in err.instance]
    allowed = set(err.schema.get("properties", {}))
    return [k for k in err.instance if k not in allowed]


def _type_name(prop: Any, depth: int = 0) -> str:
    """An argument's short type for :meth:`ActionSpec.signature` (``str``, ``list[int]``)."""
    from openlam.actions.schema_text import MAX_DEPTH, MAX_ENUM, SCALARS

    if not isinstance(prop, dict) or depth > MAX_DEPTH:
        return "any"
    if "type" in prop:
        kind = prop["type"]
        if kind == "array" and "items" in prop:
            return f"list[{_type_name(prop['items'], depth + 1)}]"
        return SCALARS.get(kind, kind) if isinstance(kind, str) else "any"
    if isinstance(prop.get("anyOf"), list):
        return " | ".join(_type_name(p, depth + 1) for p in prop["anyOf"][:MAX_ENUM])
    if isinstance(prop.get("enum"), list):
        values = prop["enum"]
        return "|".join(map(str, values[:MAX_ENUM])) + ("|…" if len(values) > MAX_ENUM else "")
    return "any"


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
    return f"{where}: {err.get('msg', 'invalid')}"
