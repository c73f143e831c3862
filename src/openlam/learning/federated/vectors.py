"""What a member shares, as numbers: one fixed-length vector over a vocabulary that the
federation's server sends with each round.

Layout (every number a count, before noise)::

    [member]                                  always 1: the vector is never empty
    per action in the vocabulary:  successes, failures, latencies in 6 buckets
    per source in the vocabulary:  successes, failures
    per shape bucket (0..K-1):     playbook successes, playbook failures

Action and source names are public identifiers (``email.send``, ``crm``); an action or
source that is not in the round's vocabulary is not shared at all. A playbook is
counted in the bucket ``HMAC-SHA256(salt, gist key) mod K`` — the gist key is a hash of
the goal's gist, and the bucket is a number below K; no text of a goal reaches the
vector. Latencies are those of the action's recent-call window (the last 100).

Nothing else is read: not goals, arguments, outputs, error texts, run ids, agents'
names or models.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Any

LATENCY_EDGES_MS = (100.0, 300.0, 1000.0, 3000.0, 10000.0)
LATENCY_LABELS = ("≤100ms", "≤300ms", "≤1s", "≤3s", "≤10s", ">10s")
PER_ACTION = 2 + len(LATENCY_LABELS)
DEFAULT_SHAPE_BUCKETS = 64
MAX_NAMES = 10_000
MAX_SHAPE_BUCKETS = 65_536


@dataclass(frozen=True)
class Vocabulary:
    """What one round counts, agreed by sending it from the server."""

    actions: tuple[str, ...]
    sources: tuple[str, ...]
    shape_buckets: int = DEFAULT_SHAPE_BUCKETS
    salt: str = "openlam"

    @property
    def size(self) -> int:
        return 1 + PER_ACTION * len(self.actions) + 2 * len(self.sources) + 2 * self.shape_buckets

    def to_config(self) -> dict[str, Any]:
        """As a Flower ConfigRecord's values."""
        return {
            "actions": list(self.actions),
            "sources": list(self.sources),
            "shape-buckets": self.shape_buckets,
            "salt": self.salt,
        }

    @classmethod
    def from_config(cls, config: Any) -> Vocabulary:
        """The vocabulary a server sent; refused (ValueError) when it is not one, or so
        large that it could only be a mistake or an attempt to exhaust the member."""
        vocab = cls(
            actions=tuple(str(a) for a in config["actions"]),
            sources=tuple(str(s) for s in config["sources"]),
            shape_buckets=int(config["shape-buckets"]),
            salt=str(config["salt"]),
        )
        if not (
            len(vocab.actions) <= MAX_NAMES
            and len(vocab.sources) <= MAX_NAMES
            and 1 <= vocab.shape_buckets <= MAX_SHAPE_BUCKETS
        ):
            raise ValueError(
                f"vocabulary too large or empty: {len(vocab.actions)} actions, "
                f"{len(vocab.sources)} sources, {vocab.shape_buckets} shape buckets"
            )
        return vocab

    def bucket(self, gist_key: str) -> int:
        digest = hmac.new(self.salt.encode(), gist_key.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") % self.shape_buckets

    def labels(self) -> list[str]:
        """What each number of the vector counts, in order (for a person to audit)."""
        out = ["member"]
        for a in self.actions:
            out += [f"action {a} successes", f"action {a} failures"]
            out += [f"action {a} latency {label}" for label in LATENCY_LABELS]
        for s in self.sources:
            out += [f"source {s} successes", f"source {s} failures"]
        for b in range(self.shape_buckets):
            out += [f"shape bucket {b} successes", f"shape bucket {b} failures"]
        return out


def default_vocabulary(
    extra_actions: list[str] | None = None, shape_buckets: int = DEFAULT_SHAPE_BUCKETS
) -> Vocabulary:
    """Every action OpenLAM ships (and their sources), plus ``extra_actions``."""
    from openlam.actions.registry import load_plugins

    pairs = {(spec.name, spec.source) for spec in load_plugins()}
    actions = sorted({a for a, _ in pairs} | set(extra_actions or []))
    sources = sorted({s for _, s in pairs if s})
    return Vocabulary(tuple(actions), tuple(sources), shape_buckets)


def _latency_bucket(ms: float) -> int:
    for i, edge in enumerate(LATENCY_EDGES_MS):
        if ms <= edge:
            return i
    return len(LATENCY_EDGES_MS)


@dataclass
class LocalStats:
    """A member's raw vector (never sent as it is) and what was left out of it."""

    vector: list[float]
    left_out_actions: list[str]
    playbooks: int


def local_vector(store: Any, vocab: Vocabulary) -> LocalStats:
    """The counts of ``store`` (a :class:`openlam.learning.store.LearningStore`) laid out
    over ``vocab``."""
    from openlam.learning.gist import gist_key

    vec = [0.0] * vocab.size
    vec[0] = 1.0
    action_at = {a: 1 + PER_ACTION * i for i, a in enumerate(vocab.actions)}
    source_base = 1 + PER_ACTION * len(vocab.actions)
    source_at = {s: source_base + 2 * i for i, s in enumerate(vocab.sources)}
    shape_base = source_base + 2 * len(vocab.sources)
    left_out: list[str] = []
    for row in store.tool_stats():
        calls, failures = int(row["calls"]), int(row["failures"])
        at = action_at.get(row["action"])
        if at is None:
            left_out.append(row["action"])
        else:
            vec[at] += calls - failures
            vec[at + 1] += failures
            for ms in row["latencies"]:
                vec[at + 2 + _latency_bucket(float(ms))] += 1
        src = source_at.get(row["source"])
        if src is not None:
            vec[src] += calls - failures
            vec[src + 1] += failures
    playbooks = store.playbooks()
    for pb in playbooks:
        at = shape_base + 2 * vocab.bucket(gist_key(pb.shape))
        vec[at] += pb.successes
        vec[at + 1] += pb.failures
    return LocalStats(vec, sorted(left_out), len(playbooks))


# -- what comes back -------------------------------------------------------------------


def _rate(s: float, f: float, spread: float) -> dict[str, Any]:
    """A success rate from noisy mean counts, with ± one standard error of the noise."""
    s, f = max(s, 0.0), max(f, 0.0)
    n = s + f
    if n <= 0:
        return {"rate": None, "plusminus": None}
    rate = s / n
    err = spread * (s * s + f * f) ** 0.5 / (n * n)
    return {"rate": round(rate, 4), "plusminus": round(min(err, 1.0), 4)}


def community_priors(
    aggregate: list[float], vocab: Vocabulary, members: int, noise_var: float
) -> dict[str, Any]:
    """The aggregate (the mean of the members' noisy vectors) read back as success rates
    per action, per source and per shape bucket.

    ``members`` is how many vectors were averaged, ``noise_var`` the mean of their noise
    variances: the noise left on each mean count has standard deviation
    √(noise_var / members). A rate is given only when its successes and failures together
    are more than four standard deviations of their noise (so an action nobody used is
    very seldom shown); below that the noise is as large as what it measures."""
    spread = (noise_var / max(members, 1)) ** 0.5
    floor = 4.0 * math.sqrt(2.0) * spread
    latency_floor = 4.0 * math.sqrt(len(LATENCY_LABELS)) * spread
    out: dict[str, Any] = {"members": members, "noise_sd": round(spread, 4), "actions": {}}
    for i, a in enumerate(vocab.actions):
        at = 1 + PER_ACTION * i
        s, f = aggregate[at], aggregate[at + 1]
        if s + f < floor:
            continue
        lat = [max(v, 0.0) for v in aggregate[at + 2 : at + PER_ACTION]]
        total = sum(lat)
        entry = {**_rate(s, f, spread), "calls": round((s + f) * members)}
        if total >= latency_floor:
            entry["latency"] = {
                k: round(v / total, 3) for k, v in zip(LATENCY_LABELS, lat, strict=True)
            }
        out["actions"][a] = entry
    base = 1 + PER_ACTION * len(vocab.actions)
    out["sources"] = {}
    for i, src in enumerate(vocab.sources):
        s, f = aggregate[base + 2 * i], aggregate[base + 2 * i + 1]
        if s + f >= floor:
            out["sources"][src] = {**_rate(s, f, spread), "calls": round((s + f) * members)}
    base += 2 * len(vocab.sources)
    out["shape_buckets"] = {}
    for b in range(vocab.shape_buckets):
        s, f = aggregate[base + 2 * b], aggregate[base + 2 * b + 1]
        if s + f >= floor:
            out["shape_buckets"][str(b)] = {
                **_rate(s, f, spread),
                "runs": round((s + f) * members),
            }
    return out
