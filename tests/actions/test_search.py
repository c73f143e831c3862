"""search.web against a local SearXNG look-alike; search.documents over a real workspace."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from openlam.actions.builtin import search
from openlam.actions.registry import load_plugins
from openlam.actions.spec import ActionContext, Risk
from openlam.errors import ActionError, CapabilityGap
from openlam.loop.act import execute
from tests.fakes.action_ctx import action_context
from tests.fakes.fake_searxng import FakeSearXNG

WEB = search.web_search.__openlam_action__  # type: ignore[attr-defined]
DOCS = search.documents.__openlam_action__  # type: ignore[attr-defined]


def searx_ctx(workspace: Path, url: str, extra: str = "") -> ActionContext:
    return action_context(workspace, f'[search]\nsearxng_url = "{url}"\n{extra}')


# ------------------------------------------------------------------------ search.web


async def test_no_backend_is_a_capability_gap(workspace: Path) -> None:
    with pytest.raises(CapabilityGap) as caught:
        await WEB.call(action_context(workspace, ""), {"query": "anvils"})
    assert caught.value.what == "web search backend"
    assert "searxng_url under [search] in openlam.toml" in caught.value.why
    assert "json" in caught.value.why


async def test_results_come_from_searxng_json_api(searxng: FakeSearXNG, workspace: Path) -> None:
    ctx = searx_ctx(workspace, searxng.url + "/")
    out = await WEB.call(ctx, {"query": "anvil", "language": "en", "time_range": "month"})
    assert searxng.queries == [
        {"q": "anvil", "format": "json", "pageno": "1", "language": "en", "time_range": "month"}
    ]
    assert [r["url"] for r in out["results"]] == [
        "https://anvils.example/forged",
        "https://news.example/anvil-prices",
        "https://wiki.example/Anvil",
    ]
    first = out["results"][0]
    assert first == {
        "title": "Drop-forged anvils explained",
        "url": "https://anvils.example/forged",
        "snippet": "Why drop-forged anvils outlast cast ones.",
        "engine": "duckduckgo",
        "published": "",
    }
    assert out["results"][1]["published"] == "2026-11-20T08:00:00"
    assert out["suggestions"] == ["anvil for sale"]
    assert out["backend"] == "searxng"


async def test_categories_limit_and_answers(searxng: FakeSearXNG, workspace: Path) -> None:
    ctx = searx_ctx(workspace, searxng.url, "safesearch = 2")
    news = await WEB.call(ctx, {"query": "anvil", "categories": "news"})
    assert [r["url"] for r in news["results"]] == ["https://news.example/anvil-prices"]
    assert searxng.queries[-1]["safesearch"] == "2"
    assert searxng.queries[-1]["categories"] == "news"
    one = await WEB.call(ctx, {"query": "anvil", "limit": 1})
    assert len(one["results"]) == 1
    weight = await WEB.call(ctx, {"query": "anvil weight"})
    assert weight["answers"] == ["An anvil weighs 50 kg."]
    assert weight["results"] == []


async def test_json_format_disabled_says_how_to_enable_it(
    searxng: FakeSearXNG, workspace: Path
) -> None:
    searxng.json_enabled = False
    with pytest.raises(ActionError, match=r"refused the JSON format \(HTTP 403\).*settings.yml"):
        await WEB.call(searx_ctx(workspace, searxng.url), {"query": "anvil"})


async def test_engines_that_did_not_answer_are_a_transient_failure(
    searxng: FakeSearXNG, workspace: Path
) -> None:
    searxng.engines_down = True
    with pytest.raises(ActionError, match="duckduckgo: timeout") as caught:
        await WEB.call(searx_ctx(workspace, searxng.url), {"query": "anvil"})
    assert caught.value.transient


async def test_not_a_searxng_instance(searxng: FakeSearXNG, workspace: Path) -> None:
    ctx = searx_ctx(workspace, searxng.url + "/elsewhere")
    with pytest.raises(ActionError, match=r"answered HTTP 404"):
        await WEB.call(ctx, {"query": "anvil"})


async def test_unreachable_and_slow_backends_fail_naming_the_cause(
    searxng: FakeSearXNG, workspace: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = await execute(
        WEB,
        searx_ctx(workspace, f"http://127.0.0.1:{port}"),
        {"query": "anvil"},
        timeout=10,
        retries=0,
    )
    assert down.status == "failed"
    assert f"cannot connect to SearXNG at http://127.0.0.1:{port}" in down.error
    searxng.delay = 20
    slow = await execute(
        WEB,
        searx_ctx(workspace, searxng.url, "timeout = 0.5"),
        {"query": "anvil"},
        timeout=10,
        retries=0,
    )
    assert slow.status == "failed"
    assert "did not answer within 0.5s" in slow.error


async def test_bad_arguments(searxng: FakeSearXNG, workspace: Path) -> None:
    ctx = searx_ctx(workspace, searxng.url)
    with pytest.raises(ActionError, match="empty"):
        await WEB.call(ctx, {"query": "  "})
    with pytest.raises(ActionError, match="limit"):
        await WEB.call(ctx, {"query": "anvil", "limit": 500})
    with pytest.raises(ActionError, match="not an http"):
        await WEB.call(searx_ctx(workspace, "searx.local:8888"), {"query": "anvil"})


# ------------------------------------------------------------------ search.documents


def write(root: Path, rel: str, content: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.fixture
def docs_workspace(workspace: Path) -> Path:
    write(
        workspace,
        "notes/billing.md",
        "# Billing process\n\nWe send invoices on the "
        "first Monday. Late invoices get a reminder.\n",
    )
    write(workspace, "notes/team.md", "# Team\n\nAda runs billing; Grace runs support.\n")
    write(
        workspace,
        "site/about.html",
        "<html><head><title>About Acme</title>"
        "<script>var invoice = 1;</script></head><body><p>Acme forges "
        "<b>anvils</b> in Zürich.</p></body></html>",
    )
    write(workspace, "data/customers.csv", "name,city\nGlobex,Springfield\nInitech,Austin\n")
    write(workspace, ".hidden/secret.md", "invoice secrets")
    write(workspace, "node_modules/pkg/readme.md", "invoice library")
    write(workspace, "logo.png", b"\x89PNG\r\n\x1a\ninvoice")
    write(workspace, "notes/binary.txt", b"invoice\x00\x01\x02")
    return workspace


async def test_finds_documents_by_stem_with_title_and_snippet(docs_workspace: Path) -> None:
    ctx = action_context(docs_workspace)
    out = await DOCS.call(ctx, {"query": "invoice"})
    assert [r["path"] for r in out["results"]] == ["notes/billing.md"]
    hit = out["results"][0]
    assert hit["title"] == "Billing process"
    assert "**invoices**" in hit["snippet"]
    assert hit["score"] > 0
    assert out["indexed_files"] == 4  # md, md, html, csv: hidden, vendored, binary left out
    assert out["match"] == "all words"
    assert (docs_workspace / ".openlam" / "search-index.sqlite").is_file()


async def test_html_is_indexed_as_text(docs_workspace: Path) -> None:
    ctx = action_context(docs_workspace)
    out = await DOCS.call(ctx, {"query": "anvils zurich"})
    assert [(r["path"], r["title"]) for r in out["results"]] == [("site/about.html", "About Acme")]
    springfield = await DOCS.call(ctx, {"query": "Springfield"})
    assert [r["path"] for r in springfield["results"]] == ["data/customers.csv"]


async def test_all_words_first_then_any_word(docs_workspace: Path) -> None:
    ctx = action_context(docs_workspace)
    both = await DOCS.call(ctx, {"query": "billing Grace"})
    assert [r["path"] for r in both["results"]] == ["notes/team.md"]
    assert both["match"] == "all words"
    either = await DOCS.call(ctx, {"query": "reminder Austin"})
    assert either["match"] == "any word"
    assert {r["path"] for r in either["results"]} == {"notes/billing.md", "data/customers.csv"}


async def test_index_follows_changed_new_and_deleted_files(docs_workspace: Path) -> None:
    ctx = action_context(docs_workspace)
    first = await DOCS.call(ctx, {"query": "invoice"})
    assert first["updated_files"] == 4
    again = await DOCS.call(ctx, {"query": "invoice"})
    assert again["updated_files"] == 0
    billing = docs_workspace / "notes/billing.md"
    billing.write_text("# Billing\n\nWe bill by credit note now.\n", encoding="utf-8")
    stat = billing.stat()
    os.utime(billing, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    write(docs_workspace, "notes/invoices-2027.md", "# 2027\n\nInvoice numbering restarts.\n")
    (docs_workspace / "data/customers.csv").unlink()
    changed = await DOCS.call(ctx, {"query": "invoice"})
    assert changed["updated_files"] == 3
    assert [r["path"] for r in changed["results"]] == ["notes/invoices-2027.md"]
    assert changed["indexed_files"] == 4
    credit = await DOCS.call(ctx, {"query": "credit note"})
    assert [r["path"] for r in credit["results"]] == ["notes/billing.md"]
    gone = await DOCS.call(ctx, {"query": "Springfield"})
    assert gone["results"] == []


async def test_folder_filter_stays_in_the_workspace(docs_workspace: Path) -> None:
    ctx = action_context(docs_workspace)
    out = await DOCS.call(ctx, {"query": "Acme OR billing", "folder": "site"})
    assert [r["path"] for r in out["results"]] == ["site/about.html"]
    with pytest.raises(ActionError, match="outside the workspace"):
        await DOCS.call(ctx, {"query": "billing", "folder": "../.."})


async def test_query_syntax_cannot_break_the_search(docs_workspace: Path) -> None:
    ctx = action_context(docs_workspace)
    out = await DOCS.call(ctx, {"query": 'billing" NEAR( *'})
    assert {r["path"] for r in out["results"]} == {"notes/billing.md", "notes/team.md"}
    with pytest.raises(ActionError, match="no words"):
        await DOCS.call(ctx, {"query": '"*" ()'})


async def test_a_damaged_index_is_rebuilt(docs_workspace: Path) -> None:
    index = docs_workspace / ".openlam" / "search-index.sqlite"
    index.parent.mkdir(parents=True)
    index.write_bytes(b"this is not a database" * 100)
    out = await DOCS.call(action_context(docs_workspace), {"query": "invoice"})
    assert [r["path"] for r in out["results"]] == ["notes/billing.md"]


def test_registered_through_the_entry_point() -> None:
    registry = load_plugins()
    for name in ("search.web", "search.documents"):
        spec = registry.get(name)
        assert spec is not None and spec.risk is Risk.read and spec.idempotent
