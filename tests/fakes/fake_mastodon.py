"""A local service that answers ``POST /api/v1/statuses`` and ``GET
/api/v1/statuses/<id>`` like a Mastodon server.

It checks what a real server checks: the bearer token and its scope, the body (JSON or
form-encoded), the character limit and the visibility; it honours ``Idempotency-Key``
(the same key from the same account returns the status already created, as Mastodon
does for an hour) and answers with Mastodon's Status entity or ``{"error": …}``.

``lose_writes`` makes it a server that acknowledges a post (an id and all) but keeps
nothing: fetching the status back then answers 404.
"""

from __future__ import annotations

import html
import itertools
import json
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.http import FakeService, Response, json_response

CHARACTER_LIMIT = 500
VISIBILITIES = ("public", "unlisted", "private", "direct")


class FakeMastodon(FakeService):
    def __init__(self, tokens: dict[str, set[str]] | None = None) -> None:
        self.tokens = tokens if tokens is not None else {"token-write": {"write:statuses"}}
        self.statuses: dict[str, dict[str, Any]] = {}
        self.by_key: dict[tuple[str, str], str] = {}
        self.fail_next: list[int] = []
        self.lose_writes = False
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(109_000_000_000_000_001)
        self._lock = threading.Lock()
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.statuses.clear()
        self.by_key.clear()
        self.requests.clear()
        self.fail_next.clear()
        self.lose_writes = False

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        route = urlsplit(path).path
        if method == "GET" and route.startswith("/api/v1/statuses/"):
            found = self.statuses.get(route.rsplit("/", 1)[1])
            return (
                json_response(found) if found else json_response({"error": "Record not found"}, 404)
            )
        if route != "/api/v1/statuses" or method != "POST":
            return json_response({"error": "Record not found"}, 404)
        self.requests.append({"headers": headers, "body": body})
        self.hold()
        if self.fail_next:
            return json_response({"error": "Service Unavailable"}, self.fail_next.pop(0))
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        if token not in self.tokens:
            return json_response({"error": "The access token is invalid"}, 401)
        if "write:statuses" not in self.tokens[token] and "write" not in self.tokens[token]:
            return json_response({"error": "This action is outside the authorized scopes"}, 403)
        params = self._params(headers, body)
        if params is None:
            return json_response({"error": "Invalid request body"}, 400)
        with self._lock:
            key = headers.get("idempotency-key")
            if key and (token, key) in self.by_key:
                return json_response(self.statuses[self.by_key[(token, key)]])
            text = str(params.get("status") or "")
            if not text.strip():
                return json_response({"error": "Validation failed: Text can't be blank"}, 422)
            if len(text) > CHARACTER_LIMIT:
                return json_response(
                    {
                        "error": "Validation failed: Text character limit of "
                        f"{CHARACTER_LIMIT} exceeded"
                    },
                    422,
                )
            visibility = str(params.get("visibility") or "public")
            if visibility not in VISIBILITIES:
                return json_response({"error": f"'{visibility}' is not a valid visibility"}, 422)
            status = self._status(text, visibility, params)
            if self.lose_writes:
                return json_response(status)
            self.statuses[status["id"]] = status
            if key:
                self.by_key[(token, key)] = status["id"]
        return json_response(status)

    @staticmethod
    def _params(headers: dict[str, str], body: bytes) -> dict[str, Any] | None:
        kind = headers.get("content-type", "")
        try:
            if kind.startswith("application/json"):
                data = json.loads(body)
                return data if isinstance(data, dict) else None
            return dict(parse_qsl(body.decode()))
        except (ValueError, UnicodeDecodeError):
            return None

    def _status(self, text: str, visibility: str, params: dict[str, Any]) -> dict[str, Any]:
        sid = str(next(self._ids))
        return {
            "id": sid,
            "created_at": "2026-11-28T10:00:00.000Z",
            "in_reply_to_id": params.get("in_reply_to_id"),
            "sensitive": params.get("sensitive") in (True, "true"),
            "spoiler_text": params.get("spoiler_text") or "",
            "visibility": visibility,
            "language": params.get("language") or "en",
            "uri": f"{self.url}/users/acme/statuses/{sid}",
            "url": f"{self.url}/@acme/{sid}",
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "content": f"<p>{html.escape(text)}</p>",
            "media_attachments": [],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
            "account": {"id": "1", "username": "acme", "acct": "acme", "url": f"{self.url}/@acme"},
        }
