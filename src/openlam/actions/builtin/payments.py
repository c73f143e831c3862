"""payments: Stripe's REST API — customers, payment links, invoices and refunds.

Requests are form-encoded like Stripe's own clients (``metadata[key]=value``,
``line_items[0][price]=…``) and authenticated with the secret ``STRIPE_API_KEY``.
``[payments.stripe]`` in openlam.toml may set ``base_url`` (default Stripe's public
API; a local Stripe-compatible server in tests), ``api_version`` (sent as
``Stripe-Version``) and ``timeout`` in seconds.

Idempotency: every POST carries an ``Idempotency-Key`` derived from the step's key and
the request's purpose (``<step key>/customer``, ``…/invoice-item-2``…). A retried or
resumed step therefore gets Stripe's saved answer instead of a second customer, link,
invoice or refund — also when an action that makes several requests stopped halfway.
Stripe keeps keys for at least 24 hours: a step resumed later than that could create
a second object.

Verification: after creating a customer, payment link, invoice or refund, the object is
retrieved from Stripe by its id and compared with what the action returned.

Errors: Stripe's error JSON becomes one clear message. Card declines, invalid requests,
refused keys and idempotency conflicts are not retried; rate limits, 5xx and lock
timeouts are (``Stripe-Should-Retry`` has the last word when Stripe sends it).
All amounts are integers in the currency's smallest unit (cents for USD, yen for JPY).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, NotRequired
from urllib.parse import urlencode

from pydantic import PositiveFloat
from typing_extensions import TypedDict

from openlam.actions import httpkit
from openlam.actions.plugin_config import PluginConfig
from openlam.actions.spec import ActionContext, Risk, Verify, action
from openlam.errors import ActionError

DEFAULT_BASE_URL = "https://api.stripe.com"
TIMEOUT = 30.0
MAX_REPLY_BYTES = 2_000_000
SECRET = "STRIPE_API_KEY"
CURRENCY = re.compile(r"^[a-z]{3}$")
STRIPE_ID = re.compile(r"^[A-Za-z0-9_]+$")


class Customer(TypedDict):
    id: str
    email: str
    name: str
    created: int
    livemode: bool


class Customers(TypedDict):
    customers: list[Customer]


class PaymentLink(TypedDict):
    id: str
    url: str
    price: str
    amount: int
    currency: str
    quantity: int
    active: bool


class InvoiceLine(TypedDict):
    description: str
    amount: int
    quantity: NotRequired[int]


class Invoice(TypedDict):
    id: str
    status: str
    number: str
    customer: str
    currency: str
    amount_due: int
    hosted_invoice_url: str
    invoice_pdf: str


class Refund(TypedDict):
    id: str
    status: str
    amount: int
    currency: str
    payment_intent: str
    charge: str


def encode_form(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: nested mappings as ``a[b]``, lists as ``a[0]``; None is left
    out, booleans are ``true``/``false``."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs += encode_form(value, name)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs += encode_form(item, f"{name}[{i}]")
                else:
                    pairs += encode_form({str(i): item}, name)
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        else:
            pairs.append((name, str(value)))
    return pairs


def idempotency_key(ctx: ActionContext, purpose: str) -> str:
    """The Idempotency-Key of one request of this step (Stripe allows 255 characters)."""
    key = f"{ctx.idempotency_key}/{purpose}"
    if len(key) <= 255 and key.isascii() and key.isprintable():
        return key
    return "openlam-" + hashlib.sha256(key.encode()).hexdigest()


class StripeConfig(PluginConfig):
    base_url: str = DEFAULT_BASE_URL  # a Stripe-compatible server works too
    api_version: str = ""  # sent as Stripe-Version when set
    timeout: PositiveFloat = TIMEOUT


class PaymentsConfig(PluginConfig):
    """The ``[payments]`` table of openlam.toml."""

    section: ClassVar[str] = "payments"
    hint: ClassVar[str] = "see docs/actions/payments.md"

    stripe: StripeConfig = StripeConfig()


CONFIG = PaymentsConfig


class Stripe:
    """A thin client over Stripe's v1 REST API for one action call."""

    def __init__(self, ctx: ActionContext) -> None:
        config = PaymentsConfig.of(ctx).stripe
        self.base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        if not self.base.startswith(("http://", "https://")):
            raise ActionError(f"[payments.stripe] base_url {self.base!r} is not an http(s) URL")
        key = (ctx.secret(SECRET) or "").strip()
        if not key:
            raise ActionError(
                f"no Stripe API key: set the secret {SECRET} to a secret key "
                f"(sk_test_… to try things out) with `openlam secrets set "
                f"{SECRET}`"
            )
        self.key = key
        self.ctx = ctx
        self.timeout = config.timeout
        self.headers = {"Authorization": f"Bearer {key}", "User-Agent": "OpenLAM payments"}
        if config.api_version:
            self.headers["Stripe-Version"] = config.api_version

    async def post(self, path: str, params: Mapping[str, Any], *, purpose: str) -> dict[str, Any]:
        body = urlencode(encode_form(params)).encode()
        headers = {
            **self.headers,
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": idempotency_key(self.ctx, purpose),
        }
        return await self._send("POST", path, content=body, headers=headers)

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        query = encode_form(params or {})
        return await self._send("GET", path, params=query, headers=self.headers)

    async def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        reply = await httpkit.send(
            self.ctx.settings,
            method,
            f"{self.base}{path}",
            what="Stripe",
            idempotent=True,
            deadline=self.timeout,
            max_bytes=MAX_REPLY_BYTES,
            redact=(self.key,),
            configured=[self.base],
            **kwargs,
        )
        if not reply.ok:
            raise stripe_error(reply, self.key)
        data = reply.json("Stripe")
        if not isinstance(data, dict) or "object" not in data:
            raise ActionError(
                f"Stripe at {self.base} answered {method} {path} with something "
                "that is not a Stripe object; is base_url right?"
            )
        return data


def stripe_error(reply: httpkit.Reply, key: str = "") -> ActionError:
    """One clear ActionError from Stripe's error JSON, transient only where retrying helps."""
    error: dict[str, Any] = {}
    try:
        data = reply.json("Stripe")
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            error = data["error"]
    except ActionError:
        pass
    status = reply.status
    kind, code = str(error.get("type") or ""), str(error.get("code") or "")
    message = httpkit.scrub(
        str(error.get("message") or reply.text()[:200].strip() or f"HTTP {status}"), (key,)
    )
    transient = False
    if status == 401:
        text = (
            f"Stripe refused the API key: {message}; check the secret {SECRET} (a secret "
            "key, sk_test_… or sk_live_…, or a restricted key rk_…)"
        )
    elif status == 403:
        text = f"the Stripe API key may not do this: {message}; give the key this permission"
    elif kind == "card_error" or status == 402:
        decline = error.get("decline_code")
        text = f"Stripe declined the payment: {message}" + (f" ({decline})" if decline else "")
    elif kind == "idempotency_error":
        text = (
            f"Stripe refused a reused idempotency key: {message}; this step was already "
            "sent with other arguments, so run the changed request as a new step"
        )
    elif status == 429:
        text, transient = f"Stripe rate limit: {message}", True
    elif status >= 500 or kind == "api_error":
        text, transient = (
            (
                f"Stripe had a server error (HTTP {status}): {message}; the outcome "
                "may be unknown, a retry with the same idempotency key is safe"
            ),
            True,
        )
    elif code == "lock_timeout" or status == 409:
        text, transient = f"Stripe was busy with a conflicting request: {message}", True
    else:
        param = error.get("param")
        text = f"Stripe refused the request: {message}" + (f" (parameter {param})" if param else "")
    if code and code not in text:
        text += f" [{code}]"
    should_retry = reply.headers.get("stripe-should-retry", "").lower()
    if should_retry in ("true", "false"):
        transient = should_retry == "true"
    request_id = reply.headers.get("request-id")
    if request_id:
        text += f" (Stripe request {request_id})"
    return ActionError(text, transient=transient)


def _retrieved(kind: str, *fields: str) -> Verify:
    """An effect check: the object the action returned is retrieved from Stripe by id
    (``GET /v1/<kind>/<id>``) and its ``fields`` must match the output."""

    async def verify(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
        object_id = str(output.get("id") or "")
        if not object_id:
            return "Stripe answered without an object id"
        try:
            found = await Stripe(ctx).get(f"/v1/{kind}/{object_id}")
        except ActionError as exc:
            return f"Stripe cannot show {object_id}: {exc}"
        for name in fields:
            if str(found.get(name) or "") != str(output.get(name) or ""):
                return (
                    f"Stripe holds {object_id} with {name} {found.get(name)!r}, not "
                    f"{output.get(name)!r} as answered"
                )
        return None

    return verify


def _amount(value: int, field: str) -> int:
    if value <= 0:
        raise ActionError(
            f"{field} must be a positive whole number of the currency's smallest "
            f"unit (e.g. 1999 for $19.99), not {value}"
        )
    return value


def _currency(value: str) -> str:
    currency = value.strip().lower()
    if not CURRENCY.match(currency):
        raise ActionError(
            f"currency must be a three-letter ISO code such as usd or eur, not {value!r}"
        )
    return currency


def _stripe_id(value: str, field: str, prefixes: tuple[str, ...]) -> str:
    if not STRIPE_ID.match(value) or not value.startswith(prefixes):
        raise ActionError(
            f"{field} {value!r} is not a Stripe ID (it starts with {' or '.join(prefixes)})"
        )
    return value


def _customer(data: dict[str, Any]) -> Customer:
    return {
        "id": str(data["id"]),
        "email": str(data.get("email") or ""),
        "name": str(data.get("name") or ""),
        "created": int(data.get("created") or 0),
        "livemode": bool(data.get("livemode")),
    }


@action(
    "payments.create_customer",
    risk=Risk.financial,
    keyed=True,
    secrets=(SECRET,),
    verify=_retrieved("customers", "email"),
)
async def create_customer(
    ctx: ActionContext,
    email: str,
    name: str = "",
    description: str = "",
    phone: str = "",
    metadata: dict[str, str] | None = None,
) -> Customer:
    """Create a customer in Stripe.

    Args:
        email: The customer's email address (invoices and receipts go there).
        name: Full name or company name.
        description: A note shown in the Stripe Dashboard.
        phone: Phone number.
        metadata: Your own key-value pairs, e.g. {"crm_id": "42"}.
    """
    if "@" not in email:
        raise ActionError(f"{email!r} is not an email address")
    stripe = Stripe(ctx)
    params = {
        "email": email,
        "name": name or None,
        "description": description or None,
        "phone": phone or None,
        "metadata": metadata or None,
    }
    return _customer(await stripe.post("/v1/customers", params, purpose="customer"))


@action("payments.find_customers", risk=Risk.read, idempotent=True, secrets=(SECRET,))
async def find_customers(ctx: ActionContext, email: str, limit: int = 10) -> Customers:
    """Find Stripe customers by email address (exact, case-sensitive match).

    Args:
        email: The email address to look for.
        limit: At most this many customers (1-100).
    """
    if not 1 <= limit <= 100:
        raise ActionError("limit must be between 1 and 100")
    data = await Stripe(ctx).get("/v1/customers", {"email": email, "limit": limit})
    return {"customers": [_customer(c) for c in data.get("data", [])]}


@action(
    "payments.create_payment_link",
    risk=Risk.financial,
    keyed=True,
    secrets=(SECRET,),
    verify=_retrieved("payment_links", "url", "active"),
)
async def create_payment_link(
    ctx: ActionContext,
    product_name: str = "",
    amount: int = 0,
    currency: str = "usd",
    quantity: int = 1,
    price: str = "",
    redirect_url: str = "",
    metadata: dict[str, str] | None = None,
) -> PaymentLink:
    """Create a Stripe payment link: a hosted checkout page anyone with the URL can pay.

    Give either product_name and amount (a new price is created for them) or an existing
    price ID.

    Args:
        product_name: What is being sold, as the buyer sees it.
        amount: Price of one unit in the currency's smallest unit (1999 = $19.99).
        currency: Three-letter ISO currency code, e.g. usd, eur.
        quantity: How many units the link sells.
        price: An existing Stripe price ID (price_…) instead of product_name and amount.
        redirect_url: Send the buyer here after paying.
        metadata: Your own key-value pairs stored on the link.
    """
    if quantity < 1:
        raise ActionError("quantity must be at least 1")
    stripe = Stripe(ctx)
    if price:
        price_id = _stripe_id(price, "price", ("price_", "plan_"))
        price_obj = await stripe.get(f"/v1/prices/{price_id}")
    else:
        if not product_name.strip():
            raise ActionError("give product_name and amount, or an existing price ID")
        price_obj = await stripe.post(
            "/v1/prices",
            {
                "currency": _currency(currency),
                "unit_amount": _amount(amount, "amount"),
                "product_data": {"name": product_name.strip()},
            },
            purpose="price",
        )
    params: dict[str, Any] = {
        "line_items": [{"price": price_obj["id"], "quantity": quantity}],
        "metadata": metadata or None,
    }
    if redirect_url:
        if not redirect_url.startswith(("https://", "http://")):
            raise ActionError("redirect_url must be an http(s) URL")
        params["after_completion"] = {"type": "redirect", "redirect": {"url": redirect_url}}
    link = await stripe.post("/v1/payment_links", params, purpose="payment-link")
    return {
        "id": str(link["id"]),
        "url": str(link.get("url") or ""),
        "price": str(price_obj["id"]),
        "amount": int(price_obj.get("unit_amount") or 0),
        "currency": str(price_obj.get("currency") or ""),
        "quantity": quantity,
        "active": bool(link.get("active", True)),
    }


@action(
    "payments.create_invoice",
    risk=Risk.financial,
    keyed=True,
    egress=True,
    secrets=(SECRET,),
    verify=_retrieved("invoices", "status", "amount_due"),
)
async def create_invoice(
    ctx: ActionContext,
    customer: str,
    items: list[InvoiceLine],
    currency: str = "usd",
    days_until_due: int = 30,
    description: str = "",
    finalize: bool = True,
    send: bool = False,
    metadata: dict[str, str] | None = None,
) -> Invoice:
    """Create a Stripe invoice for a customer, to be paid by bank transfer or card via its link.

    The invoice is finalized (numbered, payable at hosted_invoice_url) unless finalize is
    false; send emails it to the customer.

    Args:
        customer: The Stripe customer ID (cus_…).
        items: Invoice lines, each {"description": "...", "amount": total in smallest unit},
            optionally with "quantity" (shown in the description).
        currency: Three-letter ISO currency code, e.g. usd, eur.
        days_until_due: Days the customer has to pay.
        description: A memo shown on the invoice.
        finalize: Finalize the invoice so it can be paid; false leaves a draft.
        send: Email the finalized invoice to the customer.
        metadata: Your own key-value pairs stored on the invoice.
    """
    customer_id = _stripe_id(customer, "customer", ("cus_",))
    currency = _currency(currency)
    if not items:
        raise ActionError("an invoice needs at least one item")
    for line in items:
        _amount(line["amount"], f"amount of item {line['description']!r}")
    if not 1 <= days_until_due <= 365:
        raise ActionError("days_until_due must be between 1 and 365")
    if send and not finalize:
        raise ActionError("an invoice must be finalized to be sent: set finalize to true")
    stripe = Stripe(ctx)
    invoice = await stripe.post(
        "/v1/invoices",
        {
            "customer": customer_id,
            "currency": currency,
            "collection_method": "send_invoice",
            "days_until_due": days_until_due,
            "description": description or None,
            "pending_invoice_items_behavior": "exclude",
            "auto_advance": False,
            "metadata": metadata or None,
        },
        purpose="invoice",
    )
    invoice_id = str(invoice["id"])
    for i, line in enumerate(items):
        text = line["description"]
        if line.get("quantity", 1) != 1:
            text = f"{text} (quantity {line.get('quantity')})"
        await stripe.post(
            "/v1/invoiceitems",
            {
                "customer": customer_id,
                "invoice": invoice_id,
                "currency": currency,
                "amount": line["amount"],
                "description": text,
            },
            purpose=f"invoice-item-{i}",
        )
    if finalize:
        invoice = await stripe.post(f"/v1/invoices/{invoice_id}/finalize", {}, purpose="finalize")
        if send:
            invoice = await stripe.post(f"/v1/invoices/{invoice_id}/send", {}, purpose="send")
    else:
        invoice = await stripe.get(f"/v1/invoices/{invoice_id}")
    return {
        "id": invoice_id,
        "status": str(invoice.get("status") or ""),
        "number": str(invoice.get("number") or ""),
        "customer": customer_id,
        "currency": str(invoice.get("currency") or currency),
        "amount_due": int(invoice.get("amount_due") or 0),
        "hosted_invoice_url": str(invoice.get("hosted_invoice_url") or ""),
        "invoice_pdf": str(invoice.get("invoice_pdf") or ""),
    }


@action(
    "payments.refund",
    risk=Risk.financial,
    keyed=True,
    secrets=(SECRET,),
    verify=_retrieved("refunds", "amount", "status"),
)
async def refund(
    ctx: ActionContext,
    payment_intent: str = "",
    charge: str = "",
    amount: int | None = None,
    reason: Literal["", "duplicate", "fraudulent", "requested_by_customer"] = "",
    metadata: dict[str, str] | None = None,
) -> Refund:
    """Refund a payment in full or in part.

    Args:
        payment_intent: The payment to refund (pi_…); give this or charge.
        charge: The charge to refund (ch_… or py_…), for payments made without a PaymentIntent.
        amount: Refund only this much, in the currency's smallest unit; omit for the rest of
            the payment.
        reason: duplicate, fraudulent or requested_by_customer.
        metadata: Your own key-value pairs stored on the refund.
    """
    if bool(payment_intent) == bool(charge):
        raise ActionError("give exactly one of payment_intent (pi_…) or charge (ch_…)")
    params: dict[str, Any] = {
        "payment_intent": _stripe_id(payment_intent, "payment_intent", ("pi_",))
        if payment_intent
        else None,
        "charge": _stripe_id(charge, "charge", ("ch_", "py_")) if charge else None,
        "amount": _amount(amount, "amount") if amount is not None else None,
        "reason": reason or None,
        "metadata": metadata or None,
    }
    data = await Stripe(ctx).post("/v1/refunds", params, purpose="refund")
    return {
        "id": str(data["id"]),
        "status": str(data.get("status") or ""),
        "amount": int(data.get("amount") or 0),
        "currency": str(data.get("currency") or ""),
        "payment_intent": str(data.get("payment_intent") or ""),
        "charge": str(data.get("charge") or ""),
    }
