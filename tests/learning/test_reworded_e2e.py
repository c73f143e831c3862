"""Reworded goals end to end: the order-status shape learned once from a fake model over
HTTP, then phrased other ways — each done for its own customer and order with no model
request (counted on the server) — while a goal asking for something else still goes to
the model. Real CRM, SMTP server, Slack webhook look-alike and order service."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlam import Workforce
from openlam.loop.state import RunStatus
from tests.actions.test_brief_goal import Inbox, smtp  # noqa: F401 (fixture)
from tests.fakes.model_servers import FakeOpenAI
from tests.learning.test_replay_e2e import (  # noqa: F401 (shop is a fixture)
    CUSTOMERS,
    SHAPE,
    model_settings,
    planner,
    shop,
)

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

REWORDED = [
    "Find customer {email} and get their order {order}, then mail them its status and "
    "notify support",
    "Look up the customer {email}, fetch order {order}, send them the status, tell support",
    "Please look up customer {email}; fetch the order {order}; email its status; notify support.",
]


@pytest.mark.timeout(240)
async def test_a_reworded_goal_replays_and_another_request_asks_the_model(
    workspace: Path,
    shop,  # noqa: F811 (the fixture)
) -> None:
    with FakeOpenAI(planner(shop["orders"].server.url)) as server:
        settings = model_settings(workspace, server)
        async with Workforce(settings=settings, model="openai:fake-planner") as wf:
            email, order = CUSTOMERS[0]
            first = await wf.run(SHAPE.format(email=email, order=order))
            assert first.status is RunStatus.completed, first.summary

            for text, (email, order) in zip(REWORDED, CUSTOMERS[1:4], strict=True):
                before = server.chat_requests
                done = await wf.run(text.format(email=email, order=order))
                assert done.status is RunStatus.completed, done.summary
                assert server.chat_requests == before and done.usage.model_requests == 0
                assert "is a rewording (same words and typed values) of playbook" in done.summary

            before = server.chat_requests
            email, order = CUSTOMERS[4]
            other = await wf.run(
                SHAPE.format(email=email, order=order).replace("its status", "its invoice")
            )
            assert server.chat_requests == before + 1, other.summary
            assert "no model needed" not in other.summary

    inbox: Inbox = shop["inbox"]
    sent = [raw.decode() for raw in inbox.received]
    for (email, order), text in zip(CUSTOMERS[:4], sent, strict=False):
        assert f"To: {email}" in text and f"shipped-{order}" in text
    slack = [p["payload"]["text"] for p in shop["hooks"].posts("slack")]
    assert slack[:4] == [f"Told {e} the status of order {o}" for e, o in CUSTOMERS[:4]]
