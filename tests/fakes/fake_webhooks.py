"""Local receivers that answer like Slack, Discord and Mattermost incoming webhooks.

* Slack ``POST /services/T…/B…/<secret>``: JSON ``{"text"}`` → ``200 ok`` (plain text);
  ``400 no_text``, ``404 no_service`` for an unknown hook, ``410 channel_is_archived``.
* Discord ``POST /api/webhooks/<id>/<token>[?wait=true]``: JSON ``{"content"}`` → the
  message object with ``wait=true``, else 204; 2000-character limit, 404 Unknown
  Webhook, 429 with ``retry_after`` when rate limited. ``GET …/messages/<message id>``
  answers the message, or 404 Unknown Message.
* Mattermost ``POST /hooks/<key>``: JSON ``{"text", "channel", "username"}`` → ``200
  ok``; errors as Mattermost's AppError JSON.

``lose_writes`` makes the services acknowledge a post (with an id) but keep nothing.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import FakeService, Response, json_response

SLACK_HOOK = "/services/T0001/B0001/slacksecret123"
SLACK_SALES_HOOK = "/services/T0001/B0002/salessecret456"
SLACK_ARCHIVED_HOOK = "/services/T0001/B0003/archived789"
DISCORD_HOOK = "/api/webhooks/1100/discordtoken123"
MATTERMOST_HOOK = "/hooks/mmkey123abc"


def _text(body: str, status: int) -> Response:
    return status, {"Content-Type": "text/plain; charset=utf-8"}, body.encode()


class FakeWebhooks(FakeService):
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.discord_messages: dict[str, dict[str, Any]] = {}
        self.discord_rate_limited = 0
        self.lose_writes = False
        self._ids = itertools.count(1_200_000_000_000_000_001)
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.received.clear()
        self.discord_messages.clear()
        self.discord_rate_limited = 0
        self.lose_writes = False

    def posts(self, service: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["service"] == service]

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(path)
        if method == "GET" and parts.path.startswith(DISCORD_HOOK + "/messages/"):
            found = self.discord_messages.get(parts.path.rsplit("/", 1)[1])
            return (
                json_response(found)
                if found
                else json_response({"message": "Unknown Message", "code": 10008}, 404)
            )
        if method != "POST":
            return _text("method not allowed", 405)
        self.hold()
        try:
            payload = (
                json.loads(body)
                if headers.get("content-type", "").startswith("application/json")
                else None
            )
        except ValueError:
            payload = None
        record = {
            "path": parts.path,
            "query": parse_qs(parts.query),
            "payload": payload,
            "headers": headers,
        }
        if parts.path.startswith("/services/"):
            return self._slack(parts.path, payload, record)
        if parts.path.startswith("/api/webhooks/"):
            return self._discord(parts.path, parse_qs(parts.query), payload, record)
        if parts.path.startswith("/hooks/"):
            return self._mattermost(parts.path, payload, record)
        return _text("not found", 404)

    def _slack(self, path: str, payload: Any, record: dict[str, Any]) -> Response:
        if path == SLACK_ARCHIVED_HOOK:
            return _text("channel_is_archived", 410)
        if path not in (SLACK_HOOK, SLACK_SALES_HOOK):
            return _text("no_service", 404)
        if not isinstance(payload, dict):
            return _text("invalid_payload", 400)
        if not str(payload.get("text") or "").strip() and not payload.get("blocks"):
            return _text("no_text", 400)
        if not self.lose_writes:
            self.received.append({"service": "slack", **record})
        return _text("ok", 200)

    def _discord(
        self, path: str, query: dict[str, list[str]], payload: Any, record: dict[str, Any]
    ) -> Response:
        if path != DISCORD_HOOK:
            return json_response({"message": "Unknown Webhook", "code": 10015}, 404)
        if self.discord_rate_limited:
            self.discord_rate_limited -= 1
            return json_response(
                {"message": "You are being rate limited.", "retry_after": 0.2, "global": False}, 429
            )
        if not isinstance(payload, dict) or not str(payload.get("content") or "").strip():
            return json_response({"message": "Cannot send an empty message", "code": 50006}, 400)
        content = str(payload["content"])
        if len(content) > 2000:
            return json_response(
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {
                        "content": {
                            "_errors": [
                                {
                                    "code": "BASE_TYPE_MAX_LENGTH",
                                    "message": "Must be 2000 or fewer in length.",
                                }
                            ]
                        }
                    },
                },
                400,
            )
        if not self.lose_writes:
            self.received.append({"service": "discord", **record})
        if query.get("wait") != ["true"]:
            return 204, {}, b""
        mentions_allowed = payload.get("allowed_mentions", {"parse": ["everyone"]})
        pings_everyone = "@everyone" in content and "everyone" in mentions_allowed.get("parse", [])
        message = {
            "id": str(next(self._ids)),
            "type": 0,
            "channel_id": "1099",
            "content": content,
            "author": {
                "id": "1100",
                "username": payload.get("username") or "Captain Hook",
                "bot": True,
            },
            "mention_everyone": pings_everyone,
            "mentions": [],
            "webhook_id": "1100",
            "timestamp": "2026-11-28T10:00:00.000000+00:00",
        }
        if not self.lose_writes:
            self.discord_messages[message["id"]] = message
        return json_response(message)

    def _mattermost(self, path: str, payload: Any, record: dict[str, Any]) -> Response:
        def app_error(error_id: str, message: str, status: int) -> Response:
            return json_response(
                {
                    "id": error_id,
                    "message": message,
                    "detailed_error": "",
                    "request_id": "r1",
                    "status_code": status,
                },
                status,
            )

        if path != MATTERMOST_HOOK:
            return app_error("web.incoming_webhook.invalid.app_error", "Invalid webhook", 400)
        if not isinstance(payload, dict):
            return app_error(
                "web.incoming_webhook.parse.app_error", "Unable to parse incoming data", 400
            )
        if not str(payload.get("text") or "").strip() and not payload.get("attachments"):
            return app_error("web.incoming_webhook.text.app_error", "No text specified", 400)
        if payload.get("channel") == "locked":
            return app_error(
                "web.incoming_webhook.channel_locked.app_error",
                "This webhook is not permitted to post to the requested channel",
                403,
            )
        if not self.lose_writes:
            self.received.append({"service": "mattermost", **record})
        return _text("ok", 200)
