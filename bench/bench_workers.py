"""Workers on PostgreSQL (issue 9): throughput, queue pick-up latency, takeover time.

A fake OpenAI-compatible server (its own process) answers every plan request after
200 ms with one ``files.write``. Each figure uses a fresh PostgreSQL database and real
``openlam worker`` processes, as an operator runs them:

- runs per second with 1, 2 and 4 workers (``--concurrency`` runs at once per worker),
  the runs queued first, measured from the first run started to the last one finished;
- pick-up latency: runs submitted one at a time to idle workers, from enqueue to the
  worker starting it (DBOS's ``created_at`` → ``started_at_epoch_ms``), p50/p95;
- takeover: a worker is SIGKILLed while its run waits for the model; the time until a
  live worker has taken the run over, and until the run is completed, default settings.

    python bench/bench_workers.py [--runs 60] [--concurrency 4] [--latency 0.2] [--rounds 1]
        [--throughput-only]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql+psycopg://127.0.0.1:5432/test"
SLOW = "slow"  # goals containing this word wait 6 s for their plan (the takeover run)


def plan_for(body: dict) -> dict:
    goal = body["messages"][-1]["content"]
    if SLOW in goal:
        time.sleep(6)
    return {
        "steps": [
            {
                "id": "s1",
                "action": "files.write",
                "args": {"path": f"out/{uuid.uuid4().hex}.md", "content": "done"},
            }
        ]
    }


def serve(latency: float, q: mp.Queue) -> None:
    from tests.fakes.model_servers import FakeOpenAI

    with FakeOpenAI(plan_for, latency=latency) as server:
        q.put(server.url)
        while True:
            time.sleep(3600)


class Setup:
    """A fresh database and workspace, and the workers started on them."""

    def __init__(self, model_url: str) -> None:
        import sqlalchemy as sa

        self.name = f"openlam_bench_{uuid.uuid4().hex[:8]}"
        self.admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {self.name}")
        self.db = f"postgresql://127.0.0.1:5432/{self.name}"
        self.ws = Path(tempfile.mkdtemp(prefix="bench-workers-"))
        # Every run asks the 200 ms model: with learning on, the runs (one goal shape)
        # would replay a playbook learned from the first and never wait for the model.
        (self.ws / "openlam.toml").write_text("[learning]\nenabled = false\n", encoding="utf-8")
        self.env = {
            **os.environ,
            "OPENLAM_DATABASE_URL": self.db,
            "OPENLAM_OPENAI_BASE_URL": f"{model_url}/v1",
            "OPENLAM_MODEL": "openai:fake",
        }
        self.workers: list[subprocess.Popen] = []

    def start_workers(self, n: int, concurrency: int) -> None:
        for _ in range(n):
            self.workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "openlam",
                        "worker",
                        "--workspace",
                        str(self.ws),
                        "--concurrency",
                        str(concurrency),
                    ],
                    env=self.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        while self.alive() < n:
            time.sleep(0.1)

    def alive(self) -> int:
        with self.app().connect() as conn:
            return (
                conn.exec_driver_sql(
                    "SELECT count(*) FROM executors WHERE kind = 'worker' AND state = 'alive'"
                ).scalar()
                if self._has_executors(conn)
                else 0
            )

    @staticmethod
    def _has_executors(conn) -> bool:
        return conn.exec_driver_sql("SELECT to_regclass('executors') IS NOT NULL").scalar()

    def app(self):
        from openlam.memory.engines import engine_for

        return engine_for(self.db)

    def sql(self, query: str, **params) -> list:
        import sqlalchemy as sa

        with self.app().connect() as conn:
            return list(conn.execute(sa.text(query), params))

    def close(self) -> None:
        for w in self.workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in self.workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        self.app().dispose()
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


async def submit(setup: Setup, goals: list[str]) -> list[str]:
    from openlam import Workforce
    from openlam.config import load_settings

    settings = load_settings(setup.ws).with_overrides(database_url=setup.db)
    wf = Workforce(settings=settings, model="openai:fake")
    return [(await wf.submit(goal, agent="operator", route=False)).run_id for goal in goals]


def completed(setup: Setup, ids: list[str]) -> int:
    rows = setup.sql(
        "SELECT count(*) FROM dbos.workflow_status "
        "WHERE workflow_uuid = ANY(:ids) AND status = 'SUCCESS'",
        ids=ids,
    )
    return rows[0][0]


def throughput(
    model_url: str, workers: int, runs: int, concurrency: int
) -> tuple[float, float, float]:
    """Runs per second from the first run started to the last one finished (DBOS's own
    timestamps): the runs are queued before the workers start, so neither submitting
    nor a worker's start-up competes with the runs for the two cores. Also the workers'
    CPU per run (from /proc: from when they are registered to when the queue is
    drained, so a little of their start — DBOS launch — is in it)."""
    setup = Setup(model_url)
    try:
        os.environ["OPENLAM_DATABASE_URL"] = setup.db
        ids = asyncio.run(submit(setup, [f"write status note {i}" for i in range(runs)]))
        setup.start_workers(workers, concurrency)
        cpu0 = sum(_cpu_seconds(w.pid) for w in setup.workers)
        busy0 = _machine_busy()
        while completed(setup, ids) < runs:
            time.sleep(0.05)
        cpu = sum(_cpu_seconds(w.pid) for w in setup.workers) - cpu0
        busy = _busy_share(busy0, _machine_busy())
        ((first, last),) = setup.sql(
            "SELECT min(started_at_epoch_ms), max(updated_at) FROM dbos.workflow_status "
            "WHERE workflow_uuid = ANY(:ids)",
            ids=ids,
        )
        return runs / ((last - first) / 1000), cpu / runs, busy
    finally:
        setup.close()


def _machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far (every process: PostgreSQL and
    the fake server too)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def _busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(after[1] - before[1], 1)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pickup(model_url: str, runs: int) -> list[float]:
    setup = Setup(model_url)
    try:
        os.environ["OPENLAM_DATABASE_URL"] = setup.db
        setup.start_workers(2, 4)
        ids = []
        for i in range(runs):
            ids += asyncio.run(submit(setup, [f"write pickup note {i}"]))
            time.sleep(0.3)
        while completed(setup, ids) < runs:
            time.sleep(0.05)
        rows = setup.sql(
            "SELECT started_at_epoch_ms - created_at FROM dbos.workflow_status "
            "WHERE workflow_uuid = ANY(:ids)",
            ids=ids,
        )
        return sorted(r[0] / 1000 for r in rows)
    finally:
        setup.close()


def takeover(model_url: str) -> tuple[float, float]:
    setup = Setup(model_url)
    try:
        os.environ["OPENLAM_DATABASE_URL"] = setup.db
        setup.start_workers(1, 4)
        (run_id,) = asyncio.run(submit(setup, [f"write a {SLOW} note"]))
        owner = None
        while owner is None:
            rows = setup.sql(
                "SELECT executor_id FROM dbos.workflow_status "
                "WHERE workflow_uuid = :id AND status = 'PENDING'",
                id=run_id,
            )
            owner = rows[0][0] if rows else None
            time.sleep(0.05)
        setup.start_workers(1, 4)  # the survivor, already up when the first one dies
        time.sleep(1.0)  # the run is inside its model request now
        setup.workers[0].send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        taken = done = None
        while done is None:
            ((executor, status),) = setup.sql(
                "SELECT executor_id, status FROM dbos.workflow_status WHERE workflow_uuid = :id",
                id=run_id,
            )
            now = time.perf_counter() - killed
            if taken is None and executor != owner:
                taken = now
            if status == "SUCCESS":
                done = now
            time.sleep(0.05)
        return taken or done, done
    finally:
        setup.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the 1/2/4-worker figures (medians at the end)"
    )
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="skip the pick-up latency and takeover measurements",
    )
    args = parser.parse_args()
    q: mp.Queue = mp.Queue()
    server = mp.Process(target=serve, args=(args.latency, q), daemon=True)
    server.start()
    url = q.get(timeout=30)
    try:
        scaling: dict[int, list[float]] = {2: [], 4: []}
        for _round in range(args.rounds):
            rates = {}
            for n in (1, 2, 4):
                rates[n], cpu, busy = throughput(url, n, args.runs, args.concurrency)
                print(
                    f"{n} worker(s) × {args.concurrency}: {args.runs} runs, "
                    f"{rates[n]:.2f} runs/s, worker CPU {cpu * 1000:.0f} ms per run, "
                    f"machine {busy:.0%} busy (all {os.cpu_count()} cores, every process)",
                    flush=True,
                )
            for n in scaling:
                scaling[n].append(rates[n] / rates[1])
            print(
                f"scaling 1 → 2 workers: {scaling[2][-1]:.2f}×, 1 → 4: {scaling[4][-1]:.2f}×",
                flush=True,
            )
        if args.rounds > 1:
            print(
                f"median of {args.rounds} rounds: 1 → 2 workers "
                f"{statistics.median(scaling[2]):.2f}× "
                f"(each: {', '.join(f'{x:.2f}' for x in scaling[2])}), 1 → 4 "
                f"{statistics.median(scaling[4]):.2f}×"
            )
        if args.throughput_only:
            return
        delays = pickup(url, 20)
        p95 = delays[max(0, round(0.95 * len(delays)) - 1)]
        print(
            f"pick-up latency (20 runs, idle workers): p50 {statistics.median(delays) * 1000:.0f}"
            f" ms, p95 {p95 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
        )
        taken, done = takeover(url)
        print(
            f"takeover after SIGKILL (default lease): taken over in {taken:.1f} s, "
            f"completed {done:.1f} s after the kill"
        )
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
