"""OpenAPI services as actions, against a real local FastAPI service imported from its
generated /openapi.json: auth, path/query/header/body parameters, error responses, and
the ways it goes wrong (wrong credentials, unreachable, invalid spec, slow answers)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from openlam.actions import openapi
from openlam.actions.registry import ActionRegistry
from openlam.actions.risk import reason_of
from openlam.actions.spec import ActionContext, Risk
from openlam.config import Settings
from openlam.errors import UserError
from openlam.loop.act import execute
from tests.fakes.crm_api import API_KEY, PASSWORD, TOKEN, USER, create_app, serve

SECRETS = {"CRM_TOKEN": TOKEN, "CRM_KEY": API_KEY, "CRM_USER": USER, "CRM_PASS": PASSWORD}


class Crm:
    def __init__(self, app: Any, url: str) -> None:
        self.app, self.url = app, url

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.app.state.requests


@pytest.fixture
def crm() -> Iterator[Crm]:
    app = create_app()
    with serve(app) as url:
        yield Crm(app, url)


@pytest.fixture(autouse=True)
async def close_clients() -> AsyncIterator[None]:
    yield
    await openapi.aclose_all()


def add_service(
    settings: Settings, spec: str, name: str = "acme", **options: Any
) -> ActionRegistry:
    """What `openlam openapi add` does, then a registry loaded from the workspace."""
    service = openapi.ServiceConfig(name=name, spec=spec, **options)
    openapi.save_service(settings, service, openapi.prepare(service))
    registry = ActionRegistry()
    openapi.register(registry, settings)
    return registry


async def call(
    registry: ActionRegistry,
    settings: Settings,
    action: str,
    secrets: dict[str, str] | None = None,
    retries: int = 0,
    **args: Any,
):
    spec = registry.get(action)
    assert spec is not None, f"{action} not in {[s.name for s in registry]}"
    ctx = ActionContext(
        run_id="run-1",
        step_id="s1",
        idempotency_key="run-1:s1",
        workspace=settings.workspace,
        settings=settings,
        secret=dict(SECRETS if secrets is None else secrets).get,
    )
    return await execute(spec, ctx, args, timeout=20, retries=retries)


# ---------------------------------------------------------------------- importing


def test_operations_become_actions_with_resolved_schemas_and_risks(settings, crm):
    registry = add_service(
        settings,
        f"{crm.url}/openapi.json",
        auth="bearer:CRM_TOKEN",
        risk={"delete_contact": "write"},
        trusted=True,
    )
    risks = {s.name: s.risk for s in registry}
    assert risks == {
        "acme.list_contacts": Risk.read,
        "acme.get_contact": Risk.read,
        "acme.create_contact": Risk.write,
        "acme.update_contact": Risk.write,
        "acme.delete_contact": Risk.write,  # overridden (the method says destructive)
        "acme.add_note_contacts_contact_id_notes_post": Risk.write,  # no operationId
        "acme.slow_report": Risk.read,
        "acme.maintenance": Risk.read,
    }
    assert reason_of(registry.get("acme.create_contact")) == "a POST, source vouched for by you"  # type: ignore[arg-type]
    assert reason_of(registry.get("acme.delete_contact")) == "set by you (--risk)"  # type: ignore[arg-type]
    create = registry.get("acme.create_contact")
    assert create is not None
    assert create.source == "openapi:acme" and create.secrets == ("CRM_TOKEN",)
    assert not create.idempotent and registry.get("acme.get_contact").idempotent  # type: ignore[union-attr]
    assert "$ref" not in json.dumps(create.input_schema)
    # the body's fields are arguments of their own, in the spec's order
    assert list(create.input_schema["properties"]) == ["name", "email", "company", "tags"]
    assert create.input_schema["required"] == ["name", "email"]
    assert "pattern" in create.input_schema["properties"]["email"]
    assert set(create.output_schema["properties"]) == {"id", "name", "email", "company", "tags"}
    get = registry.get("acme.get_contact")
    assert get is not None and get.input_schema["required"] == ["contact_id"]
    compiled = openapi.read_compiled(settings, "acme")
    assert compiled is not None and compiled["base_url"] == f"{crm.url}/"


def test_an_unvouched_service_defaults_every_body_to_external_and_delete_to_destructive(
    settings, crm
):
    """A POST "send a message" must not be `write` for a service nobody vouched for
    (issue 8 §5): every method with a body defaults to external; only safe methods read."""
    registry = add_service(settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN")
    tiers = {s.name: (s.risk, reason_of(s)) for s in registry}
    assert tiers["acme.create_contact"] == (Risk.external, "default for an unvouched POST")
    assert tiers["acme.update_contact"] == (Risk.external, "default for an unvouched PATCH")
    assert tiers["acme.delete_contact"] == (Risk.destructive, "default for an unvouched DELETE")
    assert tiers["acme.get_contact"] == (Risk.read, "default for an unvouched GET (a safe method)")
    # vouching for the whole service later: what its methods say is believed
    openapi.SERVICES.update(settings, "acme", trusted=True)
    registry = ActionRegistry()
    openapi.register(registry, settings)
    assert registry.get("acme.create_contact").risk is Risk.write  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        (
            True,
            {
                "send_sms": (
                    Risk.external,
                    "x-openlam-risk in the spec (source vouched for by you)",
                ),
                "lookup": (Risk.read, "x-tool-type: read in the spec (source vouched for by you)"),
                "book": (
                    Risk.write,
                    "x-tau2-tool-type: write in the spec (source vouched for by you)",
                ),
                "refund": (
                    Risk.financial,
                    "x-openlam-risk in the spec (source vouched for by you)",
                ),
            },
        ),
        (
            False,
            {
                "send_sms": (Risk.external, "default for an unvouched POST"),
                "lookup": (Risk.external, "default for an unvouched POST"),
                "book": (Risk.external, "default for an unvouched POST"),
                "refund": (
                    Risk.financial,
                    "x-openlam-risk in the spec (raises the unvouched default)",
                ),
            },
        ),
    ],
)
def test_what_the_spec_says_about_risk_is_believed_only_when_vouched_for(
    settings, tmp_path, trusted, expected
):
    def op(op_id: str, **extra: str) -> dict:
        return {
            "post": {
                "operationId": op_id,
                **extra,
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"to": {"type": "string"}}}
                        }
                    }
                },
                "responses": {"200": {"description": "ok"}},
            }
        }

    spec = write(
        tmp_path,
        {
            "openapi": "3.1.0",
            "servers": [{"url": "http://127.0.0.1:9"}],
            "paths": {
                "/sms": op("send_sms", **{"x-openlam-risk": "read"}),
                "/lookup": op("lookup", **{"x-tool-type": "read"}),
                "/book": op("book", **{"x-tau2-tool-type": "write"}),
                "/refund": op("refund", **{"x-openlam-risk": "financial"}),
            },
        },
    )
    if trusted:  # a spec that marks SMS read is believed only from a vouched-for source
        expected = {**expected, "send_sms": (Risk.read, expected["send_sms"][1])}
    registry = add_service(settings, spec, name="svc", trusted=trusted)
    assert {s.name.split(".")[1]: (s.risk, reason_of(s)) for s in registry} == expected


def test_an_unvouched_spec_marking_a_get_write_raises_its_tier():
    from openlam.actions.risk import operation_tier

    raised = operation_tier("GET", tool_type=("x-tau2-tool-type", "write"), trusted=False)
    assert raised.risk is Risk.write
    assert raised.reason == "x-tau2-tool-type: write in the spec (raises the unvouched default)"
    kept = operation_tier("POST", tool_type=("x-tool-type", "read"), trusted=False)
    assert kept.risk is Risk.external  # a hint never lowers an unvouched tier


async def test_calls_send_path_query_header_and_body_parameters(settings, crm):
    registry = add_service(settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN")
    made = await call(
        registry,
        settings,
        "acme.create_contact",
        name="Ann Lee",
        email="ann@acme.io",
        tags=["vip", "eu"],
    )
    assert made.status == "succeeded", made
    assert made.output["id"] == 1 and made.output["tags"] == ["vip", "eu"]
    assert crm.requests[-1]["idempotency_key"] == "run-1:s1"  # POST carries the step's key

    found = await call(registry, settings, "acme.list_contacts", q="ann", tag=["vip", "eu"])
    assert found.status == "succeeded" and [c["email"] for c in found.output] == ["ann@acme.io"]
    assert crm.requests[-1]["query"] == "q=ann&tag=vip&tag=eu"

    one = await call(registry, settings, "acme.get_contact", contact_id=1)
    assert one.output["name"] == "Ann Lee" and crm.requests[-1]["path"] == "/contacts/1"

    note = await call(
        registry,
        settings,
        "acme.add_note_contacts_contact_id_notes_post",
        contact_id=1,
        text="met at the fair",
        **{"x-request-id": "req-42"},
    )
    assert note.status == "succeeded", note
    assert note.output["request_id"] == "req-42"

    patched = await call(registry, settings, "acme.update_contact", contact_id=1, company="Acme")
    assert patched.output["company"] == "Acme"
    gone = await call(registry, settings, "acme.delete_contact", contact_id=1)
    assert (gone.status, gone.output) == ("succeeded", {"status": 204})
    assert crm.app.state.contacts == {}


async def test_error_responses_carry_the_status_and_the_service_message(settings, crm):
    registry = add_service(settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN")
    missing = await call(registry, settings, "acme.get_contact", contact_id=99)
    assert missing.status == "failed"
    assert "HTTP 404: contact 99 not found" in missing.error

    await call(registry, settings, "acme.create_contact", name="A", email="a@b.io")
    dup = await call(registry, settings, "acme.create_contact", name="A", email="a@b.io")
    assert "HTTP 409: a contact with email a@b.io exists" in dup.error
    assert dup.attempts == 1  # a 4xx is not retried

    down = await call(registry, settings, "acme.maintenance", retries=1)
    assert down.status == "failed" and "HTTP 503: down for maintenance" in down.error
    assert down.attempts == 2  # a 5xx is transient: retried

    invalid = await call(
        registry, settings, "acme.create_contact", name="B", email="not-an-address"
    )
    assert invalid.status == "failed" and invalid.error.startswith("invalid arguments")
    assert "email:" in invalid.error
    assert len([r for r in crm.requests if r["method"] == "POST"]) == 2  # never sent


async def test_wrong_or_missing_credentials_are_named(settings, crm):
    registry = add_service(settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN")
    wrong = await call(registry, settings, "acme.list_contacts", secrets={"CRM_TOKEN": "nope1"})
    assert wrong.status == "failed"
    assert "HTTP 401" in wrong.error and "CRM_TOKEN" in wrong.error
    assert "nope1" not in wrong.error
    sent = len(crm.requests)
    missing = await call(registry, settings, "acme.list_contacts", secrets={})
    assert missing.status == "failed" and "secret CRM_TOKEN is not set" in missing.error
    assert len(crm.requests) == sent


@pytest.mark.parametrize("auth", ["header:X-API-Key:CRM_KEY", "basic:CRM_USER:CRM_PASS"])
async def test_api_key_header_and_basic_auth(settings, crm, auth):
    registry = add_service(settings, f"{crm.url}/openapi.json", auth=auth)
    ok = await call(registry, settings, "acme.list_contacts")
    assert ok.status == "succeeded", ok
    refused = await call(
        registry,
        settings,
        "acme.list_contacts",
        secrets={**SECRETS, "CRM_KEY": "bad", "CRM_PASS": "bad"},
    )
    assert "HTTP 401" in refused.error


async def test_unreachable_service_is_transient_and_named(settings, crm):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    registry = add_service(
        settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN", base_url=dead
    )
    result = await call(registry, settings, "acme.list_contacts", retries=1)
    assert result.status == "failed" and result.attempts == 2
    assert f"cannot reach acme at {dead}" in result.error


async def test_slow_response_times_out_with_a_clear_error(settings, crm):
    registry = add_service(
        settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN", timeout=0.5
    )
    result = await call(registry, settings, "acme.slow_report", seconds=30)
    assert result.status == "failed"
    assert "acme.slow_report (GET /slow) did not answer within 0.5s" in result.error


async def test_operations_inside_a_goal(settings, crm, monkeypatch):
    from openlam import Workforce
    from openlam.testing import scripted_model

    monkeypatch.setenv("CRM_TOKEN", TOKEN)
    registry = add_service(
        settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN", trusted=True
    )
    plan = {
        "steps": [
            {
                "id": "add",
                "action": "acme.create_contact",
                "args": {"name": "Dana Ruiz", "email": "dana@ruiz.io", "company": "Ruiz"},
            },
            {
                "id": "note",
                "action": "acme.add_note_contacts_contact_id_notes_post",
                "args": {"contact_id": "${add.output.id}", "text": "wants a demo"},
            },
            {"id": "ghost", "action": "acme.get_contact", "args": {"contact_id": 404}},
        ]
    }
    name = f"test:openapi-goal-{id(plan)}"
    scripted_model(name, [plan, {"steps": [], "note": "contact 404 does not exist"}])
    async with Workforce(settings=settings, model=name) as wf:
        for spec in registry:
            wf.runtime.registry.add(spec, replace=True)
        outcome = await wf.run("add Dana Ruiz to the CRM with a note")
    steps = {s.id: s for s in outcome.steps}
    assert steps["add"].status.value == "succeeded" and steps["add"].output["id"] == 1
    assert steps["note"].status.value == "succeeded"
    assert crm.app.state.notes[0].text == "wants a demo"
    assert steps["ghost"].status.value == "failed"
    assert "HTTP 404: contact 404 not found" in steps["ghost"].error
    assert outcome.status.value == "partial"
    assert TOKEN not in outcome.model_dump_json()


# ------------------------------------------------------------------- invalid specs


def write(tmp_path: Path, doc: Any, name: str = "spec.json") -> str:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


MINIMAL_OP = {"get": {"operationId": "ping", "responses": {"200": {"description": "ok"}}}}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"swagger": "2.0", "paths": {}}, "Swagger 2.0 document"),
        ({"openapi": "3.0.3", "info": {}}, "the spec has no paths"),
        ({"info": {"title": "x"}}, "not an OpenAPI 3 document"),
        (
            {
                "openapi": "3.1.0",
                "paths": {
                    "/a": {
                        "get": {
                            "operationId": "a",
                            "parameters": [{"$ref": "#/components/parameters/Missing"}],
                        }
                    }
                },
            },
            "$ref '#/components/parameters/Missing' points to nothing",
        ),
        (
            {"openapi": "3.1.0", "paths": {"/a/{id}": MINIMAL_OP}},
            "path parameter {id} is not declared",
        ),
        (
            {"openapi": "3.1.0", "paths": {"/a": {"get": {"parameters": [{"name": "q"}]}}}},
            'a parameter lacks "name" or "in"',
        ),
        (
            {
                "openapi": "3.1.0",
                "paths": {
                    "/a": {
                        "get": {
                            "requestBody": {
                                "content": {
                                    "application/json": {"schema": {"$ref": "other.yaml#/Thing"}}
                                }
                            }
                        }
                    }
                },
            },
            "external $ref 'other.yaml#/Thing' is not supported",
        ),
        ("openapi: [unclosed", "neither JSON nor YAML"),
    ],
)
def test_invalid_specs_are_user_errors_naming_the_problem(settings, tmp_path, doc, message):
    spec = write(tmp_path, doc)
    with pytest.raises(UserError, match=r"invalid OpenAPI spec|neither JSON") as err:
        add_service(settings, spec, base_url="http://127.0.0.1:9")
    assert message in str(err.value)
    assert openapi.load_services(settings) == {}  # nothing saved


def test_other_bad_inputs_are_user_errors(settings, tmp_path, crm):
    with pytest.raises(UserError, match="no spec file"):
        add_service(settings, str(tmp_path / "nope.json"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UserError, match=f"cannot fetch the spec http://127.0.0.1:{port}"):
        add_service(settings, f"http://127.0.0.1:{port}/openapi.json")
    with pytest.raises(UserError, match="names no server URL"):
        add_service(settings, write(tmp_path, {"openapi": "3.1.0", "paths": {"/ping": MINIMAL_OP}}))
    with pytest.raises(UserError, match="--risk names no operation of the service: nuke"):
        add_service(settings, f"{crm.url}/openapi.json", risk={"nuke": "read"})
    with pytest.raises(UserError, match=r"creat_contact \(did you mean create_contact"):
        add_service(settings, f"{crm.url}/openapi.json", risk={"creat_contact": "read"})
    with pytest.raises(UserError, match="auth 'token:X' is not understood"):
        openapi.ServiceConfig(name="acme", spec="x", auth="token:X")
    with pytest.raises(UserError, match="is not a secret name"):
        openapi.ServiceConfig(name="acme", spec="x", auth="bearer:sk-live-123")


def test_yaml_spec_with_openapi_30_nullable_and_recursive_schemas(settings, tmp_path):
    spec = write(
        tmp_path,
        """
openapi: 3.0.3
info: {title: Tree, version: "1"}
servers: [{url: "https://{host}/v1", variables: {host: {default: api.example.test}}}]
paths:
  /nodes/{nodeId}:
    parameters:
      - {name: nodeId, in: path, required: true, schema: {type: string}}
    put:
      operationId: replaceNode
      parameters:
        - {name: dryRun, in: query, schema: {type: boolean}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Node"}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Node"}
components:
  schemas:
    Node:
      type: object
      properties:
        label: {type: string, nullable: true}
        weight: {type: number, minimum: 0, exclusiveMinimum: true}
        children:
          type: array
          items: {$ref: "#/components/schemas/Node"}
""",
        "tree.yaml",
    )
    registry = add_service(settings, spec, name="tree", trusted=True)
    replace = registry.get("tree.replace_node")
    assert replace is not None and replace.risk is Risk.write and replace.idempotent
    props = replace.input_schema["properties"]
    assert list(props) == ["nodeId", "dryRun", "label", "weight", "children"]
    assert props["label"]["type"] == ["string", "null"]
    assert props["weight"] == {"type": "number", "exclusiveMinimum": 0}
    assert "recursive" in props["children"]["items"]["description"]
    assert replace.arg_errors({"nodeId": "n1", "label": None, "weight": 2}) == []
    assert replace.arg_errors({"nodeId": "n1", "weight": 0}) != []
    compiled = openapi.read_compiled(settings, "tree")
    assert compiled is not None and compiled["base_url"] == "https://api.example.test/v1"


def test_body_fields_become_arguments_and_a_clash_with_a_parameter_is_prefixed(settings, tmp_path):
    spec = write(
        tmp_path,
        {
            "openapi": "3.1.0",
            "servers": [{"url": "http://127.0.0.1:9"}],
            "paths": {
                "/items/{id}": {
                    "put": {
                        "operationId": "putItem",
                        "parameters": [{"name": "id", "in": "path", "schema": {"type": "string"}}],
                        "requestBody": {
                            "required": True,
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["id", "kind"],
                                        "properties": {
                                            "kind": {"enum": ["a", "b"]},
                                            "id": {"type": "integer"},
                                            "tags": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "properties": {"k": {"type": "string"}},
                                                },
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "responses": {"200": {"description": "ok"}},
                    }
                }
            },
        },
    )
    registry = add_service(settings, spec, name="svc")
    put = registry.get("svc.put_item")
    assert put is not None
    assert list(put.input_schema["properties"]) == ["id", "kind", "body_id", "tags"]
    assert put.input_schema["required"] == ["id", "kind", "body_id"]
    compiled = openapi.read_compiled(settings, "svc")
    assert compiled is not None
    assert compiled["operations"][0]["body"]["fields"] == {
        "kind": "kind",
        "body_id": "id",
        "tags": "tags",
    }
    assert "kind: a|b; tags: list[{k?: str}]" in put.signature()


def test_an_operation_taking_a_url_is_an_egress(settings, tmp_path, crm):
    spec = write(
        tmp_path,
        {
            "openapi": "3.1.0",
            "servers": [{"url": "http://127.0.0.1:9"}],
            "paths": {
                "/hooks": {
                    "post": {
                        "operationId": "addHook",
                        "requestBody": {
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "callback_url": {"type": "string"},
                                            "event": {"type": "string"},
                                        },
                                    }
                                }
                            }
                        },
                        "responses": {"200": {"description": "ok"}},
                    }
                }
            },
        },
    )
    hooks = add_service(settings, spec, name="hooks")
    assert getattr(hooks.get("hooks.add_hook"), "egress", None) is True
    acme = add_service(settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN")
    assert getattr(acme.get("acme.create_contact"), "egress", None) is False


# ---------------------------------------------------- hostile or very large specs
# A spec is third-party content (`openlam openapi add URL`): its size, its YAML aliases,
# its references and its nesting must not hang or crash the command — nor every later
# start, which loads the compiled service.


def _values(node: Any) -> int:
    if isinstance(node, dict):
        return 1 + sum(_values(v) for v in node.values())
    if isinstance(node, list):
        return 1 + sum(_values(v) for v in node)
    return 1


def _spec_posting(schemas: dict[str, Any], first: str = "S0") -> dict[str, Any]:
    body = {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{first}"}}}}
    return {
        "openapi": "3.1.0",
        "servers": [{"url": "http://127.0.0.1:9"}],
        "paths": {"/x": {"post": {"operationId": "put", "requestBody": body}}},
        "components": {"schemas": schemas},
    }


def _chain(length: int, fan_out: int) -> dict[str, Any]:
    """Schemas S0…S<length>, each with ``fan_out`` fields referring to the next."""
    schemas: dict[str, Any] = {
        f"S{i}": {
            "type": "object",
            "properties": {
                f"f{j}": {"$ref": f"#/components/schemas/S{i + 1}"} for j in range(fan_out)
            },
        }
        for i in range(length)
    }
    schemas[f"S{length}"] = {"type": "string"}
    return schemas


def test_references_that_fan_out_exponentially_are_shown_by_name_past_a_bound(settings, tmp_path):
    # 40 schemas, each referring twice to the next: 2**40 values once inlined (the
    # command ran for minutes, then ran out of memory)
    registry = add_service(settings, write(tmp_path, _spec_posting(_chain(40, 2))), name="big")
    put = registry.get("big.put")
    assert put is not None
    assert _values(put.input_schema) <= openapi.compile.MAX_SCHEMA_VALUES
    assert "not expanded, too large" in json.dumps(put.input_schema)
    # the shallow levels are there, and arguments are still checked against them
    assert put.input_schema["properties"]["f0"]["properties"]["f1"]["type"] == "object"
    assert put.arg_errors({"f0": {"f1": {}}}) == []
    assert put.arg_errors({"f0": "not an object"}) != []


def test_a_long_chain_of_distinct_schemas_compiles(settings, tmp_path):
    # 300 schemas each referring to the next (big APIs' objects refer to each other):
    # inlining followed Python's recursion to its limit, an internal error
    registry = add_service(settings, write(tmp_path, _spec_posting(_chain(300, 1))), name="long")
    put = registry.get("long.put")
    assert put is not None
    assert "nested too deep" in json.dumps(put.input_schema)


def test_yaml_aliases_cost_the_documents_size_not_their_expansion(settings, tmp_path):
    # "billion laughs": each anchor holds nine copies of the one before, 9**12 values
    laughs = ['  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
        f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 12)
    ]

    def spec(example: str) -> str:
        return "\n".join(
            [
                "openapi: 3.0.3",
                "servers: [{url: 'http://127.0.0.1:9'}]",
                "x-laughs:",
                *laughs,
                "paths:",
                "  /x:",
                "    get:",
                "      operationId: find",
                f"      parameters: [{{name: q, in: query, schema: {{type: string{example}}}}}]",
                "",
            ]
        )

    # where the document does not use them, they cost nothing
    registry = add_service(settings, write(tmp_path, spec(""), "fine.yaml"), name="fine")
    assert registry.get("fine.find") is not None
    # where an operation's schema uses them, the error names it
    with pytest.raises(UserError, match=r"GET /x: a schema expands to more than") as err:
        add_service(settings, write(tmp_path, spec(", example: *l11"), "bomb.yaml"), name="bomb")
    assert "YAML anchors" in (err.value.hint or "")
    assert "bomb" not in openapi.load_services(settings)


@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_a_spec_nested_too_deep_is_a_user_error(settings, tmp_path, kind):
    depth = 100_000 if kind == "json" else 2_000
    inner = "[" * depth + "]" * depth
    text = (
        '{"openapi": "3.1.0", "paths": {"/x": {"get": {"x-deep": ' + inner + "}}}}"
        if kind == "json"
        else "openapi: 3.1.0\npaths: {/x: {get: {x-deep: " + inner + "}}}\n"
    )
    spec = write(tmp_path, text, f"deep.{kind}")
    with pytest.raises(UserError, match="nests values deeper than OpenLAM can read"):
        add_service(settings, spec)


def test_a_spec_larger_than_the_limit_is_refused_unread(settings, tmp_path, crm, monkeypatch):
    monkeypatch.setattr(openapi.compile, "MAX_SPEC_BYTES", 1000)
    spec = write(tmp_path, {"openapi": "3.1.0", "paths": {"/ping": MINIMAL_OP}, "x": "y" * 2000})
    with pytest.raises(UserError, match="is larger than"):
        add_service(settings, spec)
    with pytest.raises(UserError, match=f"the spec {crm.url}/openapi.json is larger than"):
        add_service(settings, f"{crm.url}/openapi.json")


def test_argument_schemas_are_checked_at_first_use_not_at_every_start(settings, crm, monkeypatch):
    from openlam.actions import spec as spec_module

    checked: list[Any] = []
    real = spec_module._checker_for
    monkeypatch.setattr(spec_module, "_checker_for", lambda s: checked.append(s) or real(s))
    registry = add_service(settings, f"{crm.url}/openapi.json", auth="bearer:CRM_TOKEN")
    assert len(registry) > 3 and checked == []  # loading checked none
    create = registry.get("acme.create_contact")
    assert create is not None and create.arg_errors({}) != []
    assert create.arg_errors({}) != [] and len(checked) == 1  # once, then kept
    # a schema that is not JSON Schema checks nothing (the service validates)
    lenient = spec_module.json_schema_validator({"type": 12})
    lenient({"anything": True})
