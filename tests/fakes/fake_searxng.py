"""A local service that answers like a SearXNG instance's search endpoint.

``GET /search?q=…&format=json`` returns SearXNG's JSON shape (results with url, title,
content, engine, category, publishedDate; answers; suggestions; unresponsive_engines).
Like a real instance, it answers 403 for format=json when JSON is not enabled in its
settings, and HTML otherwise.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import FakeService, Response, json_response

PAGE_SIZE = 10

CORPUS: list[dict[str, Any]] = [
    {
        "url": "https://anvils.example/forged",
        "title": "Drop-forged anvils explained",
        "content": "Why drop-forged anvils outlast cast ones.",
        "engine": "duckduckgo",
        "category": "general",
        "publishedDate": None,
    },
    {
        "url": "https://news.example/anvil-prices",
        "title": "Anvil prices rise",
        "content": "Steel costs push anvil prices up 8%.",
        "engine": "bing news",
        "category": "news",
        "publishedDate": "2026-11-20T08:00:00",
    },
    {
        "url": "https://wiki.example/Anvil",
        "title": "Anvil - Wiki",
        "content": "An anvil is a metalworking tool.",
        "engine": "wikipedia",
        "category": "general",
        "publishedDate": None,
    },
]


class FakeSearXNG(FakeService):
    def __init__(self, corpus: list[dict[str, Any]] | None = None) -> None:
        self.corpus = corpus if corpus is not None else CORPUS
        self.json_enabled = True
        self.engines_down = False
        self.queries: list[dict[str, str]] = []
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.json_enabled, self.engines_down = True, False
        self.queries.clear()

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
        parts = urlsplit(path)
        if parts.path != "/search" or method != "GET":
            return 404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.hold()
        if params.get("format") != "json":
            return 200, {"Content-Type": "text/html"}, b"<html><body>results</body></html>"
        if not self.json_enabled:
            return 403, {"Content-Type": "text/html"}, b"<h1>403 Forbidden</h1>"
        if not params.get("q"):
            return 400, {"Content-Type": "text/html"}, b"<h1>Bad Request</h1>"
        self.queries.append(params)
        return json_response(self.answer(params))

    def answer(self, params: dict[str, str]) -> dict[str, Any]:
        query = params["q"]
        unresponsive: list[list[str]] = []
        if self.engines_down:
            found: list[dict[str, Any]] = []
            unresponsive = [["duckduckgo", "timeout"], ["bing", "Suspended: too many requests"]]
        else:
            words = query.lower().split()
            categories = set(filter(None, params.get("categories", "").split(",")))
            found = [
                r
                for r in self.corpus
                if all(w in (r["title"] + " " + r["content"]).lower() for w in words)
                and (not categories or r["category"] in categories)
            ]
        page = int(params.get("pageno", "1"))
        shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        results = [
            {
                **r,
                "engines": [r["engine"]],
                "positions": [i + 1],
                "score": 1.0 / (i + 1),
                "parsed_url": ["https", r["url"].split("/")[2], "/", "", "", ""],
                "template": "default.html",
            }
            for i, r in enumerate(shown)
        ]
        return {
            "query": query,
            "number_of_results": len(found),
            "results": results,
            "answers": ["An anvil weighs 50 kg."] if "weight" in query else [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [f"{query} for sale"] if results else [],
            "unresponsive_engines": unresponsive,
        }
