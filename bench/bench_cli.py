"""Wall and CPU of one ``openlam run`` of an offline goal, start to exit (issue 11).

A fresh ``openlam init`` workspace; the README Quickstart's goal with the offline
planner (no model); each run is a new process (start, run, report, exit). Reports the
median wall and the median CPU (user + system) over ``--runs`` runs, after one warm-up
that creates the databases.

    python bench/bench_cli.py [--runs 9] [--src OTHER_CHECKOUT/src]

``--src`` runs another checkout's code with this interpreter (PYTHONPATH ahead of the
installed package), so "before" and "after" can be measured alternately in one session.

Both sides' sources are byte-compiled first, as ``pip install`` does: with
``PYTHONDONTWRITEBYTECODE`` set (this machine sets it) an editable checkout would
otherwise compile every module from source at every start (≈ 0.15 s of CPU here), which
no installed copy does.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = "write 'Hello from OpenLAM' to hello.md"


def one(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(src: str | None, runs: int) -> dict[str, float]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    compileall.compile_dir(src or str(Path(__file__).resolve().parents[1] / "src"), quiet=1)
    ws = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    base = [sys.executable, "-m", "openlam"]
    subprocess.run([*base, "init"], cwd=ws, env=env, capture_output=True, check=True)
    one([*base, "run", GOAL], ws, env)  # warm-up: creates the databases
    walls, cpus = zip(*(one([*base, "run", GOAL], ws, env) for _ in range(runs)), strict=True)
    return {
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "wall_min_s": min(walls),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--src", help="another checkout's src/ to compare with")
    a = parser.parse_args()
    sides = {"this checkout": None, **({f"--src {a.src}": a.src} if a.src else {})}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for _ in range(3):  # alternate, so load from other processes hits both
        for name, src in sides.items():
            results[name].append(measure(src, max(1, a.runs // 3)))
    for name, rs in results.items():
        print(
            f"{name}: wall median {statistics.median(r['wall_s'] for r in rs):.2f} s "
            f"(min {min(r['wall_min_s'] for r in rs):.2f}), CPU median "
            f"{statistics.median(r['cpu_s'] for r in rs):.2f} s"
        )


if __name__ == "__main__":
    main()
