"""payments.* against a local service that answers like Stripe's API: request shapes,
authentication, idempotency and error mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openlam.actions.builtin import payments
from openlam.actions.registry import load_plugins
from openlam.actions.spec import ActionContext, Risk
from openlam.errors import ActionError
from openlam.loop.act import execute
from tests.fakes.action_ctx import action_context
from tests.fakes.fake_stripe import API_KEY, FakeStripe

CUSTOMER = payments.create_customer.__openlam_action__  # type: ignore[attr-defined]
FIND = payments.find_customers.__openlam_action__  # type: ignore[attr-defined]
LINK = payments.create_payment_link.__openlam_action__  # type: ignore[attr-defined]
INVOICE = payments.create_invoice.__openlam_action__  # type: ignore[attr-defined]
REFUND = payments.refund.__openlam_action__  # type: ignore[attr-defined]


def ctx_for(
    workspace: Path,
    stripe: FakeStripe,
    *,
    key: str | None = API_KEY,
    step_id: str = "s1",
    extra: str = "",
) -> ActionContext:
    toml = f'[payments.stripe]\nbase_url = "{stripe.url}"\n{extra}'
    secrets = {"STRIPE_API_KEY": key} if key else {}
    return action_context(workspace, toml, secrets, step_id=step_id)


async def new_customer(ctx: ActionContext) -> str:
    return (await CUSTOMER.call(ctx, {"email": "ap@globex.test", "name": "Globex"}))["id"]


# ------------------------------------------------------------------------ customers


async def test_create_customer_sends_stripe_shaped_request(
    stripe: FakeStripe, workspace: Path
) -> None:
    ctx = ctx_for(workspace, stripe, extra='api_version = "2025-01-27.acacia"\n')
    out = await CUSTOMER.call(
        ctx, {"email": "ap@globex.test", "name": "Globex Corp", "metadata": {"crm_id": "42"}}
    )
    [request] = stripe.posts("/v1/customers")
    assert request["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert request["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert request["headers"]["idempotency-key"] == "run-1:s1/customer"
    assert request["headers"]["stripe-version"] == "2025-01-27.acacia"
    assert sorted(request["pairs"]) == [
        ("email", "ap@globex.test"),
        ("metadata[crm_id]", "42"),
        ("name", "Globex Corp"),
    ]
    [customer] = stripe.all("customers")
    assert out == {
        "id": customer["id"],
        "email": "ap@globex.test",
        "name": "Globex Corp",
        "created": customer["created"],
        "livemode": False,
    }
    assert out["id"].startswith("cus_")


async def test_same_step_twice_is_one_customer(stripe: FakeStripe, workspace: Path) -> None:
    first = await CUSTOMER.call(ctx_for(workspace, stripe), {"email": "a@b.test"})
    again = await CUSTOMER.call(ctx_for(workspace, stripe), {"email": "a@b.test"})
    assert again == first
    assert len(stripe.all("customers")) == 1
    other_step = await CUSTOMER.call(
        ctx_for(workspace, stripe, step_id="s2"), {"email": "a@b.test"}
    )
    assert other_step["id"] != first["id"]
    assert len(stripe.all("customers")) == 2


async def test_reused_step_key_with_other_arguments_is_refused(
    stripe: FakeStripe, workspace: Path
) -> None:
    await CUSTOMER.call(ctx_for(workspace, stripe), {"email": "a@b.test"})
    with pytest.raises(ActionError) as caught:
        await CUSTOMER.call(ctx_for(workspace, stripe), {"email": "other@b.test"})
    assert "refused a reused idempotency key" in str(caught.value)
    assert "as a new step" in str(caught.value)
    assert not caught.value.transient
    assert len(stripe.all("customers")) == 1


async def test_find_customers_by_email(stripe: FakeStripe, workspace: Path) -> None:
    created = await new_customer(ctx_for(workspace, stripe))
    await CUSTOMER.call(ctx_for(workspace, stripe, step_id="s2"), {"email": "x@initech.test"})
    found = await FIND.call(ctx_for(workspace, stripe), {"email": "ap@globex.test"})
    assert [c["id"] for c in found["customers"]] == [created]
    [request] = [r for r in stripe.requests if r["method"] == "GET"]
    assert "idempotency-key" not in request["headers"]
    assert dict(request["pairs"]) == {"email": "ap@globex.test", "limit": "10"}


# -------------------------------------------------------------------- payment links


async def test_payment_link_creates_a_price_then_the_link(
    stripe: FakeStripe, workspace: Path
) -> None:
    ctx = ctx_for(workspace, stripe)
    out = await LINK.call(
        ctx,
        {
            "product_name": "Anvil workshop",
            "amount": 4900,
            "currency": "EUR",
            "quantity": 2,
            "redirect_url": "https://acme.test/thanks",
        },
    )
    price_req, link_req = stripe.posts()
    assert price_req["path"] == "/v1/prices"
    assert sorted(price_req["pairs"]) == [
        ("currency", "eur"),
        ("product_data[name]", "Anvil workshop"),
        ("unit_amount", "4900"),
    ]
    assert price_req["headers"]["idempotency-key"] == "run-1:s1/price"
    assert link_req["path"] == "/v1/payment_links"
    assert link_req["headers"]["idempotency-key"] == "run-1:s1/payment-link"
    [price] = stripe.all("prices")
    assert sorted(link_req["pairs"]) == [
        ("after_completion[redirect][url]", "https://acme.test/thanks"),
        ("after_completion[type]", "redirect"),
        ("line_items[0][price]", price["id"]),
        ("line_items[0][quantity]", "2"),
    ]
    [link] = stripe.all("payment_links")
    assert out == {
        "id": link["id"],
        "url": link["url"],
        "price": price["id"],
        "amount": 4900,
        "currency": "eur",
        "quantity": 2,
        "active": True,
    }


async def test_payment_link_for_an_existing_price(stripe: FakeStripe, workspace: Path) -> None:
    first = await LINK.call(ctx_for(workspace, stripe), {"product_name": "Anvil", "amount": 1000})
    out = await LINK.call(ctx_for(workspace, stripe, step_id="s2"), {"price": first["price"]})
    assert out["price"] == first["price"] and out["amount"] == 1000
    assert len(stripe.all("prices")) == 1 and len(stripe.all("payment_links")) == 2
    with pytest.raises(ActionError, match=r"No such price: 'price_nope'.*\[resource_missing\]"):
        await LINK.call(ctx_for(workspace, stripe, step_id="s3"), {"price": "price_nope"})


# ------------------------------------------------------------------------- invoices


async def test_invoice_with_items_finalized_and_sent(stripe: FakeStripe, workspace: Path) -> None:
    customer = await new_customer(ctx_for(workspace, stripe, step_id="c"))
    out = await INVOICE.call(
        ctx_for(workspace, stripe),
        {
            "customer": customer,
            "currency": "usd",
            "days_until_due": 14,
            "send": True,
            "items": [
                {"description": "Anvil", "amount": 25000},
                {"description": "Delivery", "amount": 1500, "quantity": 3},
            ],
        },
    )
    [invoice] = stripe.all("invoices")
    assert out == {
        "id": invoice["id"],
        "status": "open",
        "number": "ACME-0001",
        "customer": customer,
        "currency": "usd",
        "amount_due": 26500,
        "hosted_invoice_url": invoice["hosted_invoice_url"],
        "invoice_pdf": invoice["invoice_pdf"],
    }
    assert invoice["sent"] is True
    assert invoice["collection_method"] == "send_invoice" and invoice["days_until_due"] == 14
    items = stripe.all("invoiceitems")
    assert [(i["description"], i["amount"], i["invoice"]) for i in items] == [
        ("Anvil", 25000, invoice["id"]),
        ("Delivery (quantity 3)", 1500, invoice["id"]),
    ]
    keys = [r["headers"]["idempotency-key"] for r in stripe.posts()][1:]
    assert keys == [
        "run-1:s1/invoice",
        "run-1:s1/invoice-item-0",
        "run-1:s1/invoice-item-1",
        "run-1:s1/finalize",
        "run-1:s1/send",
    ]


async def test_draft_invoice_is_left_unfinalized(stripe: FakeStripe, workspace: Path) -> None:
    customer = await new_customer(ctx_for(workspace, stripe, step_id="c"))
    out = await INVOICE.call(
        ctx_for(workspace, stripe),
        {
            "customer": customer,
            "finalize": False,
            "items": [{"description": "Anvil", "amount": 900}],
        },
    )
    assert (out["status"], out["amount_due"], out["number"]) == ("draft", 900, "")


async def test_invoice_interrupted_halfway_resumes_without_duplicates(
    stripe: FakeStripe, workspace: Path
) -> None:
    customer = await new_customer(ctx_for(workspace, stripe, step_id="c"))
    before = len(stripe.requests)
    # The invoice and first item go through; the second item meets a 503.
    stripe.fail_next = []
    args = {
        "customer": customer,
        "items": [{"description": "A", "amount": 100}, {"description": "B", "amount": 200}],
    }
    original = stripe.handle
    calls = {"n": 0}

    def flaky(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            stripe.fail_next.append(
                (503, {"type": "api_error", "message": "Service unavailable"}, {})
            )
        return original(method, path, headers, body)

    stripe.server.handler = flaky
    try:
        result = await execute(INVOICE, ctx_for(workspace, stripe), args, timeout=10, retries=2)
    finally:
        stripe.server.handler = original
    assert result.status == "succeeded", result.error
    assert result.attempts == 2
    assert len(stripe.all("invoices")) == 1
    assert [i["amount"] for i in stripe.all("invoiceitems")] == [100, 200]
    assert result.output["amount_due"] == 300
    replayed = [
        r
        for r in stripe.requests[before:]
        if r["headers"].get("idempotency-key") == "run-1:s1/invoice"
    ]
    assert len(replayed) == 2  # sent twice, created once


async def test_invoice_arguments_are_checked_before_any_request(
    stripe: FakeStripe, workspace: Path
) -> None:
    ctx = ctx_for(workspace, stripe)
    bad = [
        ({"customer": "Globex", "items": [{"description": "A", "amount": 1}]}, "not a Stripe ID"),
        ({"customer": "cus_1", "items": []}, "at least one item"),
        (
            {"customer": "cus_1", "items": [{"description": "A", "amount": -5}]},
            "positive whole number",
        ),
        (
            {
                "customer": "cus_1",
                "currency": "dollars",
                "items": [{"description": "A", "amount": 5}],
            },
            "three-letter ISO code",
        ),
        (
            {
                "customer": "cus_1",
                "finalize": False,
                "send": True,
                "items": [{"description": "A", "amount": 5}],
            },
            "must be finalized",
        ),
    ]
    for args, message in bad:
        with pytest.raises(ActionError, match=message):
            await INVOICE.call(ctx, args)
    assert stripe.requests == []


# -------------------------------------------------------------------------- refunds


async def test_partial_then_full_refund_and_over_refund(
    stripe: FakeStripe, workspace: Path
) -> None:
    pi, charge = stripe.seed_payment(5000)
    part = await REFUND.call(
        ctx_for(workspace, stripe),
        {"payment_intent": pi, "amount": 2000, "reason": "requested_by_customer"},
    )
    assert part["amount"] == 2000 and part["status"] == "succeeded"
    assert (part["payment_intent"], part["charge"]) == (pi, charge)
    [request] = stripe.posts("/v1/refunds")
    assert sorted(request["pairs"]) == [
        ("amount", "2000"),
        ("payment_intent", pi),
        ("reason", "requested_by_customer"),
    ]
    assert request["headers"]["idempotency-key"] == "run-1:s1/refund"
    with pytest.raises(ActionError) as too_much:
        await REFUND.call(
            ctx_for(workspace, stripe, step_id="s2"), {"charge": charge, "amount": 3001}
        )
    assert "greater than unrefunded amount on charge (3000)" in str(too_much.value)
    assert "(parameter amount) [amount_too_large]" in str(too_much.value)
    assert not too_much.value.transient
    rest = await REFUND.call(ctx_for(workspace, stripe, step_id="s3"), {"charge": charge})
    assert rest["amount"] == 3000
    assert [r["amount"] for r in stripe.all("refunds")] == [2000, 3000]


async def test_refund_needs_exactly_one_payment(stripe: FakeStripe, workspace: Path) -> None:
    ctx = ctx_for(workspace, stripe)
    with pytest.raises(ActionError, match="exactly one of payment_intent"):
        await REFUND.call(ctx, {})
    with pytest.raises(ActionError, match="exactly one of payment_intent"):
        await REFUND.call(ctx, {"payment_intent": "pi_1", "charge": "ch_1"})
    with pytest.raises(ActionError, match=r"No such payment_intent: 'pi_missing'"):
        await REFUND.call(ctx, {"payment_intent": "pi_missing"})


# --------------------------------------------------------------- errors and retries


async def test_wrong_key_is_a_clear_permanent_failure(stripe: FakeStripe, workspace: Path) -> None:
    wrong = "sk_test_thisIsNotTheRightKey1234"
    result = await execute(
        CUSTOMER,
        ctx_for(workspace, stripe, key=wrong),
        {"email": "a@b.test"},
        timeout=10,
        retries=2,
    )
    assert result.status == "failed"
    assert result.attempts == 1
    assert "Stripe refused the API key" in result.error
    assert "check the secret STRIPE_API_KEY" in result.error
    assert wrong not in result.error
    assert stripe.all("customers") == []


async def test_missing_key_names_the_secret(stripe: FakeStripe, workspace: Path) -> None:
    with pytest.raises(ActionError, match="set the secret STRIPE_API_KEY"):
        await CUSTOMER.call(ctx_for(workspace, stripe, key=None), {"email": "a@b.test"})
    assert stripe.requests == []


async def test_card_error_is_not_retried(stripe: FakeStripe, workspace: Path) -> None:
    stripe.fail_next = [
        (
            402,
            {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "insufficient_funds",
                "message": "Your card has insufficient funds.",
            },
            {},
        )
    ]
    result = await execute(
        REFUND, ctx_for(workspace, stripe), {"charge": "ch_1"}, timeout=10, retries=2
    )
    assert result.attempts == 1
    assert result.error.startswith(
        "Stripe declined the payment: Your card has "
        "insufficient funds. (insufficient_funds) [card_declined]"
    )
    assert "(Stripe request req_" in result.error


async def test_rate_limit_is_retried_with_the_same_key(stripe: FakeStripe, workspace: Path) -> None:
    stripe.fail_next = [
        (
            429,
            {
                "type": "invalid_request_error",
                "code": "rate_limit",
                "message": "Too many requests hit the API too quickly.",
            },
            {},
        )
    ]
    result = await execute(
        CUSTOMER, ctx_for(workspace, stripe), {"email": "a@b.test"}, timeout=10, retries=2
    )
    assert result.status == "succeeded", result.error
    assert result.attempts == 2
    assert {r["headers"]["idempotency-key"] for r in stripe.posts()} == {"run-1:s1/customer"}
    assert len(stripe.all("customers")) == 1


async def test_server_error_transience_follows_stripe_should_retry(
    stripe: FakeStripe, workspace: Path
) -> None:
    error = {"type": "api_error", "message": "An unknown error occurred"}
    stripe.fail_next = [(500, error, {"Stripe-Should-Retry": "false"})]
    with pytest.raises(ActionError, match="Stripe had a server error") as told_not_to:
        await CUSTOMER.call(ctx_for(workspace, stripe), {"email": "a@b.test"})
    assert not told_not_to.value.transient
    stripe.fail_next = [(500, error, {})]
    with pytest.raises(ActionError) as plain_500:
        await CUSTOMER.call(ctx_for(workspace, stripe, step_id="s2"), {"email": "a@b.test"})
    assert plain_500.value.transient


async def test_slow_stripe_times_out(stripe: FakeStripe, workspace: Path) -> None:
    stripe.delay = 20
    result = await execute(
        CUSTOMER,
        ctx_for(workspace, stripe, extra="timeout = 0.5\n"),
        {"email": "a@b.test"},
        timeout=10,
        retries=0,
    )
    assert result.status == "failed"
    assert "Stripe did not answer within 0.5s" in result.error


async def test_unreachable_stripe_is_transient(workspace: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctx = action_context(
        workspace,
        f'[payments.stripe]\nbase_url = "http://127.0.0.1:{port}"\n',
        {"STRIPE_API_KEY": API_KEY},
    )
    with pytest.raises(ActionError, match="cannot connect to Stripe") as caught:
        await CUSTOMER.call(ctx, {"email": "a@b.test"})
    assert caught.value.transient


# ------------------------------------------------------------------------- plumbing


def test_form_encoding_matches_stripe() -> None:
    assert payments.encode_form(
        {
            "email": "a@b.test",
            "metadata": {"k": "v"},
            "skip": None,
            "flag": False,
            "line_items": [{"price": "price_1", "quantity": 2}],
            "expand": ["customer"],
        }
    ) == [
        ("email", "a@b.test"),
        ("metadata[k]", "v"),
        ("flag", "false"),
        ("line_items[0][price]", "price_1"),
        ("line_items[0][quantity]", "2"),
        ("expand[0]", "customer"),
    ]


def test_long_step_keys_are_hashed_within_stripe_limit(workspace: Path) -> None:
    ctx = action_context(workspace, step_id="s" * 300)
    key = payments.idempotency_key(ctx, "refund")
    assert len(key) <= 255 and key.startswith("openlam-")
    assert key == payments.idempotency_key(ctx, "refund")
    assert key != payments.idempotency_key(ctx, "customer")


def test_registered_with_financial_risk() -> None:
    registry = load_plugins()
    risks = {
        name: registry.get(name)
        for name in (
            "payments.create_customer",
            "payments.find_customers",
            "payments.create_payment_link",
            "payments.create_invoice",
            "payments.refund",
        )
    }
    assert {n: s.risk for n, s in risks.items() if s} == {
        "payments.create_customer": Risk.financial,
        "payments.find_customers": Risk.read,
        "payments.create_payment_link": Risk.financial,
        "payments.create_invoice": Risk.financial,
        "payments.refund": Risk.financial,
    }
    assert all(s is not None and s.secrets == ("STRIPE_API_KEY",) for s in risks.values())
    assert {n: s.delivery for n, s in risks.items() if s} == {
        "payments.create_customer": "keyed",
        "payments.find_customers": "idempotent",
        "payments.create_payment_link": "keyed",
        "payments.create_invoice": "keyed",
        "payments.refund": "keyed",
    }
    assert [n for n, s in risks.items() if s and s.egress] == ["payments.create_invoice"]


# ---------------------------------------------------------------- verified by Stripe


async def test_every_created_object_is_retrieved_back(stripe: FakeStripe, workspace: Path) -> None:
    pi, _ = stripe.seed_payment(5000)
    customer = await execute(
        CUSTOMER, ctx_for(workspace, stripe), {"email": "a@b.test"}, timeout=10, retries=0
    )
    assert customer.status == "succeeded", customer.error
    calls = [
        (LINK, {"product_name": "Anvil", "amount": 1999}),
        (
            INVOICE,
            {
                "customer": customer.output["id"],
                "items": [{"description": "Anvil", "amount": 1999}],
            },
        ),
        (REFUND, {"payment_intent": pi, "amount": 100}),
    ]
    for n, (spec, args) in enumerate(calls, start=2):
        result = await execute(
            spec, ctx_for(workspace, stripe, step_id=f"s{n}"), args, timeout=10, retries=0
        )
        assert result.status == "succeeded", (spec.name, result.error)
    gets = [r["path"] for r in stripe.requests if r["method"] == "GET"]
    assert {p.split("/")[2] for p in gets} >= {"customers", "payment_links", "invoices", "refunds"}


async def test_a_stripe_that_acknowledges_but_keeps_nothing_is_caught(
    stripe: FakeStripe, workspace: Path
) -> None:
    pi, _ = stripe.seed_payment(5000)
    stripe.lose_writes = True  # answers with an id, stores nothing
    for n, (spec, args) in enumerate(
        [(CUSTOMER, {"email": "a@b.test"}), (REFUND, {"payment_intent": pi, "amount": 100})]
    ):
        result = await execute(
            spec, ctx_for(workspace, stripe, step_id=f"s{n}"), args, timeout=10, retries=0
        )
        assert result.status == "failed", spec.name
        assert "not verified: Stripe cannot show" in result.error
        assert "No such" in result.error
