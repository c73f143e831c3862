"""Which actions the planner sees with full signatures (issue 10): every action of a
source the goal names, those of sources the agent was given, then word overlap."""

from __future__ import annotations

from openlam.actions.registry import ActionRegistry, load_plugins
from openlam.actions.spec import ActionSpec, Risk
from openlam.loop.perceive import AgentProfile, perceive
from openlam.loop.plan import system_prompt

OPERATIONS = (
    "book_reservation",
    "cancel_reservation",
    "get_reservation_details",
    "get_user_details",
    "list_all_airports",
    "search_direct_flight",
    "search_onestop_flight",
    "send_certificate",
    "update_reservation_baggages",
    "update_reservation_flights",
    "update_reservation_passengers",
    "calculate",
    "transfer_to_human_agents",
    "get_flight_status",
)


def service(name: str) -> list[ActionSpec]:
    return [
        ActionSpec(
            name=f"{name}.{op}",
            description=f"{op.replace('_', ' ')}.",
            input_schema={"type": "object", "properties": {"reservation_id": {"type": "string"}}},
            output_schema={},
            risk=Risk.read,
            source=f"openapi:{name}",
        )
        for op in OPERATIONS
    ]


def registry_with(*specs: ActionSpec) -> ActionRegistry:
    registry = load_plugins(ActionRegistry())
    for spec in specs:
        registry.add(spec)
    return registry


def detailed(prompt: str) -> set[str]:
    return {
        line[2:].split("(")[0]
        for line in prompt.splitlines()
        if line.startswith("- ") and "(" in line
    }


def test_a_goal_naming_a_service_gets_all_its_signatures():
    registry = registry_with(*service("airline"))
    p = perceive("Handle airline task 14", AgentProfile(), registry)
    shown = detailed(system_prompt(p))
    assert {f"airline.{op}" for op in OPERATIONS} <= shown  # all 14, beyond the usual 10
    assert not any(name.startswith("email.") for name in shown)


def test_an_agent_given_a_service_gets_its_signatures_without_naming_it():
    registry = registry_with(*service("tau2"))
    agent = AgentProfile(id="airline_agent", actions=("files.*", "tau2.*"))
    p = perceive("Handle task 14", agent, registry)
    assert {f"tau2.{op}" for op in OPERATIONS} <= detailed(system_prompt(p))


def test_without_a_named_or_given_source_word_overlap_decides_and_stays_short():
    registry = registry_with(*service("tau2"))
    p = perceive("write a summary to summary.md", AgentProfile(), registry)
    shown = detailed(system_prompt(p))
    assert "files.write" in shown and len(shown) <= 10
    assert not any(name.startswith("tau2.") for name in shown)
    assert "tau2.{" in system_prompt(p)  # the rest stay usable, listed by name


def test_a_goal_naming_a_service_by_its_title_gets_its_signatures(settings):
    """The issue's case: a service added as `tau2` whose spec is titled for the airline."""
    from openlam.actions import openapi
    from tests.test_python_api import OPERATION

    compiled = {
        "format": 2,
        "title": "τ²-bench airline API",
        "operations": [{**OPERATION, "action": op} for op in OPERATIONS],
    }
    openapi.save_service(
        settings,
        openapi.ServiceConfig(name="tau2", spec="tau2.json", base_url="http://127.0.0.1:9"),
        compiled,
    )
    registry = load_plugins(ActionRegistry(), settings=settings)
    assert registry.titles["tau2"] == "τ²-bench airline API"
    p = perceive("Handle airline task 14", AgentProfile(), registry)
    assert {f"tau2.{op}" for op in OPERATIONS} <= detailed(system_prompt(p))
    # "API" in a title is no name: a goal about some API does not pull the service in
    p = perceive("Document our public API", AgentProfile(), registry)
    assert not any(n.startswith("tau2.") for n in detailed(system_prompt(p)))
