"""``.openlam/mcp.json`` and ``openapi.json`` are read, changed and written by whoever
adds or removes a source: writers at once (two terminals, a script adding several) must
each keep the others' entries."""

from __future__ import annotations

import threading
from pathlib import Path

from openlam.actions.mcp.config import SERVERS
from openlam.actions.openapi.config import SERVICES
from openlam.config import load_settings


def test_concurrent_adds_and_removes_keep_every_other_entry(workspace: Path) -> None:
    settings = load_settings(workspace)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                SERVERS.save(settings, f"s{n}-{i}", {"transport": "stdio", "command": "true"})
                SERVICES.save(settings, f"api{n}-{i}", {"spec": f"specs/{n}-{i}.yaml"})
                if i % 5 == 4:
                    assert SERVERS.remove(settings, f"s{n}-{i}")
        except BaseException as exc:  # reported below, with the names lost
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    servers, services = SERVERS.load(settings), SERVICES.load(settings)
    assert set(servers) == {f"s{n}-{i}" for n in range(6) for i in range(25) if i % 5 != 4}
    assert set(services) == {f"api{n}-{i}" for n in range(6) for i in range(25)}
