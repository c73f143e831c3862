"""Routing: deterministic scoring over the whole catalog, and the model-assisted variant
with its fallback. No real model: ``ask`` is a plain async function."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest

from openlam.errors import ModelError, UserError
from openlam.org import load_catalog
from openlam.org.loader import Catalog
from openlam.org.routing import (
    Router,
    implied_actions,
    parse_choice,
    route,
    route_with_model,
    stem,
    tokens,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.mark.parametrize(
    "variants",
    [
        "invoice invoices invoicing invoiced",
        "recruit recruiting recruiter recruits",
        "hire hiring hired",
        "plan planning planned plans",
        "process processes processing",
        "company companies",
        "price prices pricing",
        "security secure",
        "ship shipping shipment",
    ],
)
def test_stemming_conflates_word_forms(variants: str):
    assert len({stem(w) for w in variants.split()}) == 1, {w: stem(w) for w in variants.split()}


def test_tokens_drop_stop_words_but_keep_acronyms():
    assert tokens("Please make the IT laptop ready for it") == ["it", "laptop", "readi"]
    assert tokens("the customer's tickets") == ["custom", "ticket"]


@pytest.mark.parametrize(
    ("goal", "department", "agent"),
    [
        (
            "Issue a refund to Jane Doe for order 1182, she cancelled within 14 days",
            "finance",
            "billing_operations_specialist",
        ),
        (
            "Send Initech an invoice for 40 hours of consulting at net 30",
            "finance",
            "accounts_receivable_specialist",
        ),
        ("Review the mutual NDA from Hooli and flag risky clauses", "legal", None),
        ("Research three competitors and draft a one-page sales brief", "research", None),
        ("Schedule interviews with the three shortlisted backend candidates", "people", None),
        ("Our production API is returning 502 errors, restore service", "engineering", None),
        (
            "Post the launch announcement to our Mastodon account",
            "marketing",
            "social_media_manager",
        ),
        (
            "Someone reported a phishing email asking for their password",
            "security",
            "security_analyst",
        ),
    ],
)
def test_routes_goals_to_the_owning_department(
    catalog: Catalog, goal: str, department: str, agent: str | None
):
    chosen = route(goal, catalog)
    assert chosen.department.id == department, chosen.reason
    if agent is not None:
        assert chosen.agent.id == agent, chosen.reason
    assert chosen.method == "scoring" and chosen.score > 0


def test_reason_says_who_and_why(catalog: Catalog):
    chosen = route("Issue a refund to Jane Doe for order 1182", catalog)
    agent = chosen.agent
    assert chosen.reason.startswith(f"Chose {agent.name} ({agent.id}, {agent.title}, Finance)")
    assert "“refund”" in chosen.reason
    assert "it may use the actions the goal implies (refund)" in chosen.reason
    assert "Next best department:" in chosen.reason


def test_routing_is_deterministic_and_ranks_everyone(catalog: Catalog):
    goal = "Forecast next quarter's cash position across our bank accounts"
    first, second = route(goal, catalog), route(goal, catalog)
    assert (first.agent.id, first.score, first.reason) == (
        second.agent.id,
        second.score,
        second.reason,
    )
    assert len(first.candidates) == len(catalog)
    scores = [c.score for c in first.candidates]
    assert scores == sorted(scores, reverse=True)


def test_a_goal_nobody_matches_stays_with_the_chief_of_staff(catalog: Catalog):
    chosen = route("zorblax the quuxification", catalog)
    assert chosen.agent.id == "chief_of_staff" and chosen.score == 0
    assert "no role matched" in chosen.reason


def test_department_restricts_the_choice(catalog: Catalog):
    chosen = route("Write a blog post about our new pricing", catalog, department="Legal")
    assert chosen.department.id == "legal"
    assert "the department Legal and Compliance was given" in chosen.reason
    assert all(c.department.id == "legal" for c in chosen.candidates)
    with pytest.raises(UserError, match="no department"):
        route("anything", catalog, department="astrology")


def _twins(workspace: Path, refund_actions: str) -> Catalog:
    """Two agents identical in every word, differing only in permitted actions."""
    folder = workspace / "agents"
    folder.mkdir(exist_ok=True)
    body = """
        department:
          id: money
          name: Money
          description: Handles customer money matters.
          keywords: [money]
        agents:
          - id: boss
            name: Boss
            title: Boss
            manager: null
            instructions: Leads the team. Decides what matters most this week.
          - id: clerk_a
            name: Clerk
            title: Clerk
            manager: boss
            instructions: Handles customer requests about orders. Keeps records tidy.
            actions: [email.send]
          - id: clerk_b
            name: Clerk
            title: Clerk
            manager: boss
            instructions: Handles customer requests about orders. Keeps records tidy.
            actions: [ACTIONS]
    """.replace("ACTIONS", refund_actions)
    (folder / "org.yaml").write_text(textwrap.dedent(body), encoding="utf-8")
    return load_catalog(workspace, builtin=False)


def test_permitted_actions_decide_between_otherwise_equal_agents(workspace: Path):
    goal = "Refund the customer for order 7 and email them a confirmation"
    assert implied_actions(tokens(goal))  # the goal implies refund and email actions
    with_refund = route(goal, _twins(workspace, "payments.refund, email.send"))
    assert with_refund.agent.id == "clerk_b"
    without = route(goal, _twins(workspace, "files.read"))
    assert without.agent.id == "clerk_a"  # clerk_a at least may email
    assert "it is not permitted refund" in without.reason


def test_ties_go_to_the_senior_agent_who_can_delegate(workspace: Path):
    cat = _twins(workspace, "email.send")
    chosen = route("Handles customer requests about orders", cat)
    assert chosen.agent.id == "clerk_a"  # a tie between equals: by id
    assert Router(cat).rank("money")[0].agent.id == "boss"  # department-only match: the head


# -- model-assisted ---------------------------------------------------------------------------


def test_model_picks_from_the_shortlist(catalog: Catalog):
    prompts: list[str] = []

    async def ask(prompt: str) -> str:
        prompts.append(prompt)
        return json.dumps(
            {
                "agent": "competitive_intelligence_analyst",
                "reason": "Competitor profiles are this analyst's core job.",
            }
        )

    goal = "Research three competitors and draft a one-page sales brief"
    chosen = asyncio.run(route_with_model(goal, catalog, ask, k=5))
    assert chosen.method == "model"
    assert chosen.agent.id == "competitive_intelligence_analyst"
    assert "picked by the model from a shortlist of 5" in chosen.reason
    assert "Competitor profiles are this analyst's core job." in chosen.reason
    assert "The scoring alone would have chosen" in chosen.reason
    (prompt,) = prompts
    assert goal in prompt and prompt.count("\n- ") == 5
    assert "competitive_intelligence_analyst | Competitive Intelligence Analyst" in prompt


def test_model_answer_as_bare_id_or_fenced_json(catalog: Catalog):
    ids = ["accountant", "controller"]
    assert parse_choice("controller", ids) == ("controller", "")
    assert parse_choice('```json\n{"agent": "accountant", "reason": "books"}\n```', ids) == (
        "accountant",
        "books",
    )
    assert parse_choice("accountant or controller", ids) == (None, "")
    assert parse_choice('{"agent": "ceo"}', ids) == (None, "")


def test_a_reasoning_models_thoughts_are_not_read_as_its_choice(catalog: Catalog):
    ids = ["accountant", "controller"]
    thinking = (
        "<think>The controller owns close {month-end}; maybe "
        '{"agent": "controller"}? No — booking an invoice is the accountant\'s job.</think>\n'
    )
    assert parse_choice(thinking + '{"agent": "accountant", "reason": "books"}', ids) == (
        "accountant",
        "books",
    )
    assert parse_choice(thinking + "accountant", ids) == ("accountant", "")


@pytest.mark.parametrize(
    "answer",
    [
        '{"agent": "ceo", "reason": "the boss should do it"}',  # a real agent, not shortlisted
        "I think the finance team should handle this.",
        '{"agent": 42}',
        "",
    ],
)
def test_bad_model_answers_fall_back_to_scoring(catalog: Catalog, answer: str):
    async def ask(prompt: str) -> str:
        return answer

    goal = "Send Initech an invoice for 40 hours of consulting"
    chosen = asyncio.run(route_with_model(goal, catalog, ask))
    scored = route(goal, catalog)
    assert chosen.method == "fallback"
    assert chosen.agent.id == scored.agent.id
    assert chosen.reason.startswith("The model's answer named no agent from the shortlist")
    assert scored.reason in chosen.reason


def test_model_errors_and_timeouts_fall_back_to_scoring(catalog: Catalog):
    async def broken(prompt: str) -> str:
        raise ModelError("connection refused by 127.0.0.1:11434")

    async def stuck(prompt: str) -> str:
        await asyncio.sleep(30)
        return "accountant"

    goal = "Reconcile the March bank statement"
    failed = asyncio.run(route_with_model(goal, catalog, broken))
    assert failed.method == "fallback"
    assert "The model could not be asked (connection refused by 127.0.0.1:11434)" in failed.reason
    late = asyncio.run(route_with_model(goal, catalog, stuck, timeout=0.05))
    assert late.method == "fallback" and late.agent.id == route(goal, catalog).agent.id


def test_with_no_signal_the_model_sees_every_department_head(catalog: Catalog):
    prompts: list[str] = []

    async def ask(prompt: str) -> str:
        prompts.append(prompt)
        return '{"agent": "chief_people_officer", "reason": "it is about a colleague"}'

    chosen = asyncio.run(route_with_model("zorblax the quuxification", catalog, ask))
    assert chosen.agent.id == "chief_people_officer" and chosen.method == "model"
    heads = {h.id for d in catalog.departments if (h := catalog.head(d)) is not None}
    listed = {line.split(" | ")[0][2:] for line in prompts[0].splitlines() if line.startswith("- ")}
    assert listed == heads | {"chief_of_staff"}


def test_routing_honours_an_agents_exclusions():
    """An agent given everything but payments (``["*", "!payments.*"]``, as an Agent or
    an override may say) is not chosen for a payment: the run would refuse it later."""
    from openlam.org.model import Agent
    from openlam.org.routing import permits

    clerk = Agent(
        id="clerk",
        name="Clerk",
        title="Clerk",
        department="operations",
        manager=None,
        instructions="Handles the paperwork of the office.",
        actions=("*", "!payments.*"),
    )
    assert permits(clerk, ["files.write"])
    assert not permits(clerk, ["payments.create_invoice"])
