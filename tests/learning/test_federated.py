# ruff: noqa: RUF002, RUF003 (σ, ε, δ: written as in the docs)
"""Federated sharing through real Flower (ServerApp, ClientApp, FedAvg, LocalDpMod, its
wire format): five member workspaces with known statistics share one round; the
aggregate each receives is close to the truth pooled over all five; what the server
received is each member's counts plus Gaussian noise of the calibrated σ, never the
counts themselves; no goal, argument, output, email or name planted in a workspace
appears in any message or in what the members store; the privacy budget stops sharing;
`openlam federate join|status|leave|simulate` behave, and say what to install without
Flower."""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

pytest.importorskip(
    "flwr", reason="Flower is not installed here; scripts/test-federated.sh runs these"
)

from openlam.config import load_settings
from openlam.learning.federated import membership
from openlam.learning.federated.flower import simulate
from openlam.learning.federated.privacy import (
    classic_sigma,
    delta_of,
    noise_sigma,
)
from openlam.learning.federated.vectors import Vocabulary, local_vector
from openlam.learning.literals import shape
from openlam.learning.playbooks import Playbook
from openlam.learning.store import LearningStore
from openlam.memory.store import Store
from openlam.memory.tables import learn_playbooks
from tests.learning.test_learn_cli import cli

EPSILON, DELTA = 1.0, 1e-6
SECRET_GOAL = "email ceo.private@nightjar-acquisition.test the NIGHTJAR layoff list"
SECRETS = [
    "NIGHTJAR",
    "nightjar",
    "ceo.private",
    "nightjar-acquisition",
    "layoff",
    "acme.secret_tool",
    "agent-of-nightjar",
    "run-nightjar",
]
# Each member's true success rate per action, and its number of calls.
TRUTH = {
    "email.send": ([0.95, 0.9, 0.85, 0.8, 0.99], [400, 300, 500, 200, 600]),
    "crm.search": ([0.5, 0.6, 0.7, 0.55, 0.65], [300, 300, 300, 300, 300]),
}
PLAYBOOK_RUNS = [(300, 50), (200, 100), (400, 20), (250, 50), (350, 30)]  # successes, failures


def _store(ws: Path) -> LearningStore:
    url = load_settings(ws).app_database_url
    Store(url)
    return LearningStore(url)


def _member(ws: Path, i: int, rng: random.Random, **settings: float) -> None:
    """A workspace whose counts are known, with secrets planted where learning keeps
    text: a playbook's goal and arguments, an error message, a lesson, a custom tool."""
    store = _store(ws)
    calls = []
    for action, (rates, counts) in TRUTH.items():
        source = action.split(".")[0]
        ms = 150.0 if action == "email.send" else 2000.0
        n_ok = round(rates[i] * counts[i])
        for k in range(counts[i]):
            ok = k < n_ok
            error = None if ok else "mail to ceo.private@nightjar-acquisition.test bounced"
            calls.append((action, source, ok, ms + rng.random(), error))
    calls.append(("acme.secret_tool", "acme", True, 5.0, None))
    rng.shuffle(calls)
    store.record_calls(calls)
    pb = Playbook(
        id=f"pb-nightjar{i}",
        shape=shape(SECRET_GOAL),
        pattern=".*",
        params={},
        steps=[
            {
                "action": "email.send",
                "args": {"to": "ceo.private@nightjar-acquisition.test", "body": "NIGHTJAR"},
            }
        ],
        agent="agent-of-nightjar",
        model="ollama:nightjar",
        example=SECRET_GOAL,
    )
    store.learned(pb, "run-nightjar-0")
    store.replayed(pb.id, "run-nightjar-1", "NIGHTJAR list not sent to ceo.private")
    ok, bad = PLAYBOOK_RUNS[i]  # as if replayed this often (one transaction, not hundreds)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(learn_playbooks)
            .where(learn_playbooks.c.id == pb.id)
            .values(successes=ok, failures=bad)
        )
    store.add_lesson(
        agent="agent-of-nightjar",
        action="email.send",
        kind="denied",
        text="never send the NIGHTJAR layoff list",
        run_id="run-nightjar-0",
        step_id="s1",
    )
    membership.save(
        ws,
        membership.Membership(
            server="local", epsilon=EPSILON, delta=DELTA, joined_at=time.time(), **settings
        ),
    )


def _members(tmp_path: Path, count: int, seed: int, prefix: str = "m") -> list[Path]:
    """``count`` member workspaces, ``prefix0``…, their histories drawn from ``seed``."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        ws = tmp_path / f"{prefix}{i}"
        ws.mkdir()
        _member(ws, i, rng)
        out.append(ws)
    return out


@pytest.fixture
def members(tmp_path: Path) -> list[Path]:
    return _members(tmp_path, 5, seed=7, prefix="org")


def test_five_members_get_the_pooled_rates_and_the_server_sees_only_noise(
    members: list[Path],
) -> None:
    raw = {}
    grid = simulate(members)
    received = grid.received()
    assert sorted(received) == [1, 2, 3, 4, 5]
    vocab = Vocabulary.from_config(
        json.loads(json.dumps(membership.rounds(members[0])[0]))["vocabulary"]
    )
    sigma = noise_sigma(EPSILON, DELTA)

    # What every member received back: success rates close to the pooled truth.
    for action, (rates, counts) in TRUTH.items():
        truth = sum(round(r * n) for r, n in zip(rates, counts, strict=True)) / sum(counts)
        for ws in members:
            got = membership.community(ws)
            assert got is not None and got["members"] == 5
            row = got["actions"][action]
            assert abs(row["rate"] - truth) < 0.04, (action, row, truth)
            assert abs(row["calls"] - sum(counts)) < 0.05 * sum(counts)
            source = got["sources"][action.split(".")[0]]
            assert abs(source["rate"] - truth) < 0.04
    print(
        "aggregate error:",
        {
            a: round(
                membership.community(members[0])["actions"][a]["rate"]  # type: ignore[index]
                - sum(round(r * n) for r, n in zip(rs, ns, strict=True)) / sum(ns),
                4,
            )
            for a, (rs, ns) in TRUTH.items()
        },
    )
    assert "acme.secret_tool" not in membership.community(members[0])["actions"]  # type: ignore[index]
    # The playbooks' goal shape, in its hashed bucket: the pooled replay success rate.
    from openlam.learning.gist import gist_key

    bucket = str(vocab.bucket(gist_key(shape(SECRET_GOAL))))
    pooled = sum(s for s, _ in PLAYBOOK_RUNS) / sum(s + f for s, f in PLAYBOOK_RUNS)
    shape_rate = membership.community(members[0])["shape_buckets"][bucket]["rate"]  # type: ignore[index]
    assert abs(shape_rate - pooled) < 0.04

    # What the server received from each member: its raw counts plus noise of scale σ,
    # exactly what the member's audit record says it sent.
    for node, ws in enumerate(members, start=1):
        raw[node] = local_vector(_store(ws), vocab).vector
        sent = received[node].content["arrays"]["stats"].numpy().tolist()
        assert sent == membership.rounds(ws)[-1]["sent"]
        noise = [s - r for s, r in zip(sent, raw[node], strict=True)]
        assert statistics.pstdev(noise) == pytest.approx(sigma, rel=0.15)
        assert abs(statistics.fmean(noise)) < 5 * sigma / math.sqrt(len(noise))
        # no count comes through as it is: each differs from the raw one by noise
        assert sum(abs(x) < 0.001 for x in noise) <= 2
    # The σ of ε = 1, δ = 1e-6 and sensitivity 2 (analytic Gaussian mechanism)
    assert 8.0 < sigma < classic_sigma(EPSILON, DELTA)

    # No goal, argument, output, email, agent, model, run id or custom tool name in any
    # message that crossed the wire, nor in what the members keep of the federation.
    assert len(grid.wire) == 20  # 5 × (train out, train back, aggregate out, ack back)
    for w in grid.wire:
        for secret in SECRETS:
            assert secret.encode() not in w.data, (w.direction, secret)
    for ws in members:
        for path in membership.folder(ws).iterdir():
            text = path.read_text(encoding="utf-8")
            for secret in SECRETS:
                assert secret not in text, (path, secret)


def test_noise_is_calibrated_to_the_stated_epsilon() -> None:
    for eps in (0.5, 1.0, 4.0, 8.0):
        sigma = noise_sigma(eps, DELTA)
        assert delta_of(sigma, eps) <= DELTA < delta_of(0.99 * sigma, eps)
    # tighter than the textbook formula where that one holds, and monotone in ε
    assert noise_sigma(0.5, 1e-5) < classic_sigma(0.5, 1e-5)
    assert noise_sigma(8.0, DELTA) < noise_sigma(1.0, DELTA) < noise_sigma(0.5, DELTA)


def test_clipping_bounds_what_one_member_weighs(tmp_path: Path) -> None:
    wss = _members(tmp_path, 2, seed=4)
    membership.save(wss[0], membership.Membership(server="local", epsilon=EPSILON, clip=50.0))
    grid = simulate(wss)
    vocab = Vocabulary.from_config(membership.rounds(wss[0])[0]["vocabulary"])
    raw = local_vector(_store(wss[0]), vocab).vector
    norm = math.sqrt(sum(x * x for x in raw))
    assert norm > 500  # so the clip of 50 applies: the whole vector is scaled down
    sent = grid.received()[1].content["arrays"]["stats"].numpy().tolist()
    noise = [s - r * 50.0 / norm for s, r in zip(sent, raw, strict=True)]
    assert statistics.pstdev(noise) == pytest.approx(noise_sigma(EPSILON, DELTA), rel=0.15)
    assert membership.rounds(wss[0])[0]["clip"] == 50.0


def test_a_member_sending_what_is_not_numbers_is_left_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One broken or hostile member (NaN, inf in its vector) made the mean NaN for every
    member, and each one's round failed reading it back."""
    from openlam.learning.federated import flower
    from openlam.learning.federated.vectors import LocalStats

    wss = _members(tmp_path, 3, seed=5)
    honest = flower.local_vector

    def vector_of(store: LearningStore, vocab: Vocabulary) -> LocalStats:
        stats = honest(store, vocab)
        if "/m0/" in str(store.engine.url):  # the broken member
            bad = [math.nan, math.inf] * vocab.size
            return LocalStats(bad[: vocab.size], stats.left_out_actions, stats.playbooks)
        return stats

    monkeypatch.setattr(flower, "local_vector", vector_of)
    simulate(wss)
    for ws in wss:
        got = membership.community(ws)
        assert got is not None and got["members"] == 2  # the other two
        rates = [row["rate"] for row in got["actions"].values()]
        assert rates and all(math.isfinite(r) for r in rates)


def test_a_vocabulary_too_large_is_refused() -> None:
    config = {"actions": [f"a{i}" for i in range(20_000)], "sources": [], "salt": "x"}
    with pytest.raises(ValueError, match="vocabulary too large"):
        Vocabulary.from_config({**config, "shape-buckets": 64})
    with pytest.raises(ValueError, match="vocabulary too large or empty"):
        Vocabulary.from_config({**config, "actions": ["a"], "shape-buckets": 0})


def test_the_budget_stops_sharing(tmp_path: Path) -> None:
    rng = random.Random(3)
    wss = []
    for i in range(2):
        ws = tmp_path / f"m{i}"
        ws.mkdir()
        _member(ws, i, rng)
        wss.append(ws)
    membership.save(wss[0], membership.Membership(server="local", epsilon=2.0, budget=3.0))
    simulate(wss, {"rounds": 2})
    assert len(membership.rounds(wss[0])) == 1  # the second round would spend ε 4 > 3
    assert len(membership.rounds(wss[1])) == 2
    assert membership.spent(wss[0]) == (2.0, pytest.approx(1e-6))


def _run(*args: str) -> tuple[int, str, str]:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "openlam", *args], capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_cli_join_status_simulate_leave(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    rng = random.Random(5)
    for i, ws in enumerate((a, b)):
        ws.mkdir()
        _member(ws, i, rng)
        membership.leave(ws)

    code, _, err = cli(a, "federate", "join", "fl.example.test:9092", "--epsilon", "0")
    assert code == 2 and "epsilon must be a number above 0" in err
    code, _, err = cli(a, "federate", "join", "fl.example.test:9092", "--delta", "0.5")
    assert code == 2 and "delta must be above 0 and below 0.01" in err
    code, _, err = cli(a, "federate", "join", "x:1", "--epsilon", "4", "--budget", "2")
    assert code == 2 and "budget" in err
    assert "Not a member" in cli(a, "federate", "status")[1]

    code, out, err = cli(a, "federate", "join", "fl.example.test:9092", "--epsilon", "4")
    assert code == 0, err
    assert "joined fl.example.test:9092: ε 4" in out and "never goals" in out
    assert "openlam federate node --workspace" in out
    code, out, _ = cli(a, "federate", "node", "--dry-run")
    assert out.startswith("flower-supernode --superlink fl.example.test:9092 --node-config")
    assert json.dumps(str(a)) in out
    code, out, err = cli(b, "federate", "join", "fl.example.test:9092", "--epsilon", "4")
    assert code == 0, err

    code, out, err = _run("federate", "simulate", str(a), str(b))
    assert code == 0, err
    assert "shared 1 round(s), ε spent 4" in out

    code, out, _ = cli(a, "federate", "status")
    assert "Member of fl.example.test:9092" in out
    assert "Privacy spent: ε 4, δ 1e-06 of a budget of 10 over 1 round(s)" in out
    assert "sent 497 numbers" in out or "sent " in out
    assert "email.send" in out and "crm.search" in out  # the community table
    assert "NIGHTJAR" not in out
    code, out, _ = cli(a, "federate", "status", "--vectors")
    assert "action email.send successes: " in out
    status = json.loads(cli(a, "federate", "status", "--json")[1])
    assert status["spent"] == {"epsilon": 4.0, "delta": 1e-6, "rounds": 1}
    assert status["rounds"][0]["sent"] == membership.rounds(a)[0]["sent"]

    tools = cli(a, "learn", "tools")[1]  # the community's rate next to the local one
    assert "community" in tools and "email.send" in tools

    code, out, _ = cli(a, "federate", "leave")
    assert code == 0 and "left fl.example.test:9092" in out and "ε 4 spent" in out
    assert membership.load(a) is None and membership.community(a) is None
    assert len(membership.rounds(a)) == 1  # the audit trail stays
    assert "community" not in cli(a, "learn", "tools")[1]
    code, _, err = _run("federate", "simulate", str(a), str(b))
    assert code == 2 and "not a member of a federation" in err
    assert "nothing to leave" in cli(a, "federate", "leave")[1]


def test_without_flower_the_error_says_what_to_install(tmp_path: Path) -> None:
    import os

    from tests.procs import openlam

    blocker = tmp_path / "blocker"
    (blocker / "flwr").mkdir(parents=True)
    (blocker / "flwr" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'flwr'\", name='flwr')\n"
    )
    ws = tmp_path / "ws"
    ws.mkdir()
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    proc = openlam(ws, "federate", "join", "fl.example.test:9092", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert "federated sharing needs Flower (flwr), which is not installed" in err
    assert "pip install 'openlam[federated]'" in err
    assert membership.load(ws) is None
    proc = openlam(ws, "federate", "status", env=env)  # reading works without Flower
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Not a member" in out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: object, timeout: float = 90.0) -> None:
    import socket

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert getattr(proc, "poll")() is None, "the SuperLink exited"  # noqa: B009
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"nothing listens on port {port} after {timeout:g}s")


def test_a_deployed_round_superlink_supernodes_and_flwr_run(tmp_path: Path) -> None:
    """The same apps under Flower's deployment engine: a SuperLink, a SuperNode per
    member started as `openlam federate node` starts it, and `flwr run` of the Flower
    App that ships in the package."""
    import os
    import shutil
    import signal
    import subprocess
    import sys

    import openlam.learning.federated as federated

    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "flower-superlink").exists():
        pytest.skip("Flower's commands are not installed next to this Python")
    home = tmp_path / "flwr-home"
    home.mkdir()
    port = _free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "test"\n\n[superlink.test]\naddress = "127.0.0.1:{port}"\n'
        "insecure = true\n"
    )
    env = {
        **os.environ,
        "FLWR_HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    rng = random.Random(9)
    wss = []
    for i in range(2):
        ws = tmp_path / f"org{i}"
        ws.mkdir()
        _member(ws, i, rng)
        membership.save(ws, membership.Membership(server=f"127.0.0.1:{port}", epsilon=2.0))
        wss.append(ws)
    procs: list[subprocess.Popen[bytes]] = []

    def start(*command: str) -> None:
        log = (tmp_path / f"{len(procs)}.log").open("wb")
        procs.append(
            subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    try:
        start(
            str(bin_dir / "flower-superlink"),
            "--insecure",
            "--port",
            str(port),
            "--disable-runtime-dependency-installation",
            "--database",
            str(tmp_path / "link.db"),
        )
        _wait_for(port, procs[0])
        for ws in wss:  # each member's node, on its own local port
            start(
                str(bin_dir / "openlam"),
                "federate",
                "node",
                "--insecure",
                "--workspace",
                str(ws),
                "--port",
                str(_free_port()),
            )
        app = tmp_path / "app"
        shutil.copytree(Path(federated.__file__).parent / "app", app)
        result = subprocess.run(
            [str(bin_dir / "flwr"), "run", str(app), "test", "--stream"],
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert "aggregate_train: Received 2 results and 0 failures" in result.stdout, (
            result.stdout[-3000:] + result.stderr[-2000:]
        )
    finally:
        for p in procs:
            with __import__("contextlib").suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    for ws in wss:
        [shared] = membership.rounds(ws)
        assert shared["server"] == f"127.0.0.1:{port}" and shared["epsilon"] == 2.0
        got = membership.community(ws)
        assert got is not None and got["members"] == 2
        assert abs(got["actions"]["email.send"]["rate"] - 0.929) < 0.05  # (380+270)/700
