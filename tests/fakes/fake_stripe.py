"""A local service that answers like Stripe's v1 REST API, for the endpoints OpenLAM uses.

What it checks, as Stripe does:

* the API key (``Authorization: Bearer sk_…`` or HTTP basic with the key as user name);
* form-encoded bodies only, with Stripe's bracket syntax (``metadata[k]``,
  ``line_items[0][price]``), unknown and missing parameters, integer fields;
* idempotency: a POST with an ``Idempotency-Key`` that was seen before returns the saved
  answer (``Idempotent-Replayed: true``) if the method, path and parameters are the same,
  and an ``idempotency_error`` if they are not. Parameter-validation errors are not
  saved, like Stripe;
* object rules: invoice items only on draft invoices of the same customer, refunds no
  larger than what is left of the payment.

``fail_next`` holds answers given before the idempotency layer (like Stripe's rate
limiter or an edge 503): ``(status, error_dict, extra_headers)``. Errors use Stripe's
``{"error": {"type", "code", "message", "param"}}`` shape and carry a ``Request-Id``.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.http import FakeService, Response

API_KEY = "sk_test_51FakeOpenLAMkey000000000000"

ALLOWED: dict[str, set[str]] = {
    "customers": {"email", "name", "description", "phone", "metadata", "address"},
    "prices": {
        "currency",
        "unit_amount",
        "product",
        "product_data",
        "metadata",
        "recurring",
        "nickname",
    },
    "payment_links": {"line_items", "metadata", "after_completion", "currency"},
    "invoices": {
        "customer",
        "currency",
        "collection_method",
        "days_until_due",
        "description",
        "pending_invoice_items_behavior",
        "auto_advance",
        "metadata",
    },
    "invoiceitems": {
        "customer",
        "invoice",
        "currency",
        "amount",
        "description",
        "metadata",
        "quantity",
    },
    "refunds": {"payment_intent", "charge", "amount", "reason", "metadata"},
    "finalize": {"auto_advance"},
    "send": set(),
}


class StripeError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param = status, kind, code, param
        self.saved = saved  # False for validation errors: Stripe does not save those

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": str(self)}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs → nested dicts, with all-digit keys turned into lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    def lists(value: Any) -> Any:
        if isinstance(value, dict):
            value = {k: lists(v) for k, v in value.items()}
            if value and all(k.isdigit() for k in value):
                return [value[k] for k in sorted(value, key=int)]
        return value

    return lists(root)


class FakeStripe(FakeService):
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.saved: dict[str, tuple[tuple[str, str, tuple[tuple[str, str], ...]], Response]] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self.lose_writes = False  # acknowledge what is created, keep nothing of it
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        super().__init__()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.objects.clear()
            self.saved.clear()
            self.requests.clear()
            self.fail_next.clear()
            self.lose_writes = False

    def all(self, kind: str) -> list[dict[str, Any]]:
        return list(self.objects.get(kind, {}).values())

    def posts(self, path_prefix: str = "/v1/") -> list[dict[str, Any]]:
        return [
            r for r in self.requests if r["method"] == "POST" and r["path"].startswith(path_prefix)
        ]

    # ------------------------------------------------------------------ test set-up

    def seed_payment(self, amount: int, currency: str = "usd") -> tuple[str, str]:
        """A succeeded payment: returns (payment_intent id, charge id)."""
        with self._lock:
            pi = self._new(
                "payment_intents",
                "pi",
                {
                    "object": "payment_intent",
                    "amount": amount,
                    "currency": currency,
                    "status": "succeeded",
                },
            )
            ch = self._new(
                "charges",
                "ch",
                {
                    "object": "charge",
                    "amount": amount,
                    "amount_refunded": 0,
                    "currency": currency,
                    "payment_intent": pi["id"],
                    "refunded": False,
                },
            )
            pi["latest_charge"] = ch["id"]
        return pi["id"], ch["id"]

    # ---------------------------------------------------------------------- serving

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(path)
        pairs = parse_qsl(
            body.decode() if method == "POST" else parts.query, keep_blank_values=True
        )
        self.requests.append(
            {
                "method": method,
                "path": parts.path,
                "headers": headers,
                "pairs": pairs,
                "params": nest(pairs),
            }
        )
        self.hold()
        with self._lock:
            request_id = f"req_{next(self._ids):08d}"
            if self.fail_next:
                status, error, extra = self.fail_next.pop(0)
                return self._reply(status, {"error": error}, request_id, extra)
            try:
                self._authenticate(headers.get("authorization", ""))
                if method == "POST" and not headers.get("content-type", "").startswith(
                    "application/x-www-form-urlencoded"
                ):
                    raise StripeError(
                        400,
                        "Invalid request: the body must be application/x-www-form-urlencoded",
                        saved=False,
                    )
            except StripeError as exc:
                return self._reply(exc.status, exc.body(), request_id)
            key = headers.get("idempotency-key") if method == "POST" else None
            fingerprint = (method, parts.path, tuple(sorted(pairs)))
            if key and key in self.saved:
                first, answer = self.saved[key]
                if first != fingerprint:
                    error = StripeError(
                        400,
                        "Keys for idempotent requests can only be used "
                        "with the same parameters they were first used with. "
                        f"Try using a key other than '{key}' if you meant to "
                        "execute a different request.",
                        kind="idempotency_error",
                    )
                    return self._reply(400, error.body(), request_id)
                status, answer_headers, payload = answer
                return (
                    status,
                    {**answer_headers, "Idempotent-Replayed": "true", "Request-Id": request_id},
                    payload,
                )
            try:
                result = self._route(method, parts.path, nest(pairs))
                answer = self._reply(200, result, request_id)
            except StripeError as exc:
                answer = self._reply(exc.status, exc.body(), request_id)
                if not exc.saved:
                    return answer
            if key:
                self.saved[key] = (fingerprint, answer)
            return answer

    def _reply(
        self,
        status: int,
        data: dict[str, Any],
        request_id: str,
        extra: dict[str, str] | None = None,
    ) -> Response:
        headers = {"Content-Type": "application/json", "Request-Id": request_id, **(extra or {})}
        return status, headers, json.dumps(data).encode()

    def _authenticate(self, auth: str) -> None:
        key = ""
        if auth.startswith("Bearer "):
            key = auth[7:]
        elif auth.startswith("Basic "):
            key = base64.b64decode(auth[6:]).decode().split(":")[0]
        if not key:
            raise StripeError(
                401,
                "You did not provide an API key. You need to provide your "
                "API key in the Authorization header, using Bearer auth (e.g. "
                "'Authorization: Bearer YOUR_SECRET_KEY').",
                saved=False,
            )
        if key != self.api_key:
            raise StripeError(
                401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}", saved=False
            )

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        segments = path.strip("/").split("/")
        if segments[0] != "v1" or len(segments) < 2:
            raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")
        kind = segments[1]
        if method == "GET" and len(segments) == 3:
            return self._get(kind, segments[2])
        if method == "GET" and kind == "customers" and len(segments) == 2:
            return self._list_customers(params)
        if method == "POST" and len(segments) == 2 and kind in ALLOWED:
            self._check_params(kind, params)
            return getattr(self, f"_create_{kind}")(params)
        if method == "POST" and kind == "invoices" and len(segments) == 4:
            self._check_params(segments[3], params)
            return self._invoice_action(segments[2], segments[3])
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")

    # ------------------------------------------------------------------- validation

    @staticmethod
    def _check_params(kind: str, params: dict[str, Any]) -> None:
        for name in params:
            if name not in ALLOWED[kind]:
                raise StripeError(
                    400,
                    f"Received unknown parameter: {name}",
                    code="parameter_unknown",
                    param=name,
                    saved=False,
                )

    @staticmethod
    def _required(params: dict[str, Any], *names: str) -> None:
        for name in names:
            if params.get(name) in (None, ""):
                raise StripeError(
                    400,
                    f"Missing required param: {name}.",
                    code="parameter_missing",
                    param=name,
                    saved=False,
                )

    @staticmethod
    def _integer(params: dict[str, Any], name: str) -> int | None:
        if name not in params:
            return None
        try:
            return int(params[name])
        except (TypeError, ValueError):
            raise StripeError(
                400,
                f"Invalid integer: {params[name]}",
                code="parameter_invalid_integer",
                param=name,
                saved=False,
            ) from None

    def _find(self, kind: str, object_id: str, param: str) -> dict[str, Any]:
        found = self.objects.get(kind, {}).get(object_id)
        if found is None:
            raise StripeError(
                400 if param else 404,
                f"No such {kind.rstrip('s')}: '{object_id}'",
                code="resource_missing",
                param=param or None,
            )
        return found

    def _new(self, kind: str, prefix: str, fields: dict[str, Any]) -> dict[str, Any]:
        obj = {
            "id": f"{prefix}_Fk{next(self._ids):010d}",
            "created": int(time.time()),
            "livemode": False,
            "metadata": {},
            **fields,
        }
        if not self.lose_writes:
            self.objects.setdefault(kind, {})[obj["id"]] = obj
        return obj

    # -------------------------------------------------------------------- endpoints

    def _get(self, kind: str, object_id: str) -> dict[str, Any]:
        return self._find(kind, object_id, "")

    def _list_customers(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = self._integer(params, "limit") or 10
        found = [
            c
            for c in self.all("customers")
            if "email" not in params or c.get("email") == params["email"]
        ]
        return {
            "object": "list",
            "url": "/v1/customers",
            "has_more": len(found) > limit,
            "data": found[:limit],
        }

    def _create_customers(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._new(
            "customers",
            "cus",
            {
                "object": "customer",
                "email": params.get("email"),
                "name": params.get("name"),
                "description": params.get("description"),
                "phone": params.get("phone"),
                "metadata": params.get("metadata", {}),
            },
        )

    def _create_prices(self, params: dict[str, Any]) -> dict[str, Any]:
        self._required(params, "currency")
        amount = self._integer(params, "unit_amount")
        if amount is None:
            raise StripeError(
                400,
                "Missing required param: unit_amount.",
                code="parameter_missing",
                param="unit_amount",
                saved=False,
            )
        if "product" in params:
            product = self._find("products", params["product"], "product")["id"]
        else:
            name = (params.get("product_data") or {}).get("name")
            if not name:
                raise StripeError(
                    400,
                    "Missing required param: product_data[name].",
                    code="parameter_missing",
                    param="product_data[name]",
                    saved=False,
                )
            product = self._new("products", "prod", {"object": "product", "name": name})["id"]
        return self._new(
            "prices",
            "price",
            {
                "object": "price",
                "active": True,
                "currency": params["currency"],
                "unit_amount": amount,
                "product": product,
                "type": "one_time",
            },
        )

    def _create_payment_links(self, params: dict[str, Any]) -> dict[str, Any]:
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise StripeError(
                400,
                "Missing required param: line_items.",
                code="parameter_missing",
                param="line_items",
                saved=False,
            )
        for i, item in enumerate(items):
            self._required(item, "price")
            self._find("prices", item["price"], f"line_items[{i}][price]")
            self._integer(item, "quantity")
        link = self._new(
            "payment_links",
            "plink",
            {
                "object": "payment_link",
                "active": True,
                "line_items": items,
                "after_completion": params.get("after_completion", {"type": "hosted_confirmation"}),
                "metadata": params.get("metadata", {}),
            },
        )
        link["url"] = f"{self.url}/pay/{link['id']}"
        return link

    def _create_invoices(self, params: dict[str, Any]) -> dict[str, Any]:
        self._required(params, "customer")
        customer = self._find("customers", params["customer"], "customer")
        if params.get("collection_method") == "send_invoice":
            self._required(params, "days_until_due")
        return self._new(
            "invoices",
            "in",
            {
                "object": "invoice",
                "customer": customer["id"],
                "status": "draft",
                "currency": params.get("currency", "usd"),
                "amount_due": 0,
                "number": None,
                "collection_method": params.get("collection_method", "charge_automatically"),
                "days_until_due": self._integer(params, "days_until_due"),
                "description": params.get("description"),
                "hosted_invoice_url": None,
                "invoice_pdf": None,
                "lines": [],
                "metadata": params.get("metadata", {}),
                "sent": False,
            },
        )

    def _create_invoiceitems(self, params: dict[str, Any]) -> dict[str, Any]:
        self._required(params, "customer")
        amount = self._integer(params, "amount")
        invoice = (
            self._find("invoices", params["invoice"], "invoice") if params.get("invoice") else None
        )
        if invoice is not None:
            if invoice["status"] != "draft":
                raise StripeError(
                    400,
                    f"Invoice {invoice['id']} is no longer editable.",
                    code="invoice_not_editable",
                    param="invoice",
                )
            if invoice["customer"] != params["customer"]:
                raise StripeError(
                    400,
                    "The invoice and the invoice item must belong to the same customer.",
                    param="invoice",
                )
            if params.get("currency", invoice["currency"]) != invoice["currency"]:
                raise StripeError(
                    400,
                    "The currency of the invoice item must match the invoice's.",
                    param="currency",
                )
        item = self._new(
            "invoiceitems",
            "ii",
            {
                "object": "invoiceitem",
                "customer": params["customer"],
                "amount": amount,
                "currency": params.get("currency"),
                "description": params.get("description"),
                "invoice": invoice["id"] if invoice else None,
            },
        )
        if invoice is not None:
            invoice["lines"].append(item["id"])
            invoice["amount_due"] += amount or 0
        return item

    def _invoice_action(self, invoice_id: str, verb: str) -> dict[str, Any]:
        invoice = self._find("invoices", invoice_id, "")
        if verb == "finalize":
            if invoice["status"] != "draft":
                raise StripeError(
                    400,
                    "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                    code="invoice_not_editable",
                )
            count = sum(1 for i in self.all("invoices") if i["number"]) + 1
            invoice.update(
                status="open",
                number=f"ACME-{count:04d}",
                hosted_invoice_url=f"{self.url}/i/{invoice_id}",
                invoice_pdf=f"{self.url}/i/{invoice_id}/pdf",
            )
        elif verb == "send":
            if invoice["status"] != "open":
                raise StripeError(
                    400, "You can only send an invoice that is open.", code="invoice_not_open"
                )
            invoice["sent"] = True
        else:
            raise StripeError(
                404, f"Unrecognized request URL (POST: /v1/invoices/{invoice_id}/{verb})."
            )
        return invoice

    def _create_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("payment_intent"):
            pi = self._find("payment_intents", params["payment_intent"], "payment_intent")
            charge = self.objects["charges"][pi["latest_charge"]]
        elif params.get("charge"):
            charge = self._find("charges", params["charge"], "charge")
        else:
            raise StripeError(
                400,
                "One of the following params should be provided for this "
                "request: payment_intent or charge.",
                saved=False,
            )
        left = charge["amount"] - charge["amount_refunded"]
        amount = self._integer(params, "amount")
        amount = left if amount is None else amount
        if left == 0:
            raise StripeError(
                400,
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount > left:
            raise StripeError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                code="amount_too_large",
                param="amount",
            )
        if params.get("reason") not in (None, "duplicate", "fraudulent", "requested_by_customer"):
            raise StripeError(
                400, f"Invalid reason: {params['reason']}", param="reason", saved=False
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        return self._new(
            "refunds",
            "re",
            {
                "object": "refund",
                "amount": amount,
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "status": "succeeded",
                "reason": params.get("reason"),
                "metadata": params.get("metadata", {}),
            },
        )
