"""The local world the own suite's tasks act on: a web site with a small REST service
(tickets, with its OpenAPI document), an SMTP server that keeps what it receives
(aiosmtpd, when installed), and an MCP server (``mcp_peer``, a key-value store in a file).
Everything listens on loopback only and lives as long as one task."""

from __future__ import annotations

import json
import re
import socket
import threading
from typing import Any

from openlam.learning.evals.loopback import LoopbackServer, Reply

PAGES = {
    "/about.html": (
        "Acme Anvils",
        "<h1>Acme Anvils</h1><p>Acme sells anvils since 1949. "
        "Sales: sales@acme.test, phone +1 555 0100.</p>",
    ),
    "/pricing.html": (
        "Pricing",
        "<h1>Pricing</h1><p>The Classic anvil costs 120 EUR; the Deluxe anvil costs 340 EUR.</p>",
    ),
    "/news.html": ("News", "<h1>News</h1><p>Acme opens a new warehouse in Lyon on 3 March.</p>"),
}
FACTS = {"company": "Acme Anvils", "founded": 1949, "ceo": "Rosa Vidal", "employees": 42}
SEED_TICKETS = [
    {"id": 1, "title": "Printer jam on floor 2", "status": "open", "priority": "low"},
    {"id": 2, "title": "VPN drops every hour", "status": "open", "priority": "high"},
]


def spec(base_url: str) -> dict[str, Any]:
    ticket = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "status": {"type": "string"},
            "priority": {"type": "string", "enum": ["low", "normal", "high"]},
        },
    }
    new = {
        "type": "object",
        "required": ["title"],
        "properties": {
            "title": {"type": "string"},
            "priority": {"type": "string", "enum": ["low", "normal", "high"]},
        },
    }
    json_body = {"content": {"application/json": {"schema": new}}, "required": True}
    ok = {"200": {"description": "ok", "content": {"application/json": {"schema": ticket}}}}
    ident = [{"name": "ticket_id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "Helpdesk tickets", "version": "1"},
        "servers": [{"url": base_url}],
        "paths": {
            "/tickets": {
                "get": {"operationId": "list_tickets", "summary": "List tickets", "responses": ok},
                "post": {
                    "operationId": "create_ticket",
                    "summary": "Open a ticket",
                    "requestBody": json_body,
                    "responses": ok,
                },
            },
            "/tickets/{ticket_id}": {
                "get": {
                    "operationId": "get_ticket",
                    "summary": "One ticket",
                    "parameters": ident,
                    "responses": ok,
                }
            },
            "/tickets/{ticket_id}/close": {
                "post": {
                    "operationId": "close_ticket",
                    "summary": "Close a ticket",
                    "parameters": ident,
                    "responses": ok,
                }
            },
        },
    }


class Site(LoopbackServer):
    """Pages, ``/facts.json`` and the tickets service on one loopback port."""

    def __init__(self) -> None:
        super().__init__()
        self.tickets = [dict(t) for t in SEED_TICKETS]
        self.lock = threading.Lock()

    def route(self, method: str, path: str, body: bytes) -> Reply:
        if method == "GET" and path in PAGES:
            title, html = PAGES[path]
            return (
                200,
                "text/html; charset=utf-8",
                (f"<html><head><title>{title}</title></head><body>{html}</body></html>"),
            )
        if method == "GET" and path == "/facts.json":
            return 200, "application/json", json.dumps(FACTS)
        if method == "GET" and path == "/openapi.json":
            return 200, "application/json", json.dumps(spec(self.url))
        with self.lock:
            return self.tickets_api(method, path, body)

    def tickets_api(self, method: str, path: str, raw: bytes) -> Reply:
        if path == "/tickets" and method == "GET":
            return 200, "application/json", json.dumps(self.tickets)
        if path == "/tickets" and method == "POST":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return 400, "application/json", '{"error": "body is not JSON"}'
            if not isinstance(body.get("title"), str) or not body["title"].strip():
                return 422, "application/json", '{"error": "title is required"}'
            ticket = {
                "id": len(self.tickets) + 1,
                "title": body["title"],
                "status": "open",
                "priority": body.get("priority", "normal"),
            }
            self.tickets.append(ticket)
            return 200, "application/json", json.dumps(ticket)
        found = re.fullmatch(r"/tickets/(\d+)(/close)?", path)
        if not found:
            return 404, "application/json", '{"error": "not found"}'
        ticket = next((t for t in self.tickets if t["id"] == int(found[1])), None)
        if ticket is None:
            return 404, "application/json", '{"error": "no such ticket"}'
        if found[2] and method == "POST":
            ticket["status"] = "closed"
        return 200, "application/json", json.dumps(ticket)


class Mailbox:
    """An SMTP server (aiosmtpd) on loopback that keeps every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[tuple[list[str], bytes]] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
                mailbox.messages.append(
                    (list(envelope.rcpt_tos), bytes(envelope.original_content or envelope.content))
                )
                return "250 Message accepted for delivery"

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()

    def received(self) -> list[dict[str, Any]]:
        from email import policy
        from email.parser import BytesParser

        out = []
        for rcpts, raw in self.messages:
            msg = BytesParser(policy=policy.default).parsebytes(raw)
            body = msg.get_body(preferencelist=("plain",))
            out.append(
                {
                    "to": rcpts,
                    "subject": str(msg["Subject"] or ""),
                    "body": body.get_content() if body is not None else "",
                    "attachments": [a.get_filename() for a in msg.iter_attachments()],
                }
            )
        return out

    def toml(self) -> str:
        return (
            '[email]\nfrom = "OpenLAM Eval <agent@openlam.test>"\n[email.smtp]\n'
            f'host = "127.0.0.1"\nport = {self.port}\nsecurity = "none"\n'
        )


def smtp_available() -> bool:
    try:
        import aiosmtpd.controller  # noqa: F401
    except ImportError:
        return False
    return True
