"""References reach into tools' JSON text (issue 10): ``${s1.output.id}`` works on an
output that is JSON as text, or an MCP-style ``{"text": …}``; a ``Json[T]`` return
annotation declares the fields, so a plan naming a wrong one is sent back."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Json

from openlam.actions.registry import ActionRegistry
from openlam.actions.spec import Risk, spec_from_function
from openlam.loop.references import ReferenceError_, render, resolve
from openlam.loop.state import Plan
from openlam.loop.validate import validate_plan

OUTPUTS = {
    "a": '{"id": 7, "items": [{"sku": "A1"}]}',
    "m": {"text": '{"id": 8, "status": "open"}'},
    "t": "plain words",
}


def test_fields_of_json_text_are_reached_and_the_whole_output_stays_text():
    assert resolve("${a.output.id}", OUTPUTS) == 7
    assert resolve("${a.output.items.0.sku}", OUTPUTS) == "A1"
    assert resolve("${m.output.status}", OUTPUTS) == "open"
    assert resolve("${m.output.text}", OUTPUTS) == OUTPUTS["m"]["text"]
    assert resolve("${a.output}", OUTPUTS) == OUTPUTS["a"]
    assert resolve("order ${a.output.id}: ${m.output.status}", OUTPUTS) == "order 7: open"


def test_text_that_is_not_json_has_no_fields():
    with pytest.raises(ReferenceError_, match="output of step t has no field 'id'"):
        resolve("${t.output.id}", OUTPUTS)


def test_an_answer_is_rendered_only_from_steps_that_succeeded():
    def output_of(step: str):
        return OUTPUTS[step]

    assert render("Order ${a.output.id} is ${m.output.status}.", output_of) == "Order 7 is open."
    with pytest.raises(ReferenceError_, match="step zz did not succeed"):
        render("${zz.output.id}", output_of)


class Order(BaseModel):
    id: str
    status: str


def get_order(order_id: str) -> Json[Order]:
    """Get an order as JSON text."""
    return json.dumps({"id": order_id, "status": "shipped"})


def test_a_json_return_annotation_declares_the_output_fields():
    spec = spec_from_function(get_order, "shop.get_order", risk=Risk.read)
    assert spec.signature().startswith("shop.get_order(order_id: str) -> {id, status}")
    registry = ActionRegistry([spec])
    plan = Plan.model_validate(
        {
            "steps": [{"id": "g", "action": "shop.get_order", "args": {"order_id": "1"}}],
            "answer": "Order ${g.output.state}",
        }
    )
    [error] = validate_plan(plan, registry)
    assert "shop.get_order returns {id, status}, not state" in error
