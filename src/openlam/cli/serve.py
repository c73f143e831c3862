"""``openlam serve``: the HTTP server (REST API, live events, dashboard) with its own
queue worker."""

from __future__ import annotations

import errno
import ipaddress
import socket
from pathlib import Path
from typing import Annotated

import typer

Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]


def install(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    workspace: Workspace = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Another than loopback needs a token or a user "
            "(openlam tokens create / openlam users add)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free).")] = 8765,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker",
            help="Do not run queued goals here; separate `openlam worker` processes do.",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the API (/api/v1, docs at /api/docs) and run queued goals."""
    import uvicorn

    from openlam.cli.console import console, esc
    from openlam.config import load_settings
    from openlam.server import create_app

    settings = load_settings(workspace)
    for said in provision_tokens(settings):
        console().print(f"OpenLAM: {esc(said)}")
    check_listen_address(settings, host)
    # Bound before the app exists: a port in use is a clear error before the worker
    # starts taking queued goals, and port 0's free port is known and shown.
    sock = listening_socket(host, port)
    app = create_app(settings=settings, run_worker=not no_worker)
    shown = f"[{host}]" if ":" in host else host
    console().print(
        f"OpenLAM serving {esc(str(settings.workspace))} at "
        f"{esc(f'http://{shown}:{sock.getsockname()[1]}/')} (API docs: /api/docs)"
        + ("; queued goals run on separate workers" if no_worker else "")
    )
    config = uvicorn.Config(
        app, log_level=log_level, proxy_headers=False, timeout_graceful_shutdown=10
    )
    uvicorn.Server(config).run(sockets=[sock])


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port``, or a UserError saying why it cannot be."""
    from openlam.errors import UserError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        busy = exc.errno == errno.EADDRINUSE
        raise UserError(
            f"cannot listen on {host} port {port}: {exc.strerror or exc}",
            "choose another port with --port (0: any free one), or stop what is using it "
            "(another `openlam serve`?)"
            if busy
            else "check --host: it must be an address of this machine",
        ) from None
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def provision_tokens(settings: object) -> list[str]:
    """The tokens ``OPENLAM_BOOTSTRAP_ADMIN_TOKEN`` / ``OPENLAM_TOKENS_FILE`` provide,
    made to exist before the server starts (see ``server.credentials``)."""
    import os

    from openlam.memory.store import Store
    from openlam.server.credentials import BOOTSTRAP_TOKEN_ENV, TOKENS_FILE_ENV, Credentials

    if not (os.environ.get(BOOTSTRAP_TOKEN_ENV) or os.environ.get(TOKENS_FILE_ENV)):
        return []
    from openlam.server.credentials import provision_from_env

    store = Store(settings.app_database_url)  # type: ignore[attr-defined]
    return provision_from_env(Credentials(store.engine), dict(os.environ))


def check_listen_address(settings: object, host: str) -> None:
    """Refuse a non-loopback address until someone must authenticate."""
    from openlam.errors import UserError
    from openlam.memory.store import Store
    from openlam.server.credentials import Credentials

    if is_loopback(host):
        return
    store = Store(settings.app_database_url)  # type: ignore[attr-defined]
    if not Credentials(store.engine).any_configured():
        raise UserError(
            f"refusing to listen on {host}: no API token or user exists, so anyone who can "
            "reach this address could run goals",
            "create one first: `openlam tokens create NAME --role admin` (or `openlam users "
            "add NAME --role admin`), or listen on 127.0.0.1",
        )
