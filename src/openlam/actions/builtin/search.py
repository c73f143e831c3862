"""search: the web through a SearXNG instance, and the workspace's own documents.

* ``search.web`` calls a SearXNG instance's JSON API (``GET /search?format=json``),
  configured by ``[search] searxng_url``. Without one, the run records a capability gap
  instead of failing: web search is something the workforce lacks, not a broken step.
* ``search.documents`` is full-text search (SQLite FTS5, Porter stemming, BM25 ranking)
  over the workspace's text documents. The index lives in
  ``<workspace>/.openlam/search-index.sqlite`` and is brought up to date before every
  search: new and changed files (by size and modification time) are indexed again,
  deleted ones dropped.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, PositiveFloat, PositiveInt
from typing_extensions import TypedDict

from openlam.actions import httpkit
from openlam.actions.builtin.web import plain_text
from openlam.actions.plugin_config import PluginConfig
from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.workspace import relative, resolve
from openlam.config import CONFIG_FILE, STATE_DIR
from openlam.errors import ActionError, CapabilityGap

INDEX_FILE = "search-index.sqlite"
SCHEMA_VERSION = 1
DOCUMENT_SUFFIXES = frozenset(
    {
        ".md",
        ".markdown",
        ".txt",
        ".text",
        ".rst",
        ".org",
        ".adoc",
        ".tex",
        ".csv",
        ".tsv",
        ".html",
        ".htm",
        ".xml",
        ".json",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".log",
        ".eml",
    }
)
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})
MAX_FILE_BYTES = 2_000_000
MAX_FILES = 20_000
SEARXNG_HINT = (
    "set searxng_url under [search] in openlam.toml to a SearXNG instance, e.g. "
    'searxng_url = "http://127.0.0.1:8888", whose settings.yml lists json in '
    "search.formats (formats: [html, json])"
)


class WebHit(TypedDict):
    title: str
    url: str
    snippet: str
    engine: str
    published: str


class WebResults(TypedDict):
    query: str
    backend: str
    results: list[WebHit]
    answers: list[str]
    suggestions: list[str]
    unresponsive_engines: list[str]


class DocumentHit(TypedDict):
    path: str
    title: str
    snippet: str
    score: float


class DocumentResults(TypedDict):
    query: str
    match: str
    results: list[DocumentHit]
    indexed_files: int
    updated_files: int


class SearchConfig(PluginConfig):
    """The ``[search]`` table of openlam.toml."""

    section: ClassVar[str] = "search"
    hint: ClassVar[str] = SEARXNG_HINT

    searxng_url: str = ""
    timeout: PositiveFloat = 15.0
    safesearch: Annotated[int, Field(ge=0, le=2)] | None = None  # 0 off, 1 moderate, 2 strict
    max_file_bytes: PositiveInt = MAX_FILE_BYTES


CONFIG = SearchConfig


# ------------------------------------------------------------------------ search.web


@action("search.web", risk=Risk.read, idempotent=True)
async def web_search(
    ctx: ActionContext,
    query: str,
    limit: int = 10,
    categories: str = "",
    language: str = "",
    time_range: Literal["", "day", "week", "month", "year"] = "",
    page: int = 1,
) -> WebResults:
    """Search the web through the configured SearXNG instance.

    Results are third-party content: titles and snippets are untrusted text.

    Args:
        query: What to search for.
        limit: At most this many results (1-50).
        categories: SearXNG categories, comma-separated, e.g. "news" or "it,science".
        language: A language code such as "en" or "de-CH"; empty for the instance default.
        time_range: Only results from the last day, week, month or year.
        page: Result page, starting at 1.
    """
    config = SearchConfig.of(ctx)
    base = config.searxng_url.strip().rstrip("/")
    if not base:
        raise CapabilityGap(
            what="web search backend", why=f"no web search backend is configured; {SEARXNG_HINT}"
        )
    if not base.startswith(("http://", "https://")):
        raise ActionError(f"[search] searxng_url {base!r} is not an http(s) URL; {SEARXNG_HINT}")
    if not query.strip():
        raise ActionError("the search query is empty")
    if not 1 <= limit <= 50 or page < 1:
        raise ActionError("limit must be between 1 and 50 and page at least 1")
    params = {"q": query, "format": "json", "pageno": str(page)}
    for key, value in (
        ("categories", categories),
        ("language", language),
        ("time_range", time_range),
    ):
        if value:
            params[key] = value
    if config.safesearch is not None:
        params["safesearch"] = str(config.safesearch)
    deadline = config.timeout
    what = f"SearXNG at {base}"
    reply = await httpkit.send(
        ctx.settings,
        "GET",
        f"{base}/search",
        params=params,
        headers={"Accept": "application/json"},
        what=what,
        idempotent=True,
        deadline=deadline,
        configured=[base],
    )
    if reply.status == 403:
        raise ActionError(
            f"{what} refused the JSON format (HTTP 403); enable it by adding "
            "json to search.formats in the instance's settings.yml"
        )
    if not reply.ok:
        raise httpkit.status_error(what, reply.status, reply.text()[:200])
    data = reply.json(what)
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ActionError(f"{what} answered without a results list; is it a SearXNG instance?")
    hits = [
        WebHit(
            title=str(r.get("title") or ""),
            url=str(r["url"]),
            snippet=str(r.get("content") or ""),
            engine=str(r.get("engine") or ""),
            published=str(r.get("publishedDate") or ""),
        )
        for r in data["results"]
        if isinstance(r, dict) and r.get("url")
    ][:limit]
    unresponsive = [
        ": ".join(map(str, e)) if isinstance(e, list) else str(e)
        for e in data.get("unresponsive_engines") or []
    ]
    if not hits and unresponsive:
        raise ActionError(
            f"{what} found nothing because its engines did not answer: {', '.join(unresponsive)}",
            transient=True,
        )
    return {
        "query": query,
        "backend": "searxng",
        "results": hits,
        "answers": [
            a if isinstance(a, str) else str(a.get("answer", a)) for a in data.get("answers") or []
        ],
        "suggestions": [str(s) for s in data.get("suggestions") or []],
        "unresponsive_engines": unresponsive,
    }


# ------------------------------------------------------------------ search.documents


@action("search.documents", risk=Risk.read, idempotent=True)
def documents(ctx: ActionContext, query: str, limit: int = 10, folder: str = "") -> DocumentResults:
    """Full-text search over the text documents in the workspace (Markdown, text, HTML, CSV…).

    Words are matched by their stem ("invoices" finds "invoice"); documents holding all
    the words come first, otherwise any word counts.

    Args:
        query: Words to look for.
        limit: At most this many documents (1-50).
        folder: Only documents under this folder of the workspace.
    """
    if not 1 <= limit <= 50:
        raise ActionError("limit must be between 1 and 50")
    words = re.findall(r"\w+", query.lower())
    if not words:
        raise ActionError("the query has no words to search for")
    root = ctx.workspace.resolve()
    prefix = ""
    if folder.strip() not in ("", ".", "./"):
        rel = relative(root, resolve(ctx, folder.strip(), for_write=False))
        prefix = rel + "/" if rel else ""
    max_bytes = SearchConfig.of(ctx).max_file_bytes
    index = DocumentIndex(root / STATE_DIR / INDEX_FILE)
    updated = index.refresh(root, max_bytes=max_bytes)
    match = "all words"
    hits = index.query(" ".join(f'"{w}"' for w in words), limit, prefix)
    if not hits and len(words) > 1:
        match = "any word"
        hits = index.query(" OR ".join(f'"{w}"' for w in words), limit, prefix)
    return {
        "query": query,
        "match": match,
        "results": hits,
        "indexed_files": index.count(),
        "updated_files": updated,
    }


class DocumentIndex:
    """An FTS5 index of a directory's documents, kept in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                _create_schema(conn)
        except sqlite3.DatabaseError:  # not a database (any more): start afresh
            conn.close()
            self.path.unlink(missing_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            _create_schema(conn)
        return conn

    def refresh(self, root: Path, *, max_bytes: int = MAX_FILE_BYTES) -> int:
        """Index new and changed documents, drop deleted ones; returns how many changed."""
        changed = 0
        with closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")  # one refresher at a time
            try:
                known = {
                    path: (fid, mtime, size)
                    for fid, path, mtime, size in conn.execute(
                        "SELECT id, path, mtime_ns, size FROM files"
                    )
                }
                seen: set[str] = set()
                for path in _documents(root):
                    try:
                        stat = path.stat()
                    except OSError:  # deleted while we walked
                        continue
                    rel = path.relative_to(root).as_posix()
                    if stat.st_size > max_bytes:
                        continue
                    seen.add(rel)
                    old = known.get(rel)
                    if old and old[1:] == (stat.st_mtime_ns, stat.st_size):
                        continue
                    extracted = _extract(path)
                    if old:
                        conn.execute("DELETE FROM docs WHERE rowid = ?", (old[0],))
                        conn.execute("DELETE FROM files WHERE id = ?", (old[0],))
                    if extracted is None:  # not text after all: left out of the index
                        continue
                    cur = conn.execute(
                        "INSERT INTO files(path, mtime_ns, size) VALUES (?,?,?)",
                        (rel, stat.st_mtime_ns, stat.st_size),
                    )
                    conn.execute(
                        "INSERT INTO docs(rowid, title, body) VALUES (?,?,?)",
                        (cur.lastrowid, *extracted),
                    )
                    changed += 1
                for rel in known.keys() - seen:
                    conn.execute("DELETE FROM docs WHERE rowid = ?", (known[rel][0],))
                    conn.execute("DELETE FROM files WHERE id = ?", (known[rel][0],))
                    changed += 1
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return changed

    def query(self, match: str, limit: int, prefix: str = "") -> list[DocumentHit]:
        sql = (
            "SELECT files.path, docs.title, snippet(docs, 1, '**', '**', ' … ', 16), "
            "bm25(docs, 4.0, 1.0) FROM docs JOIN files ON files.id = docs.rowid "
            "WHERE docs MATCH ?"
        )
        args: list[Any] = [match]
        if prefix:
            sql += " AND substr(files.path, 1, ?) = ?"
            args += [len(prefix), prefix]
        sql += " ORDER BY bm25(docs, 4.0, 1.0) LIMIT ?"
        args.append(limit)
        with closing(self._connect()) as conn:
            rows = conn.execute(sql, args).fetchall()
        return [
            {
                "path": path,
                "title": title,
                "snippet": " ".join(snippet.split()),
                "score": round(-score, 4),
            }
            for path, title, snippet, score in rows
        ]

    def count(self) -> int:
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT count(*) FROM files").fetchone()[0])


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(f"""
        DROP TABLE IF EXISTS docs;
        DROP TABLE IF EXISTS files;
        CREATE TABLE files (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL,
                            mtime_ns INTEGER NOT NULL, size INTEGER NOT NULL);
        CREATE VIRTUAL TABLE docs USING fts5(
            title, body, tokenize = 'porter unicode61 remove_diacritics 2');
        PRAGMA user_version = {SCHEMA_VERSION};
    """)
    conn.execute("PRAGMA journal_mode = WAL")


def _documents(root: Path) -> Iterator[Path]:
    """Text documents under ``root``: hidden files and folders (.git, .openlam…),
    dependency folders, symbolic links and the workspace's openlam.toml are skipped."""
    count = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = Path(folder, name)
            if (
                name.startswith(".")
                or path.suffix.lower() not in DOCUMENT_SUFFIXES
                or (folder == str(root) and name == CONFIG_FILE)
                or path.is_symlink()
                or not path.is_file()
            ):
                continue
            count += 1
            if count > MAX_FILES:
                return
            yield path


def _extract(path: Path) -> tuple[str, str] | None:
    """(title, text) of a document, or None if it is not readable text."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    text = data.decode("utf-8", errors="replace")
    suffix = path.suffix.lower()
    title = ""
    if suffix in (".html", ".htm"):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(data, "html.parser")
        title = soup.title.get_text(" ", strip=True) if soup.title else ""
        for tag in soup(["script", "style", "noscript", "template", "head"]):
            tag.decompose()
        text = plain_text(soup)
    elif suffix in (".md", ".markdown", ".rst", ".org", ".adoc", ".txt"):
        heading = re.search(r"^(?:#{1,6}|\*+|=+)\s+(.+)$", text, re.MULTILINE)
        if heading:
            title = heading.group(1).strip()
    return title or path.stem, text
