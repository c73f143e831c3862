"""Learning from experience, end to end (issue 13): one goal of a shape planned by a
fake OpenAI-compatible model over HTTP; ten more of that shape replayed with no model
request (and with no model configured at all); another shape still asks the model; a
replay whose action now fails is demoted; a denied approval becomes a lesson that the
next plan request carries. Real CRM (project database), SMTP server (aiosmtpd), Slack
webhook look-alike and order service over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from openlam import Workforce
from openlam.actions.builtin import crm
from openlam.config import Settings, load_settings
from openlam.loop.state import RunStatus
from tests.actions.test_brief_goal import PASSWORD, Inbox, smtp  # noqa: F401 (fixture)
from tests.conftest import LOCAL_NETWORK, allow_policy
from tests.fakes.action_ctx import action_context
from tests.fakes.fake_webhooks import SLACK_HOOK, FakeWebhooks
from tests.fakes.http import FakeHTTPServer, json_response
from tests.fakes.model_servers import FakeOpenAI

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SHAPE = "Look up customer {email}, fetch their order {order}, email them its status, notify support"
GOAL = re.compile(r"customer (\S+), fetch their order (\d+)")
CUSTOMERS = [(f"buyer{i}@shop{i}.test", 4100 + i) for i in range(12)]


class Orders:
    """An order service: GET /orders/<n> → {"order", "status"}; ``broken`` → 404."""

    def __init__(self) -> None:
        self.broken = False
        self.server = FakeHTTPServer(self.handle)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes):
        n = path.rsplit("/", 1)[-1]
        if self.broken or not path.startswith("/orders/"):
            return json_response({"error": f"no order {n}"}, 404)
        return json_response({"order": int(n), "status": f"shipped-{n}"})


def order_plan(goal: str, orders_url: str) -> dict[str, Any]:
    email, order = GOAL.search(goal).groups()  # type: ignore[union-attr]
    return {
        "steps": [
            {"id": "who", "action": "crm.contact_get", "args": {"email": email}},
            {"id": "order", "action": "http.get", "args": {"url": f"{orders_url}/orders/{order}"}},
            {
                "id": "mail",
                "action": "email.send",
                "depends_on": ["who", "order"],
                "args": {
                    "to": [email],
                    "subject": f"Your order {order}",
                    "body": "Hello ${who.output.name}, here is your order: ${order.output.text}",
                },
            },
            {
                "id": "notify",
                "action": "social.slack_post",
                "depends_on": ["mail"],
                "args": {"text": f"Told {email} the status of order {order}"},
            },
        ]
    }


def user_goal(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def system_prompt(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "system")


@pytest.fixture
def shop(
    workspace: Path,
    smtp: tuple[Inbox, int],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    inbox, port = smtp
    orders = Orders()
    with orders.server, FakeWebhooks() as hooks:
        monkeypatch.setenv("SMTP_PASSWORD", PASSWORD)
        monkeypatch.setenv("SLACK_WEBHOOK_URL", hooks.url + SLACK_HOOK)
        toml = (
            '[email]\nfrom = "Shop <support@shop.test>"\n'
            f'[email.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            'username = "agent"\n' + LOCAL_NETWORK
        )
        # the shop's own CRM and order service are internal: their answers are trusted
        allow_policy(
            workspace,
            "scope: org\nallow_external: [email.send, social.slack_post]\n"
            "trusted_outputs: [crm.contact_get, http.get]\n",
        )
        seed = action_context(workspace, toml)
        for i, (email, _order) in enumerate(CUSTOMERS):
            crm.contact_upsert(seed, email=email, name=f"Buyer {i}")
        yield {"inbox": inbox, "hooks": hooks, "orders": orders, "toml": toml}


def planner(orders_url: str):
    def reply(body: dict[str, Any]) -> dict[str, Any]:
        goal = user_goal(body)
        if "So far:" in goal:  # a replan after a failed step
            return {"steps": [], "note": "nothing else can be done"}
        if GOAL.search(goal):
            return order_plan(goal, orders_url)
        email = re.search(r"\S+@\S+\.test", goal).group()  # type: ignore[union-attr]
        return {
            "steps": [
                {
                    "id": "who",
                    "action": "crm.contact_get",  # another shape
                    "args": {"email": email},
                }
            ]
        }

    return reply


def model_settings(workspace: Path, server: FakeOpenAI) -> Settings:
    return load_settings(workspace).with_overrides(
        openai_base_url=f"{server.url}/v1", step_timeout=10.0
    )


def learned(workspace: Path, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(f"sqlite:///{workspace / '.openlam' / 'openlam.db'}")
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    engine.dispose()
    return rows


@pytest.mark.timeout(300)
async def test_a_shape_learned_once_is_replayed_without_a_model(workspace: Path, shop) -> None:
    orders = shop["orders"]
    with FakeOpenAI(planner(orders.server.url)) as server:
        settings = model_settings(workspace, server)
        async with Workforce(settings=settings, model="openai:fake-planner") as wf:
            email, order = CUSTOMERS[0]
            first = await wf.run(SHAPE.format(email=email, order=order))
            assert first.status is RunStatus.completed, first.summary
            assert server.chat_requests == 1 == first.usage.model_requests

            replays = []
            for email, order in CUSTOMERS[1:11]:
                before = server.chat_requests
                outcome = await wf.run(SHAPE.format(email=email, order=order))
                replays.append((outcome, server.chat_requests - before))
            free = [
                o
                for o, asked in replays
                if o.status is RunStatus.completed and asked == 0 and o.usage.model_requests == 0
            ]
            assert len(free) >= 9, [(o.status, o.summary, n) for o, n in replays]
            assert all("no model needed: the goal matches playbook pb-" in o.summary for o in free)
            # a replayed plan passed the governance gate like any other: every action
            # has its policy decision and its audit record
            audited = wf.runtime.gate.audit.records(run_id=free[0].run_id)
            assert sorted(r["step_id"] for r in audited if r["kind"] == "action") == [
                "mail",
                "notify",
                "order",
                "who",
            ]
            assert {
                r["body"]["rule_id"]
                for r in audited
                if r["kind"] == "action" and r["step_id"] == "mail"
            } == {"allow_external:email.send"}

            # Another shape still goes to the model.
            before = server.chat_requests
            other = await wf.run(f"Summarise what we know about {CUSTOMERS[2][0]}")
            assert other.status is RunStatus.completed, other.summary
            assert server.chat_requests == before + 1

    # Each replay did its own customer's work: the right recipient, the right order.
    inbox: Inbox = shop["inbox"]
    assert len(inbox.received) == 11
    for (email, order), raw in zip(CUSTOMERS[:11], inbox.received, strict=True):
        text = raw.decode()
        assert f"To: {email}" in text and f"shipped-{order}" in text
    slack = [p["payload"]["text"] for p in shop["hooks"].posts("slack")]
    assert slack == [f"Told {e} the status of order {o}" for e, o in CUSTOMERS[:11]]

    # The same ten goals with no model configured at all: the offline planner serves
    # the learned playbook.
    offline = load_settings(workspace).with_overrides(step_timeout=10.0)
    async with Workforce(settings=offline, model="offline") as wf:
        done = [await wf.run(SHAPE.format(email=e, order=o)) for e, o in CUSTOMERS[1:11]]
    assert [o.status for o in done].count(RunStatus.completed) >= 9, [o.summary for o in done]
    assert all(o.usage.model_requests == 0 for o in done)
    assert len(inbox.received) == 21

    # Stored: one playbook with typed parameters and provenance — no email address and
    # no secret except as a parameter.
    playbooks = learned(workspace, "learn_playbooks")
    assert len(playbooks) == 2  # the order shape and the summary shape
    [pb] = [p for p in playbooks if "fetch their order" in p["shape"]]
    params = json.loads(pb["params"]) if isinstance(pb["params"], str) else pb["params"]
    assert params == {"p1": "email", "p2": "number"}
    assert pb["successes"] >= 20 and pb["failures"] == 0 and pb["model"] == "openai:fake-planner"
    stored = json.dumps(playbooks)
    assert not re.search(r"[\w.]+@[\w-]+\.test", stored)
    assert "slacksecret123" not in stored and PASSWORD not in stored
    assert "4101" not in stored


@pytest.mark.timeout(240)
async def test_a_replay_whose_action_fails_is_demoted(workspace: Path, shop) -> None:
    orders = shop["orders"]
    with FakeOpenAI(planner(orders.server.url)) as server:
        settings = model_settings(workspace, server)
        async with Workforce(settings=settings, model="openai:fake-planner") as wf:
            email, order = CUSTOMERS[0]
            assert (
                await wf.run(SHAPE.format(email=email, order=order))
            ).status is RunStatus.completed
            orders.broken = True  # the order service now answers 404
            failed = []
            for email, order in CUSTOMERS[1:3]:
                before = server.chat_requests
                outcome = await wf.run(SHAPE.format(email=email, order=order))
                failed.append(outcome)
                assert outcome.status is not RunStatus.completed
                assert "the goal matches playbook pb-" in outcome.summary
                # the replay failed, so the run replanned with the connected model
                assert server.chat_requests == before + 1
                assert "So far:" in user_goal(server.chat_bodies[-1])
            [pb] = learned(workspace, "learn_playbooks")
            assert (pb["failures"], pb["failing"]) == (2, 2)
            assert "404" in pb["last_failure"]

            # Demoted: the next goal of the shape is planned by the model again.
            orders.broken = False
            before = server.chat_requests
            email, order = CUSTOMERS[3]
            again = await wf.run(SHAPE.format(email=email, order=order))
            assert again.status is RunStatus.completed, again.summary
            assert server.chat_requests == before + 1
            assert "no model needed" not in again.summary


POLICY = """scope: org
allow_external: [social.slack_post]
trusted_outputs: [crm.contact_get, http.get]
rules:
  - {id: ask-before-email, action: email.send, decision: require_approval}
"""


@pytest.mark.timeout(240)
async def test_a_denied_approval_becomes_a_lesson_in_the_next_prompt(workspace: Path, shop) -> None:
    allow_policy(workspace, POLICY)  # email.send now needs a person's yes
    (workspace / "openlam.toml").write_text(
        shop["toml"] + '[governance.approvers]\n"*" = ["alice"]\n', encoding="utf-8"
    )
    with FakeOpenAI(planner(shop["orders"].server.url)) as server:
        settings = model_settings(workspace, server)
        async with Workforce(settings=settings, model="openai:fake-planner") as wf:
            gov = wf.runtime.gate
            email, order = CUSTOMERS[0]
            task = asyncio.create_task(wf.run(SHAPE.format(email=email, order=order)))
            while not (pending := gov.approvals.list(status="pending")):
                assert not task.done(), task.result()
                await asyncio.sleep(0.05)
            gov.approvals.deny(
                pending[0].id, "alice", "never email customers directly; support writes to them"
            )
            denied = await asyncio.wait_for(task, 60)
            assert denied.status is not RunStatus.completed
            assert learned(workspace, "learn_playbooks") == []  # a denied plan is no playbook

            asked = server.chat_requests  # the plan and a replan after the denial
            email, order = CUSTOMERS[1]
            task = asyncio.create_task(wf.run(SHAPE.format(email=email, order=order)))
            while not server.chat_requests > asked:
                await asyncio.sleep(0.05)
            prompt = system_prompt(server.chat_bodies[asked])
            assert "Lesson from a person about email.send" in prompt
            assert "never email customers directly" in prompt
            assert "buyer0@" not in prompt  # the address is kept to its domain
            while not (pending := gov.approvals.list(status="pending")):
                await asyncio.sleep(0.05)
            gov.approvals.deny(pending[0].id, "alice", "again no")
            await asyncio.wait_for(task, 60)

    shown = subprocess.run(
        [sys.executable, "-m", "openlam", "learn", "lessons"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPENLAM_WORKSPACE": str(workspace)},
    )
    assert shown.returncode == 0, shown.stderr
    assert "never email customers directly" in shown.stdout
    assert "alice denied email.send" in shown.stdout
