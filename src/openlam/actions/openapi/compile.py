"""Reading an OpenAPI 3 document and compiling its operations into what becomes actions.

An operation's name is its ``operationId`` in snake_case, or ``method_path`` without one.
Its arguments are the path, query, header and cookie parameters by name and, when the
request body is a JSON (or form) object, each of the body's properties as an argument of
its own — in the spec's order, so the planner sees the fields it must fill. A body
property whose name a parameter already uses is ``body_NAME``; a body that is not an
object with properties stays one argument, ``body``. Every local ``$ref`` is resolved.

A spec is third-party content, so reading one is bounded: at most :data:`MAX_SPEC_BYTES`;
YAML aliases and ``$ref``s are expanded once each and shared (a "billion laughs"
document costs its own size, not its expansion); an operation's schema that would still
expand to more than :data:`MAX_SCHEMA_VALUES` values (a large API whose objects refer to
each other, like Stripe's) shows its deepest references by name only; a document nested
deeper than Python can follow is refused with an error, not a crash.
What the spec says about risk (``x-openlam-risk``, a ``x-…tool-type`` hint) is kept for
:mod:`openlam.actions.risk`, which decides the tier when the actions are built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from openlam.actions.openapi.config import COMPILED_FORMAT, ServiceConfig
from openlam.actions.risk import TOOL_TYPE_KEY
from openlam.actions.sources import check_overrides
from openlam.errors import UserError, not_utf8
from openlam.validation import whole_number

CONNECT_TIMEOUT = 5.0
SPEC_FETCH_TIMEOUT = 30.0
MAX_SPEC_BYTES = 64 * 1024 * 1024  # the largest public specs are ≈ 10 MB
MAX_SCHEMA_VALUES = 2_000  # per operation's input or output schema, once expanded
# references nested deeper are shown by name (a cycle stops sooner); also keeps Python's
# recursion, ≈ 15 frames a reference, far from its limit
_MAX_REF_DEPTH = 24
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
FLATTENED_MEDIA = ("json", "application/x-www-form-urlencoded", "multipart/form-data")


def load_document(source: str, base_dir: Path | None = None) -> tuple[dict[str, Any], str | None]:
    """The spec at ``source`` (a file or an http(s) URL) and its URL, if it came from one."""
    if source.startswith(("http://", "https://")):
        text, url = _fetch(source)
        return _parse_document(text, source), url
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if not path.is_file():
        raise UserError(
            f"no spec file {path}",
            "give the path of an OpenAPI 3 JSON or YAML file, or an http(s) URL",
        )
    if path.stat().st_size > MAX_SPEC_BYTES:
        raise _too_large(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(path, exc) from None
    return _parse_document(text, str(path)), None


def _fetch(url: str) -> tuple[str, str]:
    """The text at ``url`` (at most MAX_SPEC_BYTES) and the URL it finally came from."""
    import httpx

    try:
        with httpx.stream(
            "GET",
            url,
            timeout=httpx.Timeout(SPEC_FETCH_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=True,
        ) as response:
            if response.status_code >= 400:
                raise UserError(
                    f"fetching the spec {url} answered HTTP {response.status_code}",
                    "check the URL",
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_SPEC_BYTES:
                    raise _too_large(url)
            return body.decode(response.encoding or "utf-8", errors="replace"), str(response.url)
    except httpx.HTTPError as exc:
        raise UserError(
            f"cannot fetch the spec {url}: {exc or type(exc).__name__}",
            "check the URL and that the service is running",
        ) from None


def _too_large(where: str) -> UserError:
    return UserError(
        f"the spec {where} is larger than {MAX_SPEC_BYTES / 2**20:g} MiB",
        "give the API's OpenAPI document itself (the largest public ones are about 10 MB)",
    )


def _too_deep(where: str) -> UserError:
    return UserError(
        f"{where} nests values deeper than OpenLAM can read",
        "give the API's OpenAPI document itself; no real schema nests hundreds of levels",
    )


def _parse_document(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise _too_deep(where) from None
    except ValueError:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UserError(
                f"{where} is neither JSON nor YAML: {exc}", "give an OpenAPI 3 document"
            ) from None
        except RecursionError:
            raise _too_deep(where) from None
    if not isinstance(data, dict):
        raise UserError(
            f"{where} is not an OpenAPI document (not a JSON/YAML object)",
            "give an OpenAPI 3 document",
        )
    return data


class _Resolver:
    """Inlines local ``$ref``s (``#/components/…``); a reference to itself becomes an
    unconstrained schema noting the recursion."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.nullable_style = str(doc.get("openapi", "")).startswith("3.0")
        self.memo: dict[str, Any] = {}  # each reference is expanded once, then shared
        self.names: dict[int, str] = {}  # id of an expanded reference → the name it had
        # each container is resolved once, then shared: YAML aliases make one object
        # appear many times (a 9-way alias chain 12 deep is 9**12 values)
        self.done: dict[int, Any] = {}

    def target(self, ref: str, where: str) -> Any:
        if not ref.startswith("#"):
            raise UserError(
                f"{where}: external $ref {ref!r} is not supported",
                "bundle the spec into one file (e.g. with `redocly bundle`)",
            )
        node: Any = self.doc
        for raw in ref[1:].split("/")[1:]:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif (
                isinstance(node, list) and (at := whole_number(part)) is not None and at < len(node)
            ):
                node = node[at]
            else:
                raise UserError(
                    f"{where}: $ref {ref!r} points to nothing in the spec",
                    "fix the reference or add what it names",
                )
        return node

    def resolve(self, node: Any, where: str, seen: tuple[str, ...] = ()) -> Any:
        if not isinstance(node, list | dict):
            return node
        if id(node) not in self.done:
            self.done[id(node)] = self._resolve(node, where, seen)
        return self.done[id(node)]

    def _resolve(self, node: list[Any] | dict[str, Any], where: str, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [self.resolve(v, where, seen) for v in node]
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if ref in seen:
                return {"description": f"(recursive: {name})"}
            if len(seen) >= _MAX_REF_DEPTH:  # a chain of distinct schemas, each inlined
                return {"description": f"({name}: not expanded, nested too deep)"}
            if ref not in self.memo:
                self.memo[ref] = self.resolve(self.target(ref, where), where, (*seen, ref))
                self.names.setdefault(id(self.memo[ref]), name)
            resolved = self.memo[ref]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            if siblings and isinstance(resolved, dict):
                # _resolve, not resolve: ``siblings`` is transient, its id() reused later
                resolved = {**resolved, **self._resolve(siblings, where, seen)}
            return resolved
        out = {k: self.resolve(v, where, seen) for k, v in node.items()}
        return self.normalize(out)

    def bounded(self, schema: Any) -> Any:
        """``schema`` as its own tree of at most MAX_SCHEMA_VALUES values: whole when it
        fits, else with the references nested deepest shown by name only."""

        def fits(depth: int) -> bool:
            return self._size(schema, depth, {}) <= MAX_SCHEMA_VALUES

        if fits(_MAX_REF_DEPTH):  # the usual case
            return self._copy(schema, _MAX_REF_DEPTH)
        low, high = 0, _MAX_REF_DEPTH  # the deepest that fits, by bisection: size grows with depth
        if fits(low):
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if fits(middle) else (low, middle)
            return self._copy(schema, low)
        raise UserError(
            f"a schema expands to more than {MAX_SCHEMA_VALUES:,} values even with its "
            "references shown by name only",
            "give the API's OpenAPI document itself; check its YAML anchors (&name, *name)",
        )

    def _size(self, node: Any, depth: int, sizes: dict[tuple[int, int], int]) -> int:
        """The number of values ``_copy(node, depth)`` makes, stopping early past the limit."""
        if not isinstance(node, list | dict):
            return 1
        if depth == 0 and id(node) in self.names:
            return 2
        key = (id(node), depth)
        if key not in sizes:
            inner = depth - 1 if id(node) in self.names else depth
            total = 1
            for value in node.values() if isinstance(node, dict) else node:
                total += self._size(value, inner, sizes)
                if total > MAX_SCHEMA_VALUES:
                    break
            sizes[key] = total
        return sizes[key]

    def _copy(self, node: Any, depth: int) -> Any:
        if not isinstance(node, list | dict):
            return node
        if id(node) in self.names:
            if depth == 0:
                return {"description": f"({self.names[id(node)]}: not expanded, too large)"}
            depth -= 1
        if isinstance(node, list):
            return [self._copy(v, depth) for v in node]
        return {k: self._copy(v, depth) for k, v in node.items()}

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
        raise UserError(
            f"this is a Swagger {doc['swagger']} document; OpenLAM reads OpenAPI 3",
            "convert it to OpenAPI 3 (e.g. with swagger2openapi)",
        )
    if not isinstance(version, str) or not version.startswith("3."):
        raise UserError(
            f'not an OpenAPI 3 document (its "openapi" field is {version!r})',
            "give an OpenAPI 3.0 or 3.1 document",
        )
    paths = doc.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise UserError(
            "the spec has no paths: it describes no operations",
            "check that this is the API's full OpenAPI document",
        )
    resolver = _Resolver(doc)
    try:
        operations = _operations(paths, resolver)
    except RecursionError:
        raise _too_deep("the spec") from None
    info = doc.get("info")
    info = info if isinstance(info, dict) else {}
    return {
        "format": COMPILED_FORMAT,
        "title": info.get("title"),
        "version": info.get("version"),
        "base_url": _server_url(doc, spec_url),
        "operations": operations,
    }


def _operations(paths: dict[Any, Any], resolver: _Resolver) -> list[dict[str, Any]]:
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
            operation = _operation(method, path, op, shared, where, used)
            for key in ("input_schema", "output_schema"):
                try:
                    operation[key] = resolver.bounded(operation[key])
                except UserError as exc:
                    raise UserError(f"{where}: {exc.args[0]}", exc.hint) from None
            operations.append(operation)
    if not operations:
        raise UserError("the spec's paths hold no operations", "check the spec")
    return operations


def _operation(
    method: str, path: str, op: dict[str, Any], shared: list[Any], where: str, used: set[str]
) -> dict[str, Any]:
    op_id = op.get("operationId")
    base = (
        snake(op_id)
        if isinstance(op_id, str) and snake(op_id)
        else snake(f"{method}_{path}") or method
    )
    name, n = base, 2
    while name in used:
        name, n = f"{base}_{n}", n + 1
    used.add(name)

    props: dict[str, Any] = {}
    required: list[str] = []
    params = _parameters(path, [*shared, *(op.get("parameters") or [])], where, props, required)
    body = _body(op.get("requestBody"), props, required)
    input_schema: dict[str, Any] = {
        "type": "object",
        "properties": props,
        "additionalProperties": False,
    }
    if required:
        input_schema["required"] = required
    summary = " ".join(str(op.get("summary") or "").split())
    detail = " ".join(str(op.get("description") or "").split())
    description = summary or detail[:300] or f"{method.upper()} {path}"
    if summary and detail and detail != summary:
        description += f" — {detail[:240]}"
    declared = op.get("x-openlam-risk")
    tool_type = next(
        ((k, str(v)) for k, v in op.items() if isinstance(k, str) and TOOL_TYPE_KEY.match(k)), None
    )
    return {
        "action": name,
        "operation_id": op_id,
        "method": method.upper(),
        "path": path,
        "description": description,
        "params": params,
        "body": body,
        "input_schema": input_schema,
        "output_schema": _output_schema(op),
        "declared_risk": declared if isinstance(declared, str) else None,
        "tool_type": list(tool_type) if tool_type else None,
        "deprecated": bool(op.get("deprecated")),
    }


def _parameters(
    path: str, declared: list[Any], where: str, props: dict[str, Any], required: list[str]
) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for param in declared:
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            raise UserError(f'{where}: a parameter lacks "name" or "in"', "fix the spec")
        merged[(param["in"], param["name"])] = param
    for (location, pname), param in merged.items():
        if location not in ("path", "query", "header", "cookie"):
            raise UserError(
                f"{where}: parameter {pname} is in {location!r}",
                "parameters are in path, query, header or cookie",
            )
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
        params.append(
            {
                "arg": arg,
                "name": pname,
                "in": location,
                "style": param.get("style"),
                "explode": param.get("explode"),
            }
        )
    for segment in re.findall(r"{([^}]+)}", path):
        if ("path", segment) not in merged:
            raise UserError(
                f"{where}: path parameter {{{segment}}} is not declared",
                "declare it under the operation's parameters (in: path)",
            )
    return params


def _body(request_body: Any, props: dict[str, Any], required: list[str]) -> dict[str, Any] | None:
    """The request body's arguments: its object's fields (``fields``: argument → field),
    or one argument (``arg``) for any other body."""
    if not isinstance(request_body, dict):
        return None
    content = request_body.get("content") or {}
    media = _pick_media(content)
    if media is None:
        return None
    schema = dict((content[media] or {}).get("schema") or {})
    body_required = bool(request_body.get("required"))
    fields = schema.get("properties")
    if (
        isinstance(fields, dict)
        and fields
        and any(k in media for k in FLATTENED_MEDIA)
        and not any(k in schema for k in ("oneOf", "anyOf", "allOf", "not"))
    ):
        names: dict[str, str] = {}
        needed = set(schema.get("required") or []) if body_required else set()
        for field, field_schema in fields.items():
            arg = field if field not in props else f"body_{field}"
            props[arg] = field_schema
            names[arg] = field
            if field in needed:
                required.append(arg)
        return {"fields": names, "required": body_required, "content_type": media}
    arg = "body" if "body" not in props else "request_body"
    if request_body.get("description") and "description" not in schema:
        schema["description"] = request_body["description"]
    props[arg] = schema
    if body_required:
        required.append(arg)
    return {"arg": arg, "content_type": media}


def _pick_media(content: dict[str, Any]) -> str | None:
    kinds = list(content)
    for test in (
        lambda k: k == "application/json",
        lambda k: k.endswith("+json"),
        lambda k: k == "application/x-www-form-urlencoded",
        lambda k: k == "multipart/form-data",
        lambda k: k.startswith("text/"),
        lambda k: True,
    ):
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
    known = {op["action"] for op in compiled["operations"]} | {
        op["operation_id"] for op in compiled["operations"] if op["operation_id"]
    }
    check_overrides("operation of the service", service.risk, known)
    if not (service.base_url or compiled["base_url"]):
        raise UserError(
            f"the spec {service.spec} names no server URL",
            "pass --base-url, e.g. --base-url http://127.0.0.1:8000",
        )
    return compiled


def describe(compiled: dict[str, Any]) -> str:
    title = compiled.get("title") or "API"
    version = compiled.get("version")
    return f"{title} {version}" if version else str(title)
