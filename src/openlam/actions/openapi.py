"""OpenAPI 3 services as a source of actions: every operation of a configured service
is an action ``SERVICE.operation``.

Where things live (inside the workspace's state directory, ``.openlam/``):

* ``openapi.json`` — the configured services, written by ``openlam openapi add|rm``::

      {"services": {"crm": {"spec": "https://…/openapi.json", "base_url": "https://…",
                            "auth": "bearer:CRM_TOKEN", "risk": {"delete_note": "write"},
                            "timeout": 30}}}

  ``auth`` names secrets, never values: ``bearer:SECRET``, ``header:X-API-Key:SECRET``,
  ``basic:USER_SECRET:PASSWORD_SECRET`` or ``query:api_key:SECRET``. The values are read
  through ``ActionContext.secret`` when an operation is called.
* ``cache/openapi/NAME.json`` — the operations compiled from the spec when it was added
  (or refreshed with ``openlam openapi refresh``), so loading the registry neither
  fetches nor parses the spec.

An operation's name is its ``operationId`` in snake_case, or ``method_path`` when it has
none. Its input schema holds the path, query, header and cookie parameters by name and
the request body as ``body``, every ``$ref`` resolved. Risk comes from the method — GET,
HEAD, OPTIONS read; POST, PUT, PATCH write; DELETE destructive — unless the service's
``risk`` map names the operation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin

from openlam.actions.sources import Sources
from openlam.actions.spec import ActionContext, ActionSpec, Risk, json_schema_validator
from openlam.errors import ActionError, UserError

COMPILED_FORMAT = 1
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 5.0
MAX_RESPONSE_BYTES = 10_000_000
SPEC_FETCH_TIMEOUT = 30.0
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
METHOD_RISK = {"get": Risk.read, "head": Risk.read, "options": Risk.read, "trace": Risk.read,
               "post": Risk.write, "put": Risk.write, "patch": Risk.write,
               "delete": Risk.destructive}
IDEMPOTENT_METHODS = frozenset({"get", "head", "options", "trace", "put", "delete"})
SECRET_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
log = logging.getLogger(__name__)


# ----------------------------------------------------------------------- configuration


@dataclass
class ServiceConfig:
    name: str
    spec: str
    base_url: str | None = None
    auth: str | None = None
    risk: dict[str, str] = field(default_factory=dict)
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        parse_auth(self.auth)
        for op, tier in self.risk.items():
            if tier not in Risk.__members__:
                raise UserError(f"OpenAPI service {self.name}: operation {op} has unknown risk "
                                f"{tier!r}", f"use one of {', '.join(Risk.__members__)}")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise UserError(f"OpenAPI service {self.name}: base URL {self.base_url!r} is not "
                            "an http(s) URL", "e.g. --base-url https://api.example.com/v1")

    def describe(self) -> str:
        return self.spec

    @property
    def secrets(self) -> tuple[str, ...]:
        auth = parse_auth(self.auth)
        return tuple(v for k, v in (auth or {}).items() if k.endswith("secret"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("name")
        defaults = ServiceConfig(name=self.name, spec=self.spec)
        return {k: v for k, v in data.items() if k == "spec" or v != getattr(defaults, k)}


def parse_auth(text: str | None) -> dict[str, str] | None:
    """``bearer:S`` | ``header:NAME:S`` | ``basic:USER_S:PASS_S`` | ``query:PARAM:S``."""
    if not text:
        return None
    parts = text.split(":")
    kind = parts[0].lower()
    shapes = {"bearer": ["secret"], "header": ["header", "secret"],
              "basic": ["user_secret", "password_secret"], "query": ["param", "secret"]}
    if kind not in shapes or len(parts) - 1 != len(shapes[kind]) or not all(parts[1:]):
        raise UserError(f"auth {text!r} is not understood",
                        "use bearer:SECRET_NAME, header:X-API-Key:SECRET_NAME, "
                        "basic:USER_SECRET:PASSWORD_SECRET or query:api_key:SECRET_NAME "
                        "(names of secrets, never the values)")
    auth = {"kind": kind, **dict(zip(shapes[kind], parts[1:], strict=True))}
    for key, value in auth.items():
        if key.endswith("secret") and not SECRET_PATTERN.match(value):
            raise UserError(f"auth {text!r}: {value!r} is not a secret name",
                            "name the secret (e.g. CRM_TOKEN) and store its value with "
                            "`openlam secrets set CRM_TOKEN`")
    return auth


SERVICES = Sources("openapi", ServiceConfig, key="services", what="OpenAPI service",
                   member="operation", refresh="refresh", indent=1,
                   valid=lambda compiled: compiled.get("format") == COMPILED_FORMAT
                   and isinstance(compiled.get("operations"), list))
"""``.openlam/openapi.json`` and the operations compiled into ``.openlam/cache/openapi/``."""
read_compiled = SERVICES.read_cache


def load_services(settings: Any) -> dict[str, ServiceConfig]:
    return SERVICES.load(settings)


def save_service(settings: Any, service: ServiceConfig, compiled: dict[str, Any]) -> None:
    SERVICES.write_cache(settings, service.name, compiled)
    SERVICES.save(settings, service.name, service.to_dict())


# ---------------------------------------------------------------------- reading a spec


def load_document(source: str, base_dir: Path | None = None) -> tuple[dict[str, Any], str | None]:
    """The spec at ``source`` (a file or an http(s) URL) and its URL, if it came from one."""
    if source.startswith(("http://", "https://")):
        import httpx

        try:
            response = httpx.get(source, timeout=httpx.Timeout(SPEC_FETCH_TIMEOUT,
                                                               connect=CONNECT_TIMEOUT),
                                 follow_redirects=True)
        except httpx.HTTPError as exc:
            raise UserError(f"cannot fetch the spec {source}: {exc or type(exc).__name__}",
                            "check the URL and that the service is running") from None
        if response.status_code >= 400:
            raise UserError(f"fetching the spec {source} answered HTTP {response.status_code}",
                            "check the URL") from None
        return _parse_document(response.text, source), str(response.url)
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise UserError(f"no spec file {path}", "give the path of an OpenAPI 3 JSON or YAML "
                        "file, or an http(s) URL")
    return _parse_document(path.read_text(encoding="utf-8"), str(path)), None


def _parse_document(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UserError(f"{where} is neither JSON nor YAML: {exc}",
                            "give an OpenAPI 3 document") from None
    if not isinstance(data, dict):
        raise UserError(f"{where} is not an OpenAPI document (not a JSON/YAML object)",
                        "give an OpenAPI 3 document")
    return data


class _Resolver:
    """Inlines local ``$ref``s (``#/components/…``); a reference to itself becomes an
    unconstrained schema noting the recursion."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.nullable_style = str(doc.get("openapi", "")).startswith("3.0")
        self.memo: dict[str, Any] = {}  # each reference is expanded once, then shared

    def target(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise UserError(f"{where}: external $ref {ref!r} is not supported",
                            "bundle the spec into one file (e.g. with `redocly bundle`)")
        node: Any = self.doc
        for raw in ref[1:].split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise UserError(f"{where}: $ref {ref!r} points to nothing in the spec",
                                "fix the reference or add what it names")
        return node

    def resolve(self, node: Any, where: str, seen: tuple[str, ...] = ()) -> Any:
        if isinstance(node, list):
            return [self.resolve(v, where, seen) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str):
            if ref in seen:
                return {"description": f"(recursive: {ref.rsplit('/', 1)[-1]})"}
            if ref not in self.memo:
                self.memo[ref] = self.resolve(self.target(ref, where), where, (*seen, ref))
            resolved = self.memo[ref]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(resolved, dict):
                resolved = {**resolved, **self.resolve(siblings, where, seen)}
            return resolved
        out = {k: self.resolve(v, where, seen) for k, v in node.items()}
        return self.normalize(out)

    def normalize(self, schema: dict[str, Any]) -> dict[str, Any]:
        """OpenAPI 3.0 schema dialect → JSON Schema: ``nullable``, boolean exclusive bounds."""
        if not self.nullable_style:
            return schema
        if schema.pop("nullable", False) is True:
            kind = schema.get("type")
            if isinstance(kind, str):
                schema["type"] = [kind, "null"]
            elif "enum" in schema and None not in schema["enum"]:
                schema["enum"] = [*schema["enum"], None]
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(schema.get(bound), bool) and schema.pop(bound) and limit in schema:
                schema[bound] = schema.pop(limit)
        return schema


def compile_spec(doc: dict[str, Any], spec_url: str | None = None) -> dict[str, Any]:
    """The operations of an OpenAPI 3 document, ready to become actions. Raises
    ``UserError`` naming what is wrong with an invalid spec."""
    version = doc.get("openapi")
    if version is None and "swagger" in doc:
        raise UserError(f"this is a Swagger {doc['swagger']} document; OpenLAM reads OpenAPI 3",
                        "convert it to OpenAPI 3 (e.g. with swagger2openapi)")
    if not isinstance(version, str) or not version.startswith("3."):
        raise UserError(f"not an OpenAPI 3 document (its \"openapi\" field is {version!r})",
                        "give an OpenAPI 3.0 or 3.1 document")
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise UserError("the spec has no paths: it describes no operations",
                        "check that this is the API's full OpenAPI document")
    resolver = _Resolver(doc)
    operations: list[dict[str, Any]] = []
    used: set[str] = set()
    for path, item in paths.items():
        if not isinstance(path, str) or not path.startswith("/"):
            raise UserError(f"path {path!r} does not start with /", "fix the spec's paths")
        item = resolver.resolve(item, f"paths.{path}")
        if not isinstance(item, dict):
            raise UserError(f"paths.{path} is not an object", "fix the spec")
        shared = item.get("parameters") or []
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = f"{method.upper()} {path}"
            if not isinstance(op, dict):
                raise UserError(f"{where} is not an object", "fix the spec")
            operations.append(_operation(method, path, op, shared, where, used))
    if not operations:
        raise UserError("the spec's paths hold no operations", "check the spec")
    info = doc.get("info")
    info = info if isinstance(info, dict) else {}
    return {"format": COMPILED_FORMAT, "title": info.get("title"), "version": info.get("version"),
            "base_url": _server_url(doc, spec_url), "operations": operations}


def _operation(method: str, path: str, op: dict[str, Any], shared: list[Any], where: str,
               used: set[str]) -> dict[str, Any]:
    op_id = op.get("operationId")
    base = snake(op_id) if isinstance(op_id, str) and snake(op_id) else \
        snake(f"{method}_{path}") or method
    name, n = base, 2
    while name in used:
        name, n = f"{base}_{n}", n + 1
    used.add(name)

    params: list[dict[str, Any]] = []
    props: dict[str, Any] = {}
    required: list[str] = []
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for param in [*shared, *(op.get("parameters") or [])]:
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            raise UserError(f"{where}: a parameter lacks \"name\" or \"in\"", "fix the spec")
        merged[(param["in"], param["name"])] = param
    for (location, pname), param in merged.items():
        if location not in ("path", "query", "header", "cookie"):
            raise UserError(f"{where}: parameter {pname} is in {location!r}",
                            "parameters are in path, query, header or cookie")
        schema = param.get("schema")
        if schema is None and isinstance(param.get("content"), dict):
            schema = next(iter(param["content"].values()), {}).get("schema")
        schema = dict(schema or {})
        if param.get("description") and "description" not in schema:
            schema["description"] = param["description"]
        arg = pname if pname not in props else f"{location}_{pname}"
        props[arg] = schema
        if param.get("required") or location == "path":
            required.append(arg)
        params.append({"arg": arg, "name": pname, "in": location,
                       "style": param.get("style"), "explode": param.get("explode")})
    for segment in re.findall(r"{([^}]+)}", path):
        if ("path", segment) not in merged:
            raise UserError(f"{where}: path parameter {{{segment}}} is not declared",
                            "declare it under the operation's parameters (in: path)")

    body = None
    request_body = op.get("requestBody")
    if isinstance(request_body, dict):
        content = request_body.get("content") or {}
        media = _pick_media(content)
        if media is not None:
            arg = "body" if "body" not in props else "request_body"
            schema = dict((content[media] or {}).get("schema") or {})
            if request_body.get("description") and "description" not in schema:
                schema["description"] = request_body["description"]
            props[arg] = schema
            if request_body.get("required"):
                required.append(arg)
            body = {"arg": arg, "content_type": media}

    input_schema: dict[str, Any] = {"type": "object", "properties": props,
                                    "additionalProperties": False}
    if required:
        input_schema["required"] = required
    summary = " ".join(str(op.get("summary") or "").split())
    detail = " ".join(str(op.get("description") or "").split())
    description = summary or detail[:300] or f"{method.upper()} {path}"
    if summary and detail and detail != summary:
        description += f" — {detail[:240]}"
    return {"action": name, "operation_id": op_id, "method": method.upper(), "path": path,
            "description": description, "params": params, "body": body,
            "input_schema": input_schema, "output_schema": _output_schema(op),
            "risk": METHOD_RISK[method].value, "deprecated": bool(op.get("deprecated"))}


def _pick_media(content: dict[str, Any]) -> str | None:
    kinds = list(content)
    for test in (lambda k: k == "application/json", lambda k: k.endswith("+json"),
                 lambda k: k == "application/x-www-form-urlencoded",
                 lambda k: k == "multipart/form-data", lambda k: k.startswith("text/"),
                 lambda k: True):
        for kind in kinds:
            if test(kind):
                return kind
    return None


def _output_schema(op: dict[str, Any]) -> dict[str, Any]:
    responses = op.get("responses") or {}
    for code in ("200", "201", "202", "203", "2XX", "default"):
        response = responses.get(code)
        if isinstance(response, dict):
            content = response.get("content") or {}
            for kind, media in content.items():
                if "json" in kind and isinstance(media, dict):
                    return media.get("schema") or {}
            return {}
    return {}


def _server_url(doc: dict[str, Any], spec_url: str | None) -> str | None:
    servers = doc.get("servers") or []
    url = None
    if servers and isinstance(servers[0], dict) and isinstance(servers[0].get("url"), str):
        url = servers[0]["url"]
        for var, spec in (servers[0].get("variables") or {}).items():
            url = url.replace(f"{{{var}}}", str((spec or {}).get("default", "")))
    if url and url.startswith(("http://", "https://")):
        return url
    if spec_url:
        return urljoin(spec_url, url or "/")
    return None


def snake(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def prepare(service: ServiceConfig, base_dir: Path | None = None) -> dict[str, Any]:
    """Read and compile a service's spec (for ``openapi add`` / ``refresh``)."""
    doc, url = load_document(service.spec, base_dir)
    try:
        compiled = compile_spec(doc, url)
    except UserError as exc:
        raise UserError(f"invalid OpenAPI spec {service.spec}: {exc.args[0]}", exc.hint) from None
    known = {op["action"] for op in compiled["operations"]} | \
        {op["operation_id"] for op in compiled["operations"] if op["operation_id"]}
    unknown = sorted(set(service.risk) - known)
    if unknown:
        raise UserError(f"risk overrides name unknown operations: {', '.join(unknown)}",
                        "use the operation names shown by `openlam actions list --source "
                        f"openapi:{service.name}`")
    if not (service.base_url or compiled["base_url"]):
        raise UserError(f"the spec {service.spec} names no server URL",
                        "pass --base-url, e.g. --base-url http://127.0.0.1:8000")
    return compiled


# -------------------------------------------------------------- operations → actions


def operation_specs(service: ServiceConfig, compiled: dict[str, Any]) -> list[ActionSpec]:
    specs = []
    base_url = service.base_url or compiled.get("base_url")
    for op in compiled["operations"]:
        tier = service.risk.get(op["action"]) or service.risk.get(op.get("operation_id") or "") \
            or op["risk"]
        name = f"{service.name}.{op['action']}"
        specs.append(ActionSpec(
            name=name,
            description=op["description"] + (" (deprecated)" if op.get("deprecated") else ""),
            input_schema=op["input_schema"],
            output_schema=op["output_schema"],
            risk=Risk(tier),
            func=_operation_caller(service, op, base_url),
            idempotent=op["method"].lower() in IDEMPOTENT_METHODS,
            secrets=service.secrets,
            source=f"openapi:{service.name}",
            wants_context=True,
            validator=json_schema_validator(op["input_schema"], title=name),
        ))
    return specs


def _operation_caller(service: ServiceConfig, op: dict[str, Any], base_url: str | None
                      ) -> Callable[..., Any]:
    async def call(ctx: ActionContext, **arguments: Any) -> Any:
        return await call_operation(service, op, arguments, base_url=base_url,
                                    secret=ctx.secret, idempotency_key=ctx.idempotency_key)

    call.__name__ = f"openapi_{service.name}_{op['action']}"
    return call


def register(registry: Any, settings: Any = None) -> None:
    """Entry point ``openlam.plugins: openapi``: the compiled operations of every service."""
    SERVICES.register(registry, settings,
                      lambda _settings, service, compiled: operation_specs(service, compiled))


# ------------------------------------------------------------------------------ calls

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def _client() -> Any:
    import httpx

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient(follow_redirects=True, max_redirects=5)
    return client


async def aclose_all() -> None:
    """Close this event loop's HTTP connections to OpenAPI services."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


close_all = aclose_all
"""Plugin lifecycle hook (called by the runtime at shutdown)."""


async def call_operation(service: ServiceConfig, op: dict[str, Any], args: dict[str, Any], *,
                         base_url: str | None, secret: Callable[[str], str | None],
                         idempotency_key: str | None = None) -> Any:
    import httpx

    from openlam.actions import httpkit  # imports httpx: only when a service is called

    what = f"{service.name}.{op['action']} ({op['method']} {op['path']})"
    if not base_url:
        raise ActionError(f"{what}: the service has no base URL; add it again with --base-url")
    path = op["path"]
    query: list[tuple[str, str]] = []
    headers: dict[str, str] = {"Accept": "application/json"}
    cookies: dict[str, str] = {}
    for param in op["params"]:
        if param["arg"] not in args or args[param["arg"]] is None:
            continue
        value = args[param["arg"]]
        if param["in"] == "path":
            path = path.replace(f"{{{param['name']}}}", quote(_scalar(value), safe=""))
        elif param["in"] == "query":
            query += _query_pairs(param, value)
        elif param["in"] == "header":
            headers[param["name"]] = _scalar(value)
        else:
            cookies[param["name"]] = _scalar(value)
    request: dict[str, Any] = {}
    body = op.get("body")
    if body and body["arg"] in args:
        value, kind = args[body["arg"]], body["content_type"]
        if "json" in kind:
            request["json"] = value
        elif kind in ("application/x-www-form-urlencoded", "multipart/form-data") \
                and isinstance(value, dict):
            request["data"] = {k: _scalar(v) for k, v in value.items()}
        else:
            request["content"] = value if isinstance(value, str) else json.dumps(value)
            headers["Content-Type"] = kind
    secret_values = _apply_auth(service, headers, query, request, secret, what)
    idempotent = op["method"].lower() in IDEMPOTENT_METHODS
    if not idempotent and idempotency_key:
        headers.setdefault("Idempotency-Key", idempotency_key)
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    url = base_url.rstrip("/") + path
    timeout = httpx.Timeout(service.timeout, connect=min(CONNECT_TIMEOUT, service.timeout))
    try:
        async with asyncio.timeout(service.timeout):
            async with _client().stream(op["method"], url, params=query, headers=headers,
                                        timeout=timeout, **request) as response:
                data = await httpkit.read_body(response, max_bytes=service.max_bytes,
                                               what=what)
    except (TimeoutError, httpx.TimeoutException):
        raise httpkit.after_sending(f"{what} did not answer within {service.timeout:g}s",
                                    idempotent) from None
    except httpx.ConnectError as exc:
        raise ActionError(f"cannot reach {service.name} at {base_url}: "
                          f"{httpkit.scrub(str(exc), secret_values) or 'connection failed'}",
                          transient=True) from None
    except httpx.HTTPError as exc:
        raise httpkit.after_sending(f"{what} failed: {httpkit.scrub(str(exc), secret_values)}",
                                    idempotent) from None
    status = response.status_code
    content_type = response.headers.get("content-type", "")
    if status >= 400 or status < 200:
        message = httpkit.scrub(_error_message(data, response.encoding), secret_values)
        raise httpkit.status_error(what, status, message, secrets=service.secrets)
    if not data:
        return {"status": status}
    if "json" in content_type or content_type == "":
        try:
            return json.loads(data)
        except ValueError:
            if "json" in content_type:
                raise ActionError(f"{what} answered with invalid JSON") from None
    return {"status": status, "content_type": content_type,
            "text": data.decode(response.encoding or "utf-8", errors="replace")}


def _apply_auth(service: ServiceConfig, headers: dict[str, str], query: list[tuple[str, str]],
                request: dict[str, Any], secret: Callable[[str], str | None], what: str
                ) -> list[str]:
    auth = parse_auth(service.auth)
    if auth is None:
        return []

    def need(name: str) -> str:
        value = secret(name)
        if not value:
            raise ActionError(f"{what}: the secret {name} is not set (set it with `openlam "
                              f"secrets set {name}` or the environment variable {name})")
        return value

    kind = auth["kind"]
    if kind == "bearer":
        value = need(auth["secret"])
        headers["Authorization"] = f"Bearer {value}"
        return [value]
    if kind == "header":
        value = need(auth["secret"])
        headers[auth["header"]] = value
        return [value]
    if kind == "query":
        value = need(auth["secret"])
        query.append((auth["param"], value))
        return [value]
    user, password = need(auth["user_secret"]), need(auth["password_secret"])
    import httpx

    request["auth"] = httpx.BasicAuth(user, password)
    return [user, password]


def _error_message(data: bytes, encoding: str | None) -> str:
    """The message an API put in its error body: RFC 7807 ``detail``/``title``,
    ``message``, ``error`` (string or object), FastAPI's validation ``detail`` list."""
    text = data.decode(encoding or "utf-8", errors="replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    found = _message_in(body)
    return (found or text)[:500]


def _message_in(body: Any) -> str | None:
    if isinstance(body, str):
        return body
    if isinstance(body, list):
        parts = [m for m in (_message_in(v) for v in body[:5]) if m]
        return "; ".join(parts) or None
    if not isinstance(body, dict):
        return None
    if "msg" in body and "loc" in body:  # a FastAPI/pydantic validation error
        loc = ".".join(str(p) for p in body["loc"] if p != "body")
        return f"{loc}: {body['msg']}" if loc else str(body["msg"])
    for key in ("detail", "message", "error_description", "error", "title", "errors"):
        if key in body:
            found = _message_in(body[key])
            if found:
                return found
    return None


def _query_pairs(param: dict[str, Any], value: Any) -> list[tuple[str, str]]:
    name = param["name"]
    explode = param.get("explode")
    explode = True if explode is None else explode
    if isinstance(value, list):
        if explode:
            return [(name, _scalar(v)) for v in value]
        sep = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(param.get("style") or "", ",")
        return [(name, sep.join(_scalar(v) for v in value))]
    if isinstance(value, dict):
        if param.get("style") == "deepObject":
            return [(f"{name}[{k}]", _scalar(v)) for k, v in value.items()]
        if explode:
            return [(str(k), _scalar(v)) for k, v in value.items()]
        return [(name, ",".join(f"{k},{_scalar(v)}" for k, v in value.items()))]
    return [(name, _scalar(value))]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def describe(compiled: dict[str, Any]) -> str:
    title = compiled.get("title") or "API"
    version = compiled.get("version")
    return f"{title} {version}" if version else str(title)

