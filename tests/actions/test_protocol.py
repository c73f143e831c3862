"""What every action declares beyond its schema: egress, how a repeat reaches the peer
(delivery) and whether its effect is checked — and the built-ins' declarations."""

from __future__ import annotations

from typing import Any

import pytest

from openlam.actions.registry import load_plugins
from openlam.actions.spec import ActionContext, ActionSpec, Risk, action


def spec_of(func: Any) -> ActionSpec:
    return func.__openlam_action__


async def _found(args: dict[str, Any], ctx: ActionContext) -> Any:
    return {"earlier": True}


def test_delivery_says_what_a_repeat_does() -> None:
    @action("t.read", idempotent=True, keyed=True, find_effect=_found)
    def harmless() -> None: ...

    @action("t.keyed", risk=Risk.financial, keyed=True, find_effect=_found)
    def keyed() -> None: ...

    @action("t.checked", risk=Risk.external, egress=True, find_effect=_found)
    def checked() -> None: ...

    @action("t.plain", risk=Risk.external)
    def plain() -> None: ...

    assert [spec_of(f).delivery for f in (harmless, keyed, checked, plain)] == [
        "idempotent",
        "keyed",
        "checked",
        "at least once",
    ]
    assert spec_of(checked).egress and not spec_of(plain).egress
    assert spec_of(checked).find_effect is _found


async def test_an_effect_check_may_ask_the_peer_asynchronously(workspace: Any) -> None:
    async def ask_peer(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
        return None if output["id"] == "kept" else f"the peer has no {output['id']}"

    def local(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
        return None if output["id"] else "no id"

    @action("t.remote", verify=ask_peer)
    def remote() -> None: ...

    @action("t.local", verify=local)
    def nearby() -> None: ...

    ctx = ActionContext(run_id="r", step_id="s", idempotency_key="r:s", workspace=workspace)
    spec = spec_of(remote)
    assert await spec.check_effect({}, {"id": "kept"}, ctx) is None
    assert await spec.check_effect({}, {"id": "lost"}, ctx) == "the peer has no lost"
    # Callers that do not await (a synchronous verify call) get the answer too.
    assert spec.verify is not None and spec.verify({}, {"id": "lost"}, ctx) == (
        "the peer has no lost"
    )
    assert await spec_of(nearby).check_effect({}, {"id": ""}, ctx) == "no id"
    assert await spec_of(harmless_action).check_effect({}, {}, ctx) is None


@action("t.none")
def harmless_action() -> None: ...


# name: (egress, delivery, effect checked)
BUILTINS: dict[str, tuple[bool, str, bool]] = {
    "browser.click": (True, "checked", False),
    "browser.fill": (False, "idempotent", False),
    "browser.open": (True, "idempotent", False),
    "browser.screenshot": (False, "idempotent", True),
    "browser.submit": (True, "checked", True),
    "browser.text": (False, "idempotent", False),
    "crm.activity_log": (False, "idempotent", True),
    "crm.company_get": (False, "idempotent", False),
    "crm.company_upsert": (False, "idempotent", True),
    "crm.contact_find": (False, "idempotent", False),
    "crm.contact_get": (False, "idempotent", False),
    "crm.contact_upsert": (False, "idempotent", True),
    "crm.deal_create": (False, "idempotent", True),
    "crm.deal_list": (False, "idempotent", False),
    "crm.deal_update_stage": (False, "idempotent", True),
    "crm.note_add": (False, "idempotent", True),
    "crm.search": (False, "idempotent", False),
    "documents.write_csv": (False, "idempotent", True),
    "documents.write_html": (False, "idempotent", True),
    "documents.write_markdown": (False, "idempotent", True),
    "documents.write_pdf": (False, "idempotent", True),
    "email.list": (False, "idempotent", False),
    "email.read": (False, "idempotent", False),
    "email.search": (False, "idempotent", False),
    "email.send": (True, "checked", True),
    "files.copy": (False, "idempotent", True),
    "files.read": (False, "idempotent", False),
    "files.write": (False, "idempotent", True),
    "http.get": (True, "idempotent", False),
    "human.ask": (False, "idempotent", False),
    "notes.post": (False, "idempotent", False),
    "notes.read": (False, "idempotent", False),
    "payments.create_customer": (False, "keyed", True),
    "payments.create_invoice": (True, "keyed", True),
    "payments.create_payment_link": (False, "keyed", True),
    "payments.find_customers": (False, "idempotent", False),
    "payments.refund": (False, "keyed", True),
    "search.documents": (False, "idempotent", False),
    "search.web": (False, "idempotent", False),
    "social.discord_post": (True, "checked", True),
    "social.mastodon_post": (True, "keyed", True),
    "social.mattermost_post": (True, "checked", False),
    "social.slack_post": (True, "checked", False),
    "web.fetch": (True, "idempotent", False),
}


def test_every_builtin_declares_egress_delivery_and_its_check() -> None:
    builtins = {
        s.name: s
        for s in load_plugins()
        if s.name.split(".")[0] in {n.split(".")[0] for n in BUILTINS}
    }
    assert set(builtins) == set(BUILTINS), "a new built-in must be classified here"
    declared = {n: (s.egress, s.delivery, s.verify is not None) for n, s in builtins.items()}
    assert declared == BUILTINS
    # no external effect is left at "at least once": each is keyed or checked
    loose = [
        n
        for n, s in builtins.items()
        if s.risk in (Risk.external, Risk.financial) and s.delivery == "at least once"
    ]
    assert loose == []


@pytest.mark.parametrize("name", ["http.get", "web.fetch", "browser.open", "email.send"])
def test_actions_that_send_to_a_plan_chosen_host_are_egress(name: str) -> None:
    spec = load_plugins().get(name)
    assert spec is not None and spec.egress


def test_an_agents_view_follows_the_actions_added_after_it_was_taken() -> None:
    """Views are kept per set of patterns (every run asks for its agent's); an action
    added later (``Workforce.add_actions`` in a running process) is in the next view,
    and an excluded one stays out."""
    from openlam.actions.registry import ActionRegistry

    def spec(name: str) -> ActionSpec:
        return ActionSpec(name, name, {"type": "object"}, {}, risk=Risk.read, func=lambda: None)

    registry = ActionRegistry([spec("crm.lookup"), spec("crm.delete")])
    patterns = ["crm.*", "!crm.delete"]
    assert [s.name for s in registry.matching(patterns)] == ["crm.lookup"]
    registry.add(spec("crm.update"))
    registry.add(spec("mail.send"))
    assert [s.name for s in registry.matching(patterns)] == ["crm.lookup", "crm.update"]
    assert "crm.update" in registry.subset(patterns)
    view = registry.matching(patterns)
    view.clear()  # a caller changing its list changes no one else's
    assert [s.name for s in registry.matching(patterns)] == ["crm.lookup", "crm.update"]
