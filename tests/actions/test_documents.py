"""documents: Markdown, CSV, HTML and PDF deliverables written into the workspace."""

from __future__ import annotations

import csv
import io
import re
import zlib
from pathlib import Path
from typing import Any

import pytest

from openlam.actions.builtin import documents
from openlam.actions.registry import load_plugins
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError
from tests.fakes.action_ctx import action_context

REGISTRY = load_plugins()
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


async def call(action_name: str, ctx: ActionContext, /, **args: Any) -> Any:
    """Call an action as the loop does and require its own verification to pass."""
    spec = REGISTRY.get(action_name)
    assert spec is not None, f"{action_name} is not registered"
    output = await spec.call(ctx, args)
    assert spec.verify is not None
    assert spec.verify(args, output, ctx) is None
    return output


def verify(action_name: str, output: Any, ctx: ActionContext) -> str | None:
    spec = REGISTRY.get(action_name)
    assert spec is not None and spec.verify is not None
    return spec.verify({}, output, ctx)


@pytest.fixture
def ctx(workspace: Path) -> ActionContext:
    return action_context(workspace)


async def test_markdown_is_written_inside_the_workspace(ctx: ActionContext) -> None:
    out = await call(
        "documents.write_markdown", ctx, path="reports/brief", content="Hello.", title="Brief"
    )
    assert out["path"] == "reports/brief.md"
    assert (ctx.workspace / "reports/brief.md").read_text() == "# Brief\n\nHello.\n"
    kept = await call(
        "documents.write_markdown", ctx, path="notes.md", content="# Own\n\nx", title="Ignored"
    )
    assert (ctx.workspace / kept["path"]).read_text() == "# Own\n\nx\n"

    with pytest.raises(ActionError, match="outside the workspace"):
        await call("documents.write_markdown", ctx, path="../escape.md", content="x")
    assert not (ctx.workspace.parent / "escape.md").exists()

    (ctx.workspace / kept["path"]).write_text("changed afterwards")
    assert (
        verify("documents.write_markdown", kept, ctx) == "notes.md does not hold what was written"
    )


async def test_csv_from_objects_and_from_lists(ctx: ActionContext) -> None:
    rows = [
        {"name": "Acme", "revenue": 1200.5, "tags": ["b2b", "eu"]},
        {"name": "Ærø Café", "city": "Ærøskøbing", "active": True},
        {"name": '=HYPERLINK("http://evil")', "revenue": "-5", "city": None},
    ]
    out = await call("documents.write_csv", ctx, path="leads.csv", rows=rows)
    assert out["rows"] == 3
    assert out["columns"] == ["name", "revenue", "tags", "city", "active"]
    text = (ctx.workspace / "leads.csv").read_text(encoding="utf-8")
    records = list(csv.reader(io.StringIO(text)))
    assert records == [
        ["name", "revenue", "tags", "city", "active"],
        ["Acme", "1200.5", '["b2b", "eu"]', "", ""],
        ["Ærø Café", "", "", "Ærøskøbing", "true"],
        ['\'=HYPERLINK("http://evil")', "-5", "", "", ""],  # a formula is defused, -5 is data
    ]

    listed = await call(
        "documents.write_csv",
        ctx,
        path="grid",
        rows=[[1, "a"], [2, "b"]],
        columns=["n", "letter"],
        excel=True,
    )
    raw = (ctx.workspace / listed["path"]).read_bytes()
    assert listed["path"] == "grid.csv" and raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig") == "n,letter\r\n1,a\r\n2,b\r\n"

    with pytest.raises(ActionError, match="row 2 has 1 cells but there are 2 columns"):
        await call(
            "documents.write_csv", ctx, path="bad.csv", rows=[[1, 2], [3]], columns=["a", "b"]
        )
    with pytest.raises(ActionError, match=r"row 1 has the field.*'extra'"):
        await call(
            "documents.write_csv", ctx, path="bad.csv", rows=[{"a": 1, "extra": 2}], columns=["a"]
        )

    (ctx.workspace / "leads.csv").write_text("name\r\nonly one\r\n")
    assert verify("documents.write_csv", out, ctx) is not None


async def test_html_pages_are_complete_and_markdown_is_escaped(ctx: ActionContext) -> None:
    frag = await call(
        "documents.write_html",
        ctx,
        path="page.html",
        content="<p>Hi <b>there</b></p>",
        title="A <title> & more",
    )
    page = (ctx.workspace / frag["path"]).read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>A &lt;title&gt; &amp; more</title>" in page
    assert "<p>Hi <b>there</b></p>" in page and '<meta charset="utf-8">' in page

    md = await call(
        "documents.write_html",
        ctx,
        path="md.html",
        markdown=True,
        title="Report",
        content="Some **bold**.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script>",
    )
    page = (ctx.workspace / md["path"]).read_text()
    assert "<h1>Report</h1>" in page and "<strong>bold</strong>" in page
    assert "<td>1</td>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page

    whole = "<!doctype html><html><body><p>as given</p></body></html>"
    out = await call("documents.write_html", ctx, path="whole.html", content=whole)
    assert (ctx.workspace / out["path"]).read_text() == whole


def _pdf_text_streams(data: bytes) -> bytes:
    """The decompressed content of every stream, to look for drawing operators."""
    out = b""
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            out += zlib.decompress(m.group(1))
        except zlib.error:
            out += m.group(1)
    return out


@pytest.mark.skipif(
    not DEJAVU.is_file(), reason="DejaVu fonts not installed (Debian package fonts-dejavu-core)"
)
async def test_pdf_draws_unicode_with_a_truetype_font(ctx: ActionContext) -> None:
    content = (
        "## Summary\n\nÆrøskøbing — “quoted” Ωμέγα Привет ∑ 日本\n\n"
        "- one\n- **two**\n\n| k | v |\n|---|---|\n| a | 1 |\n\n```\ncode()\n```\n"
    )
    out = await call(
        "documents.write_pdf",
        ctx,
        path="brief.pdf",
        content=content,
        title="Brief — Q3",
        author="OpenLAM",
    )
    assert out["font"] == "DejaVuSans" and out["layout"] == "markdown"
    assert out["replaced_characters"] == 0
    assert out["missing_glyphs"] == ["日", "本"]  # DejaVu has no CJK: reported, not hidden
    data = (ctx.workspace / "brief.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and out["bytes"] == len(data) and out["pages"] == 1
    assert b"/FontFile2" in data  # an embedded TrueType font
    assert b"DejaVuSans" in data


async def test_pdf_without_a_unicode_font_replaces_what_it_cannot_draw(
    ctx: ActionContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(documents, "_font_dirs", lambda: [])
    out = await call(
        "documents.write_pdf",
        ctx,
        path="latin.pdf",
        content="Ærø “quoted” — Ωμέγα ∑ 日本 ✓",
        title="Čeština",
    )
    assert out["font"] == "Helvetica" and out["layout"] == "markdown"
    # Æ and ø are Latin-1; the quotes and dash become ASCII; č loses its háček; the others
    # become "?" — 5 + 2 + 1 + 3 + 2 + 1 Greek/CJK/check characters replaced in all.
    assert out["replaced_characters"] == 14
    data = (ctx.workspace / "latin.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and b"/Helvetica" in data
    streams = _pdf_text_streams(data)
    assert b'"quoted" - ' in streams and b"?????" in streams


async def test_pdf_configured_font_must_exist(workspace: Path) -> None:
    ctx = action_context(workspace, '[documents]\npdf_font = "fonts/missing.ttf"\n')
    with pytest.raises(ActionError, match=r"pdf_font = 'fonts/missing.ttf'.*\.ttf"):
        await call("documents.write_pdf", ctx, path="x.pdf", content="x")


async def test_pdf_falls_back_to_plain_text_when_layout_is_impossible(ctx: ActionContext) -> None:
    columns = 60  # more columns than an A4 page can hold
    table = (
        "|"
        + "|".join(f"c{i}" for i in range(columns))
        + "|\n|"
        + "|".join("---" for _ in range(columns))
        + "|\n|"
        + "|".join("x" * 30 for _ in range(columns))
        + "|\n"
    )
    out = await call("documents.write_pdf", ctx, path="wide.pdf", content=table)
    assert out["layout"] == "plain" and out["pages"] >= 1


async def test_pdf_pages_images_and_verification(ctx: ActionContext) -> None:
    from PIL import Image

    Image.new("RGB", (40, 20), "red").save(ctx.workspace / "logo.png")
    long_text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 40 for i in range(60))
    content = (
        "![logo](logo.png)\n\n![remote](http://198.51.100.7/x.png)\n\n"
        "![outside](../secret.png)\n\n" + long_text
    )
    out = await call("documents.write_pdf", ctx, path="long.pdf", content=content)
    assert out["pages"] > 3
    assert out["skipped_images"] == ["http://198.51.100.7/x.png", "../secret.png"]
    data = (ctx.workspace / "long.pdf").read_bytes()
    assert b"/Subtype /Image" in data  # the workspace image is embedded

    (ctx.workspace / "long.pdf").write_bytes(data[: len(data) // 2])
    assert "does not hold what was written" in (verify("documents.write_pdf", out, ctx) or "")
    (ctx.workspace / "long.pdf").unlink()
    assert "does not exist" in (verify("documents.write_pdf", out, ctx) or "")
