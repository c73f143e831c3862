"""An action's argument model and JSON schemas are built on first use; a plugin's bad
type hints are still reported when it is registered, not at its first call."""

from __future__ import annotations

import types

import pytest
from typing_extensions import TypedDict

from openlam.actions.registry import ActionRegistry
from openlam.actions.spec import Risk, action
from openlam.errors import UserError


class Ticket(TypedDict):
    ticket_id: str


def test_schemas_are_built_when_first_used_and_describe_the_function() -> None:
    @action("t.open", risk=Risk.write)
    def open_ticket(customer: str, priority: int = 2) -> Ticket:
        """Open a ticket.

        Args:
            customer: who asked
        """
        return {"ticket_id": "T1"}

    spec = open_ticket.__openlam_action__
    assert "input_schema" not in vars(spec)  # nothing built by the decorator
    assert spec.input_schema["required"] == ["customer"]
    assert spec.input_schema["properties"]["customer"]["description"] == "who asked"
    assert list(spec.output_schema["properties"]) == ["ticket_id"]
    assert spec.validate_args({"customer": "C1", "priority": "3"}) == {"customer": "C1",
                                                                       "priority": 3}
    assert spec.arg_errors({"priority": 1}) == ["customer: Field required"]
    assert spec.summary == "Open a ticket."


class NoSchema:  # not a type pydantic can describe
    pass


def test_a_plugins_bad_return_type_is_reported_when_it_is_registered() -> None:
    def broken() -> NoSchema:
        return NoSchema()

    decorated = action("t.broken")(broken)  # deferred: decorating does not fail
    module = types.ModuleType("third_party_plugin")
    module.broken = decorated
    with pytest.raises(UserError, match="its return type has no JSON schema"):
        ActionRegistry().add_module(module, source="third_party")
    with pytest.raises(UserError, match="its return type has no JSON schema"):
        ActionRegistry().add_actions([decorated])
