"""files: read and write text files inside the run's workspace, and nowhere else.

Paths go through :func:`openlam.actions.workspace.resolve`: nothing outside the
workspace, no writes to the files the workforce acts under (openlam.toml, policies/,
agents/, .openlam/), no reads of .openlam/.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any

from typing_extensions import TypedDict

from openlam.actions.spec import ActionContext, Risk, action
from openlam.actions.workspace import relative, resolve
from openlam.errors import ActionError

MAX_READ_BYTES = 2_000_000


class Written(TypedDict):
    path: str
    bytes: int
    sha256: str


class ReadResult(TypedDict):
    path: str
    text: str
    bytes: int


def _verify_written(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    target = resolve(ctx, output.get("path", args["path"]), for_write=False)
    if not target.is_file():
        return f"{args['path']} does not exist after writing"
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != output.get("sha256"):
        return f"{args['path']} does not hold what was written"
    return None


@action("files.write", risk=Risk.write, idempotent=True, verify=_verify_written)
def write(ctx: ActionContext, path: str, content: str) -> Written:
    """Write text to a file in the workspace (created or replaced).

    Args:
        path: File path relative to the workspace, e.g. notes.md.
        content: The full text to write.
    """
    target = resolve(ctx, path, for_write=True)
    data = content.encode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary file, then an atomic rename: a reader never sees half a file,
    # and concurrent runs writing the same path cannot trip over each other's temp files.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, target)
    return {
        "path": relative(ctx, target),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@action("files.read", risk=Risk.read, idempotent=True)
def read(ctx: ActionContext, path: str) -> ReadResult:
    """Read a text file from the workspace.

    Args:
        path: File path relative to the workspace.
    """
    target = resolve(ctx, path, for_write=False)
    if not target.is_file():
        raise ActionError(f"no file {path!r} in the workspace")
    data = target.read_bytes()
    if len(data) > MAX_READ_BYTES:
        raise ActionError(f"{path} is {len(data)} bytes; files.read reads at most {MAX_READ_BYTES}")
    return {"path": path, "text": data.decode("utf-8", errors="replace"), "bytes": len(data)}
