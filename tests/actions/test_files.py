"""files.*: a copy is the file, byte for byte; a read never loads what it will refuse, and
says when the text it returns is not the file's exact content; written files get the
permissions a user expects, and concurrent writers of one path never trip each other."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from openlam.actions.builtin import documents, files
from openlam.actions.spec import ActionContext, ActionSpec
from openlam.errors import ActionError
from tests.fakes.action_ctx import action_context

ROOT = Path(__file__).resolve().parents[2]
BINARY = bytes(range(256)) * 40 + b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def spec_of(func: Any) -> ActionSpec:
    return func.__openlam_action__


COPY, READ, WRITE = spec_of(files.copy), spec_of(files.read), spec_of(files.write)


@pytest.fixture
def ctx(workspace: Path) -> ActionContext:
    return action_context(workspace)


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_a_copy_is_the_same_bytes_and_is_verified(ctx: ActionContext) -> None:
    (ctx.workspace / "pic.png").write_bytes(BINARY)
    os.chmod(ctx.workspace / "pic.png", 0o640)
    out = await COPY.call(ctx, {"source": "pic.png", "destination": "copies/pic.png"})
    copied = ctx.workspace / "copies" / "pic.png"
    assert copied.read_bytes() == BINARY
    assert out == {"path": "copies/pic.png", "bytes": len(BINARY), "sha256": out["sha256"]}
    assert copied.stat().st_mode & 0o777 == 0o640 & ~umask()  # as cp makes it
    assert COPY.verify is not None
    assert COPY.verify({"source": "pic.png", "destination": "copies/pic.png"}, out, ctx) is None
    copied.write_bytes(BINARY[:-1])  # changed after the copy: the check says so
    problem = COPY.verify({"source": "pic.png", "destination": "copies/pic.png"}, out, ctx)
    assert problem == "copies/pic.png does not hold what was written"
    assert not [p for p in (ctx.workspace / "copies").iterdir() if p.name.endswith(".tmp")]


async def test_a_copy_reads_and_writes_only_where_actions_may(ctx: ActionContext) -> None:
    (ctx.workspace / ".openlam").mkdir()
    (ctx.workspace / ".openlam" / "secrets.key").write_bytes(b"key")
    (ctx.workspace / "evil.yaml").write_text("scope: org\nallow_external: ['*']\n")
    with pytest.raises(ActionError, match="actions may not read there"):
        await COPY.call(ctx, {"source": ".openlam/secrets.key", "destination": "k.txt"})
    with pytest.raises(ActionError, match="actions may not write there"):
        await COPY.call(ctx, {"source": "evil.yaml", "destination": "policies/org.yaml"})
    with pytest.raises(ActionError, match=r"no file 'missing\.txt'"):
        await COPY.call(ctx, {"source": "missing.txt", "destination": "x.txt"})
    with pytest.raises(ActionError, match="are the same file"):
        await COPY.call(ctx, {"source": "evil.yaml", "destination": "./evil.yaml"})
    assert sorted(p.name for p in ctx.workspace.iterdir()) == [
        ".openlam",
        "evil.yaml",
        "openlam.toml",
    ]


async def test_a_binary_file_is_not_read_as_text(ctx: ActionContext) -> None:
    (ctx.workspace / "pic.png").write_bytes(BINARY)
    with pytest.raises(ActionError) as refused:
        await READ.call(ctx, {"path": "pic.png"})
    assert str(refused.value) == (
        "pic.png is not a text file (it holds NUL bytes); to copy a file exactly, whatever it "
        "holds, use files.copy"
    )


async def test_text_that_is_not_utf8_is_read_with_a_note(ctx: ActionContext) -> None:
    (ctx.workspace / "latin1.csv").write_bytes("name;city\nJosé;Zürich\n".encode("latin-1"))
    out = await READ.call(ctx, {"path": "latin1.csv"})
    assert out["text"] == "name;city\nJos\ufffd;Z\ufffdrich\n"
    assert "not the file's exact content" in out["note"] and "files.copy" in out["note"]
    (ctx.workspace / "utf8.md").write_text("José, Zürich \ufffd\n", encoding="utf-8")
    assert await READ.call(ctx, {"path": "utf8.md"}) == {
        "path": "utf8.md",
        "text": "José, Zürich \ufffd\n",
        "bytes": len("José, Zürich \ufffd\n".encode()),
    }


def test_a_file_too_large_to_read_is_refused_before_it_is_read(workspace: Path) -> None:
    # 3 GB, sparse: reading it first would take 3 GB of memory to refuse it
    with (workspace / "huge.log").open("wb") as handle:
        handle.truncate(3_000_000_000)
    script = (
        "import asyncio, resource, sys\n"
        "from pathlib import Path\n"
        "from openlam.actions.builtin import files\n"
        "from openlam.errors import ActionError\n"
        "from tests.fakes.action_ctx import action_context\n"
        "ctx = action_context(Path(sys.argv[1]))\n"
        "try:\n"
        "    asyncio.run(files.read.__openlam_action__.call(ctx, {'path': 'huge.log'}))\n"
        "except ActionError as exc:\n"
        "    print(exc)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(workspace)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said, peak_mb = done.stdout.splitlines()[-2:]
    assert said == "huge.log is 3000000000 bytes; files.read reads at most 2000000", done.stderr
    assert int(peak_mb) < 1000


async def test_a_written_file_gets_the_permissions_a_user_expects(ctx: ActionContext) -> None:
    await WRITE.call(ctx, {"path": "site/index.html", "content": "<h1>hi</h1>"})
    made = ctx.workspace / "site" / "index.html"
    assert made.stat().st_mode & 0o777 == 0o666 & ~umask()  # readable by a web server
    os.chmod(made, 0o600)  # the user made it private: a rewrite keeps that
    await WRITE.call(ctx, {"path": "site/index.html", "content": "<h1>hello</h1>"})
    assert made.stat().st_mode & 0o777 == 0o600
    assert made.read_text() == "<h1>hello</h1>"


def test_concurrent_writers_of_one_path_never_trip_each_other(workspace: Path) -> None:
    """Two runs' steps have the same ids (s1, s2…): a temporary file named by step once
    let one writer rename away another's half-written file."""
    write_markdown = spec_of(documents.write_markdown)
    contexts = [action_context(workspace, step_id="s1", run_id=f"run-{n}") for n in range(6)]
    failures: list[BaseException] = []

    def writer(ctx: ActionContext) -> None:
        for i in range(40):
            args = {"path": "report.md", "content": f"{ctx.run_id}.{i}"}
            try:
                asyncio.run(write_markdown.call(ctx, args))
            except BaseException as exc:  # collected and reported below
                failures.append(exc)

    threads = [threading.Thread(target=writer, args=(ctx,)) for ctx in contexts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert (workspace / "report.md").read_text().startswith("run-")
    assert [p.name for p in workspace.iterdir() if p.name.endswith(".tmp")] == []
