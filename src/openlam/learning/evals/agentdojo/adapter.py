"""AgentDojo tools as OpenLAM actions, with a risk tier from one general rule.

The rule looks only at a function's name and parameter names — the same signal an MCP
server or an OpenAPI spec without annotations gives — and knows nothing about any
particular AgentDojo task:

1. **destructive** — the name's verb deletes (``delete``, ``remove``, ``cancel``,
   ``erase``, ``drop``, ``purge``, ``revoke``), or the function touches credentials
   (``password``, ``credential``, ``secret``, ``token`` in its name or parameters);
2. **read** — the verb only looks (``get``, ``list``, ``search``, ``read``, ``check``,
   ``find``, ``show``, ``view``, ``fetch``) *and* no parameter names an arbitrary host
   (``url``, ``uri``, ``host``, ``endpoint``): fetching a URL of the caller's choice sends
   data to that host, so it is **external** instead;
3. **financial** — a money parameter (``amount``, ``price``, ``iban``, ``payment``,
   ``currency``) or a verb that commits money (``pay``, ``transfer``, ``buy``, ``purchase``,
   ``order``, ``reserve``, ``book``, ``rent``);
4. **external** — a verb that communicates (``send``, ``post``, ``share``, ``invite``,
   ``forward``, ``reply``, ``publish``, ``email``, ``message``, ``notify``) or a parameter
   that addresses people or hosts (``recipient(s)``, ``to``, ``cc``, ``bcc``,
   ``participants``, ``email``, ``user_email``, ``user``, ``url``);
5. otherwise **write**.

Every function with a URL parameter is also marked an *egress* by OpenLAM's own rule for
imported tools (``openlam.actions.risk.takes_url``, what MCP and OpenAPI imports use):
tainted arguments to it, or a plan made after reading, need approval whatever the tier.
``url_reads="read"`` classifies a look verb with a URL as **read** instead of external —
how OpenLAM's own ``http.get`` and ``web.fetch`` are classified — so that only the egress
rule stands between an injection and the attacker's server (the exfiltration variant).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from openlam.actions.registry import ActionRegistry
from openlam.actions.spec import ActionSpec, Risk
from openlam.errors import ActionError

DESTROY = {"delete", "remove", "cancel", "erase", "drop", "purge", "revoke", "destroy"}
LOOK = {"get", "list", "search", "read", "check", "find", "show", "view", "fetch"}
MONEY_PARAMS = {"amount", "price", "iban", "payment", "currency"}
MONEY_VERBS = {"pay", "transfer", "buy", "purchase", "order", "reserve", "book", "rent"}
TALK = {
    "send",
    "post",
    "share",
    "invite",
    "forward",
    "reply",
    "publish",
    "email",
    "message",
    "notify",
}
HOST_PARAMS = {"url", "uri", "host", "endpoint"}
PEOPLE_PARAMS = {
    "recipient",
    "recipients",
    "to",
    "cc",
    "bcc",
    "participants",
    "email",
    "user_email",
    "user",
    *HOST_PARAMS,
}
CREDENTIALS = re.compile(r"password|credential|secret|token")


def classify(name: str, params: list[str], url_reads: str = "external") -> Risk:
    words = name.lower().split("_")
    verb = words[0]
    names = {p.lower() for p in params}
    if (
        verb in DESTROY
        or CREDENTIALS.search(name.lower())
        or any(CREDENTIALS.search(p) for p in names)
    ):
        return Risk.destructive
    if verb in LOOK:
        return Risk.external if names & HOST_PARAMS and url_reads == "external" else Risk.read
    if names & MONEY_PARAMS or verb in MONEY_VERBS:
        return Risk.financial
    if verb in TALK or names & PEOPLE_PARAMS:
        return Risk.external
    return Risk.write


class ToolBridge:
    """Runs AgentDojo functions against the task's environment and records each call."""

    def __init__(self, runtime: Any, env: Any) -> None:
        self.runtime = runtime
        self.env = env
        self.calls: list[tuple[str, dict[str, Any], Any]] = []

    def caller(self, function: str) -> Callable[..., Any]:
        def call(**kwargs: Any) -> Any:
            result, error = self.runtime.run_function(self.env, function, kwargs)
            if error:
                raise ActionError(error)
            self.calls.append((function, dict(kwargs), result))
            return result

        call.__name__ = function
        return call


def registry_for(
    suite_name: str, tools: list[Any], bridge: ToolBridge, url_reads: str = "external"
) -> ActionRegistry:
    from openlam.actions.risk import takes_url

    registry = ActionRegistry()
    for fn in tools:
        schema = fn.parameters.model_json_schema()
        registry.add(
            ActionSpec(
                name=f"{suite_name}.{fn.name}",
                description=fn.description,
                input_schema=schema,
                output_schema={},
                risk=classify(fn.name, list(schema.get("properties", {})), url_reads),
                func=bridge.caller(fn.name),
                args_model=fn.parameters,
                source="agentdojo",
                egress=takes_url(schema),
            )
        )
    return registry
