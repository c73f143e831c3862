"""files: read and write text files, and copy any file, inside the run's workspace and
nowhere else.

Paths go through :func:`openlam.actions.workspace.resolve`: nothing outside the
workspace, no writes to the files the workforce acts under (openlam.toml, policies/,
agents/, .openlam/), no reads of .openlam/.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, NotRequired

from typing_extensions import TypedDict

from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.workspace import file_sha256, relative, resolve, write_file
from openlam.errors import ActionError

MAX_READ_BYTES = 2_000_000
COPY_HINT = "to copy a file exactly, whatever it holds, use files.copy"


class Written(TypedDict):
    path: str
    bytes: int
    sha256: str


class ReadResult(TypedDict):
    path: str
    text: str
    bytes: int
    note: NotRequired[str]


def _verify_written(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    target = resolve(ctx, output["path"], for_write=False)
    if not target.is_file():
        return f"{output['path']} does not exist after writing"
    if file_sha256(target) != output.get("sha256"):
        return f"{output['path']} does not hold what was written"
    return None


@action("files.write", risk=Risk.write, idempotent=True, verify=_verify_written)
def write(ctx: ActionContext, path: str, content: str) -> Written:
    """Write text to a file in the workspace (created or replaced).

    Args:
        path: File path relative to the workspace, e.g. notes.md.
        content: The full text to write.
    """
    target = resolve(ctx, path, for_write=True)
    size, digest = write_file(target, [content.encode("utf-8")])
    return {"path": relative(ctx, target), "bytes": size, "sha256": digest}


@action("files.copy", risk=Risk.write, idempotent=True, verify=_verify_written)
def copy(ctx: ActionContext, source: str, destination: str) -> Written:
    """Copy a file in the workspace byte for byte (any file: text, images, archives).

    Args:
        source: The file to copy, relative to the workspace.
        destination: Where the copy goes, relative to the workspace (created or replaced).
    """
    origin = _file(ctx, source)
    target = resolve(ctx, destination, for_write=True)
    if target == origin:
        raise ActionError(f"{source!r} and {destination!r} are the same file")
    with origin.open("rb") as handle:
        size, digest = write_file(
            target,
            iter(lambda: handle.read(1 << 20), b""),
            new_mode=stat.S_IMODE(origin.stat().st_mode),
        )
    return {"path": relative(ctx, target), "bytes": size, "sha256": digest}


@action("files.read", risk=Risk.read, idempotent=True)
def read(ctx: ActionContext, path: str) -> ReadResult:
    """Read a text file from the workspace.

    Args:
        path: File path relative to the workspace.
    """
    target = _file(ctx, path)
    size = target.stat().st_size
    if size > MAX_READ_BYTES:
        raise ActionError(f"{path} is {size} bytes; files.read reads at most {MAX_READ_BYTES}")
    data = target.read_bytes()
    if b"\0" in data:
        raise ActionError(f"{path} is not a text file (it holds NUL bytes); {COPY_HINT}")
    try:
        return {"path": path, "text": data.decode("utf-8"), "bytes": len(data)}
    except UnicodeDecodeError:
        return {
            "path": path,
            "text": data.decode("utf-8", errors="replace"),
            "bytes": len(data),
            "note": "some bytes are not UTF-8 and read as U+FFFD, so this text is not "
            f"the file's exact content; {COPY_HINT}",
        }


def _file(ctx: ActionContext, path: str) -> Path:
    target = resolve(ctx, path, for_write=False)
    if not target.is_file():
        raise ActionError(f"no file {path!r} in the workspace")
    return target
