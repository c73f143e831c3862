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
    # validation is the first use here: it must build the model, not skip it
    assert spec.validate_args({"customer": "C1", "priority": "3"}) == {
        "customer": "C1",
        "priority": 3,
    }
    assert spec.input_schema["required"] == ["customer"]
    assert spec.input_schema["properties"]["customer"]["description"] == "who asked"
    assert list(spec.output_schema["properties"]) == ["ticket_id"]
    assert spec.arg_errors({"priority": 1}) == ["customer: Field required"]
    assert spec.summary == "Open a ticket."


def test_every_builtin_validates_its_arguments_before_its_schemas_are_read() -> None:
    from openlam.actions.registry import load_plugins

    registry = load_plugins()
    fresh = [s for s in registry if "_build_schemas" in vars(s)]
    assert fresh  # the built-ins are deferred
    for spec in fresh:
        assert spec.args_model is not None, spec.name  # built on access, never skipped
    assert (
        registry.get("crm.activity_log")
        .validate_args({"kind": "email", "summary": "x", "occurred_at": "2026-01-01T00:00:00"})[
            "occurred_at"
        ]
        .year
        == 2026
    )


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


def test_a_function_without_a_name_is_refused_as_an_action() -> None:
    """A lambda became 'local.<lambda>' — a name no plan can call, shared by every lambda
    (the second was renamed, the third collided at the workforce's start)."""
    import functools

    def named(x: int) -> int:
        return x

    for nameless in (lambda x: x, functools.partial(named, 1)):
        with pytest.raises(UserError, match="has no name to be called by"):
            ActionRegistry().add_actions([nameless])
    assert ActionRegistry().add_actions([named]) == ["local.named"]
