# ruff: noqa: RUF003 (σ: the mathematics is written as it is printed)
# pyright: reportMissingImports=false
# (Flower is an optional extra, absent from the main venv; scripts/test-federated.sh
# type-checks this module against the real Flower in .venv-federated.)
"""The Flower apps of federated sharing, and an in-process round driver.

* :data:`client_app` — runs in each member's workspace (the workspace is the node's
  ``workspace`` setting). Its ``train`` handler lays the workspace's counts out over the
  round's vocabulary; two mods wrap it: Flower's own :class:`LocalDpMod` clips and adds
  Gaussian noise before anything leaves (client-side DP: the server never sees a raw
  count), and an outer one writes the exact vector that leaves to the workspace's
  ``shared.jsonl``. Its ``evaluate`` handler receives the aggregate and stores it as
  community priors.
* :data:`server_app` — sends the vocabulary, averages the members' vectors with
  Flower's :class:`FedAvg` (each member weighs 1: a member's real number of records is
  a raw count and is never sent), and sends the aggregate back.
* :func:`simulate` — runs both in one process over several local workspaces through
  :class:`LocalGrid`, a Flower ``Grid`` that hands each message to the ``ClientApp``
  after a round trip through Flower's wire format (protobuf), as a SuperLink would.
  Flower's own simulation engine needs Ray (``flwr[simulation]``, ~200 MB); this needs
  nothing more than ``flwr``.

Deployed, the same apps run under Flower's SuperLink / SuperNode: see docs/federated.md.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import LocalDpMod
from flwr.common.serde import message_from_proto, message_to_proto
from flwr.proto.message_pb2 import Message as ProtoMessage  # pylint: disable=E0611
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from openlam.learning.federated import membership
from openlam.learning.federated.privacy import noise_sigma
from openlam.learning.federated.vectors import (
    Vocabulary,
    community_priors,
    default_vocabulary,
    local_vector,
)

ARRAYS = "arrays"
CONFIG = "config"
STATS = "stats"
NOT_A_MEMBER = 4001
BUDGET_SPENT = 4002
BAD_ROUND = 4003
log = logging.getLogger(__name__)


# -- the member's side --------------------------------------------------------------


def _workspace(context: Context) -> Path:
    ws = context.node_config.get("workspace")
    if not ws:
        raise ValueError("this Flower node has no `workspace` setting (--node-config)")
    return Path(str(ws))


def _number(record: Any, key: str) -> float:
    """A number from a ConfigRecord or MetricRecord (0 when absent)."""
    value = record.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} is not a number: {value!r}")
    return float(value)


def _vector(msg: Message) -> list[float]:
    """The one vector a message carries."""
    return [float(x) for x in msg.content.array_records[ARRAYS][STATS].numpy().tolist()]


def _finite(values: Iterable[float]) -> bool:
    return all(math.isfinite(v) for v in values)


def _refuse(msg: Message, code: int, reason: str) -> Message:
    return Message(Error(code=code, reason=reason), reply_to=msg)


def _private(msg: Message, context: Context, call_next: Any) -> Message:
    """Clip and noise the reply with Flower's LocalDpMod at the member's (ε, δ), or
    refuse the round: not a member, or the ε budget would be exceeded."""
    ws = _workspace(context)
    m = membership.load(ws)
    if m is None:
        return _refuse(msg, NOT_A_MEMBER, "this workspace is not a member of a federation")
    spent, _ = membership.spent(ws)
    if spent + m.epsilon > m.budget + 1e-9:
        return _refuse(
            msg,
            BUDGET_SPENT,
            f"privacy budget spent (ε {spent:g} of {m.budget:g}; a round costs {m.epsilon:g})",
        )
    sigma = noise_sigma(m.epsilon, m.delta)
    # LocalDpMod's noise is sensitivity·√(2 ln(1.25/δ))/ε, the textbook calibration that
    # holds for ε < 1 only. Handing it the sensitivity that makes that expression equal
    # the analytic Gaussian σ gives noise that is exact for any ε (see privacy.py).
    dp = LocalDpMod(
        clipping_norm=m.clip,
        sensitivity=sigma * m.epsilon / math.sqrt(2.0 * math.log(1.25 / m.delta)),
        epsilon=m.epsilon,
        delta=m.delta,
    )
    return dp(msg, context, call_next)


def _ledger(msg: Message, context: Context, call_next: Any) -> Message:
    """Record, in the workspace, the exact vector that leaves it (after _private)."""
    reply = call_next(msg, context)
    if reply.has_error():
        return reply
    ws = _workspace(context)
    m = membership.load(ws)
    assert m is not None  # _private refused otherwise
    config = msg.content.config_records[CONFIG]
    membership.record_round(
        ws,
        {
            "server": m.server,
            "round": int(_number(config, "server-round")),
            "epsilon": m.epsilon,
            "delta": m.delta,
            "sigma": noise_sigma(m.epsilon, m.delta),
            "clip": m.clip,
            "vocabulary": Vocabulary.from_config(config).to_config(),
            "sent": _vector(reply),
        },
    )
    return reply


client_app = ClientApp()


@client_app.train(mods=[_ledger, _private])
def share(msg: Message, context: Context) -> Message:
    """The workspace's counts over the round's vocabulary (raw: the mods clip and noise
    them before the reply leaves)."""
    from openlam.config import load_settings
    from openlam.learning.store import LearningStore
    from openlam.memory.store import Store

    ws = _workspace(context)
    vocab = Vocabulary.from_config(msg.content.config_records[CONFIG])
    if len(_vector(msg)) != vocab.size:
        return _refuse(msg, BAD_ROUND, "the vector sent does not match the vocabulary")
    url = load_settings(ws, must_exist=True).app_database_url
    Store(url)  # creates or upgrades the tables
    stats = local_vector(LearningStore(url), vocab)
    m = membership.load(ws)
    assert m is not None
    content = RecordDict(
        {
            ARRAYS: ArrayRecord({STATS: Array(np.asarray(stats.vector, dtype=np.float64))}),
            "metrics": MetricRecord(
                {"num-examples": 1, "noise-var": noise_sigma(m.epsilon, m.delta) ** 2}
            ),
        }
    )
    return Message(content, reply_to=msg)


@client_app.evaluate()
def receive(msg: Message, context: Context) -> Message:
    """Store the aggregate the server sends back as this workspace's community priors."""
    ws = _workspace(context)
    m = membership.load(ws)
    if m is None:
        return _refuse(msg, NOT_A_MEMBER, "this workspace is not a member of a federation")
    config = msg.content.config_records[CONFIG]
    vocab = Vocabulary.from_config(config)
    aggregate = _vector(msg)
    if len(aggregate) != vocab.size:
        return _refuse(msg, BAD_ROUND, "aggregate does not match the vocabulary")
    members, noise_var = _number(config, "members"), _number(config, "noise-var")
    if not (_finite([*aggregate, members, noise_var]) and members >= 1 and noise_var >= 0):
        return _refuse(msg, BAD_ROUND, "the aggregate holds values that are not finite numbers")
    priors = community_priors(aggregate, vocab, int(members), noise_var)
    membership.save_community(
        ws,
        {
            "server": m.server,
            "round": int(_number(config, "server-round")),
            "vocabulary": vocab.to_config(),
            **priors,
        },
    )
    return Message(RecordDict({"metrics": MetricRecord({"num-examples": 1})}), reply_to=msg)


# -- the server's side --------------------------------------------------------------


def _well_formed(reply: Message) -> bool:
    try:
        noise_var = _number(reply.content.metric_records["metrics"], "noise-var")
        ok = _finite([*_vector(reply), noise_var]) and noise_var >= 0
    except (KeyError, ValueError, TypeError):
        ok = False
    if not ok:
        log.warning("left out a member's reply that does not hold finite numbers")
    return ok


class CommunityFedAvg(FedAvg):
    """FedAvg that also tells the members, with the aggregate, how many vectors it
    averaged and their mean noise variance (so they can say how sure a rate is)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.members = 0
        self.noise_var = 0.0

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        # A member's reply that is not finite numbers (NaN, inf: a broken or hostile
        # client that skipped the clipping) would make every member's aggregate NaN.
        replies = [r for r in replies if r.has_error() or _well_formed(r)]
        valid = [r for r in replies if not r.has_error()]
        self.members = len(valid)
        variances = [_number(r.content.metric_records["metrics"], "noise-var") for r in valid]
        self.noise_var = sum(variances) / len(variances) if variances else 0.0
        return super().aggregate_train(server_round, replies)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        if self.members < self.min_train_nodes:
            return []  # too few took part: nothing worth sending back
        config["members"] = self.members
        config["noise-var"] = self.noise_var
        config["server-round"] = server_round
        return super().configure_evaluate(server_round, arrays, config, grid)


server_app = ServerApp()


def _csv(value: Any) -> list[str]:
    return [v.strip() for v in str(value or "").split(",") if v.strip()]


@server_app.main()
def serve(grid: Grid, context: Context) -> None:
    """Run the configured rounds. Run config (Flower's ``--run-config``): ``rounds``,
    ``min-members``, ``actions`` (comma-separated, added to those OpenLAM ships),
    ``shape-buckets``, ``salt``, ``output`` (a JSON file for the final aggregate)."""
    cfg = context.run_config
    vocab = default_vocabulary(_csv(cfg.get("actions")), int(str(cfg.get("shape-buckets", 64))))
    vocab = Vocabulary(
        vocab.actions, vocab.sources, vocab.shape_buckets, str(cfg.get("salt", "openlam"))
    )
    least = int(str(cfg.get("min-members", 2)))
    strategy = CommunityFedAvg(
        min_train_nodes=least, min_evaluate_nodes=least, min_available_nodes=least
    )
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord({STATS: Array(np.zeros(vocab.size, dtype=np.float64))}),
        num_rounds=int(str(cfg.get("rounds", 1))),
        timeout=float(str(cfg.get("timeout", 600))),
        train_config=ConfigRecord(vocab.to_config()),
        evaluate_config=ConfigRecord(vocab.to_config()),
    )
    out = cfg.get("output")
    if out and result.arrays is not None and strategy.members:
        import json

        aggregate = result.arrays[STATS].numpy().tolist()
        priors = community_priors(aggregate, vocab, strategy.members, strategy.noise_var)
        Path(str(out)).write_text(json.dumps(priors, indent=2) + "\n", encoding="utf-8")


# -- one process: several workspaces, one round driver --------------------------------


@dataclass
class Wire:
    """One message as it crossed the (in-process) wire: Flower's protobuf bytes."""

    direction: str  # "to member" | "to server"
    node_id: int
    message_type: str
    data: bytes

    def message(self) -> Message:
        return message_from_proto(ProtoMessage.FromString(self.data))


@dataclass
class LocalGrid(Grid):
    """A Flower ``Grid`` whose nodes are ClientApps in this process, one per workspace.
    Every message goes through Flower's serialisation both ways; :attr:`wire` keeps the
    bytes, so a test (or a person) can check what a server would have received."""

    workspaces: list[Path]
    app: ClientApp = field(default_factory=lambda: client_app)
    wire: list[Wire] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._run = Run.create_empty(1)
        self._replies: dict[str, Message] = {}
        self._contexts = {
            i: Context(
                run_id=1,
                node_id=i,
                node_config={"workspace": str(ws)},
                state=RecordDict(),
                run_config={},
            )
            for i, ws in enumerate(self.workspaces, start=1)
        }

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self._contexts)

    def _cross(self, msg: Message, direction: str, node: int) -> Message:
        data = message_to_proto(msg).SerializeToString()
        self.wire.append(Wire(direction, node, msg.metadata.message_type, data))
        return message_from_proto(ProtoMessage.FromString(data))

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            ident = uuid.uuid4().hex
            msg.metadata.__dict__["_message_id"] = ident  # as Flower's InMemoryGrid does
            node = msg.metadata.dst_node_id
            received = self._cross(msg, "to member", node)
            try:
                reply = self.app(received, self._contexts[node])
            except Exception as exc:  # a SuperNode answers a crashed ClientApp with an error
                reply = Message(
                    Error(code=500, reason=f"{type(exc).__name__}: {exc}"), reply_to=received
                )
            self._replies[ident] = self._cross(reply, "to server", node)
            ids.append(ident)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return [self._replies.pop(i) for i in message_ids if i in self._replies]

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        return list(self.pull_messages(self.push_messages(messages)))

    def received(self, message_type: str = MessageType.TRAIN) -> dict[int, Message]:
        """The last reply of each member of this type, as the server received it."""
        out = {}
        for w in self.wire:
            if w.direction == "to server" and w.message_type == message_type:
                out[w.node_id] = w.message()
        return out


def simulate(
    workspaces: list[Path], run_config: dict[str, Any] | None = None, *, quiet: bool = True
) -> LocalGrid:
    """Run the server app over ``workspaces`` in this process (each must have joined)."""
    grid = LocalGrid([Path(w) for w in workspaces])
    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 0
    flwr_log = logging.getLogger("flwr")
    level = flwr_log.level
    if quiet:
        flwr_log.setLevel(logging.WARNING)
    try:
        context = Context(
            run_id=1,
            node_id=0,
            node_config={},
            state=RecordDict(),
            run_config={"min-members": min(2, len(workspaces)), **(run_config or {})},
        )
        server_app(grid, context)
    finally:
        flwr_log.setLevel(level)
    return grid
