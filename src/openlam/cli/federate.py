"""``openlam federate``: share what was learned with other organisations — tool
reliability and playbook success counts, clipped and noised here (differential
privacy) — and get the community's back. Needs ``openlam[federated]`` (Flower)."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path
from typing import Annotated, Any

import typer

federate_app = typer.Typer(
    help="Federated, privacy-first sharing of what was learned (openlam[federated]).",
    no_args_is_help=True,
)
Workspace = Annotated[Path | None, typer.Option(help="Workspace directory (default: cwd).")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def install(app: typer.Typer) -> None:
    app.add_typer(federate_app, name="federate")


def _ws(workspace: Path | None) -> Path:
    from openlam.config import load_settings

    return load_settings(workspace).workspace


def _out():
    from openlam.cli.console import console

    return console()


def _node_command(ws: Path, server: str, insecure: bool, port: int | None) -> list[str]:
    return [
        "flower-supernode",
        "--superlink",
        server,
        *(["--insecure"] if insecure else []),
        *(["--port", str(port)] if port else []),
        "--node-config",
        f"workspace={json.dumps(str(ws))}",
    ]


@federate_app.command("join")
def join(
    server: Annotated[
        str, typer.Argument(help="The federation's Flower SuperLink (its Fleet API), as host:port.")
    ],
    epsilon: Annotated[
        float, typer.Option(help="Privacy loss ε per round (smaller: more private).")
    ] = 1.0,
    delta: Annotated[float, typer.Option(help="δ per round: the chance ε fails.")] = 1e-6,
    clip: Annotated[
        float, typer.Option(help="Clipping norm: the most this workspace weighs (L2).")
    ] = 5000.0,
    budget: Annotated[
        float, typer.Option(help="Total ε this workspace will ever spend; then it stops.")
    ] = 10.0,
    workspace: Workspace = None,
) -> None:
    """Join a federation: from the next round on, this workspace shares its tool and
    playbook success counts (clipped and noised here) and receives the community's."""
    from openlam.cli.console import esc
    from openlam.errors import UserError
    from openlam.learning.federated import membership, require_flower
    from openlam.learning.federated.privacy import noise_sigma

    ws = _ws(workspace)
    require_flower()  # a clear error without the extra
    if not server.strip() or any(c.isspace() for c in server):
        raise UserError(f"not a server address: {server!r}", "give it as host:port")
    m = membership.Membership(server=server, epsilon=epsilon, delta=delta, clip=clip, budget=budget)
    m.joined_at = time.time()
    membership.save(ws, m)
    spent, _ = membership.spent(ws)
    c = _out()
    c.print(f"joined {esc(server)}: ε {epsilon:g} and δ {delta:g} per round, clip {clip:g}")
    c.print(
        f"  noise added to every number shared: Gaussian, σ = {noise_sigma(epsilon, delta):.2f}"
        f"; ε budget {budget:g} (spent so far {spent:g}: {int((budget - spent) // epsilon)} "
        "rounds left)"
    )
    c.print(
        "  shared: success/failure counts and latency buckets per action and source, "
        "playbook successes per hashed goal-shape bucket; never goals, arguments, "
        "outputs, errors or ids"
    )
    c.print(
        "rounds are started by the federation's server; take part by keeping this "
        "running:\n  " + esc(shlex.join(["openlam", "federate", "node", "--workspace", str(ws)]))
    )


@federate_app.command("leave")
def leave(workspace: Workspace = None) -> None:
    """Leave the federation: stop sharing and forget the community's aggregate. The
    record of what was shared stays (it is this workspace's audit trail)."""
    from openlam.learning.federated import membership

    ws = _ws(workspace)
    was = membership.load(ws)
    membership.leave(ws)
    spent, _ = membership.spent(ws)
    if was is None:
        typer.echo("not a member of a federation; nothing to leave")
        return
    typer.echo(
        f"left {was.server}: nothing more is shared. The rounds already shared (ε {spent:g} "
        f"spent) stay recorded in {membership.folder(ws) / 'shared.jsonl'}"
    )


@federate_app.command("status")
def status(
    workspace: Workspace = None,
    json_output: Json = False,
    vectors: Annotated[
        bool, typer.Option("--vectors", help="Also print every number of the last vector sent.")
    ] = False,
) -> None:
    """Membership, privacy spent, the last round, what was shared (the exact vector that
    left) and the community's success rates next to this workspace's."""
    from openlam.cli.console import esc
    from openlam.learning.federated import membership
    from openlam.learning.federated.vectors import Vocabulary

    ws = _ws(workspace)
    m = membership.load(ws)
    rounds = membership.rounds(ws)
    eps, dlt = membership.spent(ws)
    community = membership.community(ws)
    local = _local_rates(ws)
    if json_output:
        typer.echo(
            json.dumps(
                {
                    "membership": m.__dict__ if m else None,
                    "spent": {"epsilon": eps, "delta": dlt, "rounds": len(rounds)},
                    "rounds": rounds,
                    "community": community,
                    "local": local,
                },
                indent=2,
            )
        )
        return
    c = _out()
    if m is None:
        c.print("Not a member of a federation (join with `openlam federate join HOST:PORT`).")
    else:
        c.print(
            f"Member of {esc(m.server)} since {_when(m.joined_at)}: ε {m.epsilon:g}, "
            f"δ {m.delta:g} per round; clip {m.clip:g}"
        )
    budget = f" of a budget of {m.budget:g}" if m else ""
    c.print(
        f"Privacy spent: ε {eps:g}, δ {dlt:g}{budget} over {len(rounds)} round(s) "
        "(basic composition)"
    )
    if rounds:
        last = rounds[-1]
        vocab = Vocabulary.from_config(last["vocabulary"])
        c.print(
            f"Last round: {_when(last['at'])}, server {esc(last['server'])} round "
            f"{last['round']}: sent {len(last['sent'])} numbers — counts over "
            f"{len(vocab.actions)} actions, {len(vocab.sources)} sources and "
            f"{vocab.shape_buckets} shape buckets — each with Gaussian noise of σ "
            f"{last['sigma']:.2f} (ε {last['epsilon']:g}, δ {last['delta']:g}, clip "
            f"{last['clip']:g})"
        )
        if vectors:
            for label, value in zip(vocab.labels(), last["sent"], strict=True):
                c.print(f"  {esc(label)}: {value:.3f}")
        else:
            c.print("  every number: openlam federate status --vectors (or --json)")
    if community is None:
        c.print("Community: nothing received yet.")
        return
    c.print(
        f"Community (round {community.get('round')} of {esc(community.get('server'))}, "
        f"{community['members']} members, received {_when(community['at'])}):"
    )
    _rates_table(c, community, local)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def _local_rates(ws: Path) -> dict[str, dict[str, Any]]:
    from openlam.config import load_settings
    from openlam.learning.store import LearningStore

    settings = load_settings(ws)
    url = settings.app_database_url
    if not settings.database_url and not (settings.state_dir / "openlam.db").exists():
        return {}
    from openlam.memory.store import Store

    Store(url)
    return {
        r["action"]: {"rate": r["success_rate"], "calls": r["calls"]}
        for r in LearningStore(url).tool_stats()
    }


def _rates_table(c: Any, community: dict[str, Any], local: dict[str, Any]) -> None:
    from openlam.cli.console import Column, print_table

    actions = community.get("actions", {})
    if not actions:
        c.print("  no action was used often enough across the federation to tell its rate")
        return
    print_table(
        c,
        [
            Column("action", key=True),
            "community",
            "± (noise)",
            "calls (est.)",
            "here",
            "calls here",
        ],
        (
            (
                name,
                "?" if row["rate"] is None else f"{row['rate']:.0%}",
                "" if row["plusminus"] is None else f"{row['plusminus']:.0%}",
                row["calls"],
                f"{mine['rate']:.0%}" if (mine := local.get(name)) else "-",
                mine["calls"] if mine else 0,
            )
            for name, row in sorted(actions.items())
        ),
    )


@federate_app.command("node")
def node(
    workspace: Workspace = None,
    insecure: Annotated[
        bool, typer.Option(help="Connect without TLS (a test federation only).")
    ] = False,
    port: Annotated[
        int | None,
        typer.Option(help="Local port of the SuperNode's own API (default 9094; one per node)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the Flower command; do not run it.")
    ] = False,
) -> None:
    """Take part in the federation's rounds: runs Flower's SuperNode for this
    workspace, connected to the server joined (stop with Ctrl-C)."""
    import os
    import shutil
    import sys

    from openlam.errors import UserError
    from openlam.learning.federated import INSTALL_HINT, membership, require_flower

    ws = _ws(workspace)
    require_flower()
    m = membership.load(ws)
    if m is None:
        raise UserError(
            "this workspace is not a member of a federation",
            "join first: openlam federate join HOST:PORT",
        )
    command = _node_command(ws, m.server, insecure, port)
    if dry_run:
        typer.echo(shlex.join(command))
        return
    exe = shutil.which("flower-supernode") or str(Path(sys.executable).parent / command[0])
    if not Path(exe).exists():
        raise UserError("Flower's flower-supernode command was not found", INSTALL_HINT)
    sys.stdout.flush()
    os.execv(exe, [exe, *command[1:]])  # the SuperNode itself: signals reach it directly


@federate_app.command("simulate")
def simulate(
    workspaces: Annotated[
        list[Path], typer.Argument(help="Member workspaces on this machine (each joined).")
    ],
    rounds: Annotated[int, typer.Option(min=1, max=20, help="Rounds to run.")] = 1,
) -> None:
    """Run the federation's server and these members in this process: a round on one
    machine, with the same Flower apps, DP and records as a deployed federation."""
    from openlam.cli.console import esc
    from openlam.config import load_settings
    from openlam.errors import UserError
    from openlam.learning.federated import membership, require_flower

    apps = require_flower()
    paths = [load_settings(w).workspace for w in workspaces]
    strangers = [str(p) for p in paths if membership.load(p) is None]
    if strangers:
        raise UserError(
            "not a member of a federation: " + ", ".join(strangers),
            "run `openlam federate join local --workspace WS` in each first",
        )
    if len(paths) < 2:
        raise UserError("a federation needs at least two members", "give two workspaces or more")
    before = {p: len(membership.rounds(p)) for p in paths}
    apps.simulate(paths, {"rounds": rounds})
    c = _out()
    for p in paths:
        took = len(membership.rounds(p)) - before[p]
        got = membership.community(p)
        eps, _ = membership.spent(p)
        state = (
            f"shared {took} round(s), ε spent {eps:g}"
            if took
            else "took no part (privacy budget spent?)"
        )
        c.print(
            f"{esc(str(p))}: {state}; community rates of "
            f"{len(got['actions']) if got else 0} actions received"
        )
