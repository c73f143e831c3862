"""The audit log: append-only, hash-chained, in the project database (``gov_audit``).

Every record holds who (``actor``), what (``kind`` and ``body``), when (``ts``), for
which run and step, and why (in the body: the deciding rule, the approver's comment).
Record *n* stores ``prev_hash`` = the hash of record *n-1* and ``hash`` = SHA-256 of the
canonical JSON of its own fields including ``prev_hash``; sequence numbers are
contiguous from 1 and a head row keeps the last (seq, hash). So:

* an edited record no longer matches its hash;
* a deleted record leaves a hole in the sequence (or, at the end, disagrees with the head);
* reordered records break the chain of ``prev_hash``.

``verify`` walks the chain and names the first bad record. Someone who can rewrite the
whole table *and* recompute every hash (or delete the last records and move the head
back) can forge history that verifies on its own; an *anchor* kept outside the database
catches that: ``audit head`` prints ``SEQ:HASH`` to keep elsewhere, ``verify(expect=…)``
fails unless record SEQ still has HASH, and ``[audit] anchor_file`` appends every new
head to a file as it is written.

Appends are safe across processes: a record is inserted only if the head has not
moved since it was read, else the append retries. An optional ``key`` makes an append
idempotent (a durable run replaying its gate writes each record once).

Cost: the head last written by this process is remembered (a stale one fails the
primary key or the head's compare-and-set, and is re-read), and records that decide
nothing — a plan, a step's result, a run's start — may be *deferred*: they are written,
in order, in the same transaction as the next record appended (a policy decision and
its action, before that action runs) or when the run finishes. A process that dies
before the flush loses only records its run re-emits when it is replayed (keyed, so
each is written once).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from openlam.governance.db import audit_head, audit_log, engine_for
from openlam.memory.prepared import Prepared
from openlam.validation import whole_number

GENESIS = "0" * 64


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def record_hash(rec: dict[str, Any]) -> str:
    fields = {
        k: rec[k] for k in ("seq", "ts", "kind", "run_id", "step_id", "actor", "body", "prev_hash")
    }
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


@dataclass
class Verification:
    ok: bool
    count: int
    first_bad: int | None = None
    problem: str = ""
    head: str = GENESIS

    def __str__(self) -> str:
        if self.ok:
            return f"audit log intact: {self.count} records, head {self.head[:16]}"
        return f"audit log TAMPERED at record {self.first_bad}: {self.problem}"


# Built once: constructing a statement costs more than running it on SQLite.
_READ_HEAD = select(audit_head).where(audit_head.c.id == 1)
_INSERT = insert(audit_log)
_NEW_HEAD = insert(audit_head).values(id=1, seq=bindparam("seq"), hash=bindparam("hash"))
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1, audit_head.c.seq == bindparam("old"))
    .values(seq=bindparam("seq"), hash=bindparam("hash"))
)


def entry(
    kind: str,
    *,
    run_id: str = "",
    step_id: str = "",
    actor: str = "",
    key: str | None = None,
    **body: Any,
) -> dict[str, Any]:
    """One record to append (see :meth:`AuditLog.append_many`)."""
    return {
        "kind": kind,
        "run_id": run_id,
        "step_id": step_id,
        "actor": actor,
        "key": key,
        "body": body,
    }


class AuditLog:
    def __init__(
        self,
        url: str,
        redact: Callable[[Any], Any] | None = None,
        anchor: Callable[[int, str], None] | None = None,
    ) -> None:
        self.engine = engine_for(url)
        self.redact = redact
        self.anchor = anchor  # told each new head (seq, hash) once it is committed
        self._head: tuple[int, str] | None = None  # (seq, hash) this process last wrote
        self._deferred: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        # Compiled once: every governed step appends (memory/prepared.py says why).
        self._insert = Prepared(self.engine, _INSERT)
        self._new_head = Prepared(self.engine, _NEW_HEAD)
        self._move_head = Prepared(self.engine, _MOVE_HEAD)

    def defer(
        self,
        kind: str,
        *,
        run_id: str = "",
        step_id: str = "",
        actor: str = "",
        key: str | None = None,
        **body: Any,
    ) -> None:
        """Queue a record that decides nothing; it is written before the next append
        (or :meth:`flush`), in the order it was queued."""
        e = entry(kind, run_id=run_id, step_id=step_id, actor=actor, key=key, **body)
        e["ts"] = round(time.time(), 6)
        with self._lock:
            self._deferred.append(e)

    def flush(self) -> None:
        """Write the deferred records now."""
        self.append_many([])

    def append(
        self,
        kind: str,
        *,
        run_id: str = "",
        step_id: str = "",
        actor: str = "",
        key: str | None = None,
        **body: Any,
    ) -> dict[str, Any]:
        """Add one record; ``body`` is any JSON-able detail (secrets redacted first)."""
        return self.append_many(
            [entry(kind, run_id=run_id, step_id=step_id, actor=actor, key=key, **body)]
        )[0]

    def append_many(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add records (made with :func:`entry`) in order, in one transaction, after the
        deferred ones."""
        with self._lock:
            pending, self._deferred = self._deferred, []
        if not pending and not entries:
            return []
        try:
            written = self._write([*pending, *entries])
        except BaseException:
            with self._lock:  # not written: they go out with the next append
                self._deferred[:0] = pending
            raise
        return written[len(pending) :]

    def _write(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        texts = []
        for e in entries:
            body = dict(e["body"], key=e["key"]) if e["key"] is not None else dict(e["body"])
            texts.append(canonical(self.redact(body) if self.redact is not None else body))
        for _ in range(200):
            cached = self._head
            try:
                with self.engine.begin() as conn:
                    if cached is None:
                        head = conn.execute(_READ_HEAD).first()
                        seq, prev = (head.seq, head.hash) if head else (0, GENESIS)
                    else:
                        seq, prev = cached
                    written = []
                    for e, text in zip(entries, texts, strict=True):
                        rec = {
                            "seq": seq + len(written) + 1,
                            "ts": e.get("ts") or round(time.time(), 6),
                            "kind": e["kind"],
                            "run_id": e["run_id"],
                            "step_id": e["step_id"],
                            "actor": e["actor"],
                            "body": text,
                            "prev_hash": prev,
                        }
                        rec["hash"] = prev = record_hash(rec)
                        written.append(rec)
                    # one statement for the transaction's records (executemany)
                    self._insert.execute_many(
                        conn,
                        [{**rec, "key": e["key"]} for rec, e in zip(written, entries, strict=True)],
                    )
                    new = {"seq": written[-1]["seq"], "hash": written[-1]["hash"]}
                    if seq == 0:
                        self._new_head.execute(conn, new)
                    elif self._move_head.execute(conn, {"old": seq, **new}) != 1:
                        raise _Moved
                if self.anchor is not None:
                    self.anchor(new["seq"], new["hash"])
                self._head = (new["seq"], new["hash"])
                return written
            except (_Moved, IntegrityError, OperationalError):
                self._head = None  # another writer moved the head: read it again
                if cached is not None:
                    continue
                # Either another writer appended first, or (unique run+key) a record was
                # written before — by the same run, replayed after a crash.
                keyed = [e for e in entries if e["key"] is not None]
                if keyed:
                    with self.engine.connect() as conn:
                        found = [self._by_key(conn, e["run_id"], e["key"]) for e in keyed]
                    if all(found) and len(keyed) == len(entries):
                        return [f for f in found if f is not None]
                    if any(found) and len(entries) > 1:  # some were written: one at a time
                        return [self._write([e])[0] for e in entries]
                time.sleep(0.005)
        raise RuntimeError("could not append to the audit log: it is busy")

    @staticmethod
    def _by_key(conn: Any, run_id: str, key: str) -> dict[str, Any] | None:
        # Keys are per run; the indexed column finds the record, the hashed body confirms it.
        needle = f'"key":{json.dumps(key, ensure_ascii=False)}'
        query = select(audit_log).where(audit_log.c.run_id == run_id, audit_log.c.key == key)
        for row in conn.execute(query):
            if needle in row.body:
                return {k: v for k, v in row._mapping.items() if k != "key"}
        return None

    def records(
        self,
        *,
        run_id: str | None = None,
        kind: str | None = None,
        step_id: str | None = None,
        newest: int | None = None,
    ) -> list[dict[str, Any]]:
        """Matching records in order; ``newest``: only the last that many (one indexed
        read, not the whole log)."""
        self.flush()
        query = (
            select(audit_log)
            .order_by(audit_log.c.seq.desc() if newest else audit_log.c.seq)
            .limit(newest)
        )
        if run_id is not None:
            query = query.where(audit_log.c.run_id == run_id)
        if kind is not None:
            query = query.where(audit_log.c.kind == kind)
        if step_id is not None:
            query = query.where(audit_log.c.step_id == step_id)
        with self.engine.connect() as conn:
            found = [_decoded(dict(r._mapping)) for r in conn.execute(query)]
        return found[::-1] if newest else found

    def _raw(self) -> Iterator[dict[str, Any]]:
        self.flush()
        with self.engine.connect() as conn:
            for row in conn.execute(select(audit_log).order_by(audit_log.c.seq)):
                yield dict(row._mapping)

    def head(self) -> tuple[int, str]:
        """The last record's (seq, hash) as the head row holds it."""
        with self.engine.connect() as conn:
            head = conn.execute(_READ_HEAD).first()
        return (head.seq, head.hash) if head else (0, GENESIS)

    def verify(self, expect: str | None = None) -> Verification:
        """Walk the chain; with ``expect`` (an anchor ``SEQ:HASH`` kept from ``head()``,
        or a bare hash) also require that record to be in it, unchanged."""
        anchor = parse_anchor(expect) if expect else None
        prev = GENESIS
        count = 0
        anchored = anchor is None
        for expected, rec in enumerate(self._raw(), start=1):
            count = expected
            if anchor is not None and rec["hash"] == anchor[1] and anchor[0] in (None, expected):
                anchored = True
            if rec["seq"] != expected:
                return Verification(
                    False,
                    count,
                    expected,
                    f"record {expected} is missing (deleted); the next one is {rec['seq']}",
                )
            if rec["prev_hash"] != prev:
                return Verification(
                    False,
                    count,
                    expected,
                    "it does not follow the record before it (records were "
                    "reordered, or one before it was replaced)",
                )
            if record_hash(rec) != rec["hash"]:
                return Verification(
                    False,
                    count,
                    expected,
                    f"its content does not match its hash (edited: "
                    f"{rec['kind']} of run {rec['run_id'] or '-'})",
                )
            prev = rec["hash"]
        head_seq, head_hash = self.head()
        if head_seq != count or head_hash != prev:
            first = min(count, head_seq) + 1 if head_seq > count else count
            return Verification(
                False,
                count,
                first,
                f"the log ends at record {count} but its head says "
                f"{head_seq} (records at the end were deleted or the head "
                "was altered)",
            )
        if not anchored and anchor is not None:
            seq, digest = anchor
            where = f"record {seq}" if seq is not None else "a record"
            return Verification(
                False,
                count,
                seq if seq is not None and seq <= count else None,
                f"the anchor says {where} has hash {digest[:16]}…, which is "
                "not in the log: records were deleted from its end or the "
                "chain was rewritten and rehashed",
                head=prev,
            )
        return Verification(True, count, head=prev)

    def export(self, out: TextIO) -> int:
        """Write every record as one JSON line (body decoded); returns the count."""
        n = 0
        for rec in self._raw():
            out.write(canonical(_decoded(rec)) + "\n")
            n += 1
        return n


def parse_anchor(text: str) -> tuple[int | None, str]:
    """``SEQ:HASH`` (what ``audit head`` prints) or a bare 64-hex ``HASH``."""
    from openlam.errors import UserError

    seq, _, digest = text.strip().rpartition(":")
    digest = digest.lower()
    if (
        len(digest) != 64
        or any(c not in "0123456789abcdef" for c in digest)
        or (seq and whole_number(seq) is None)
    ):
        raise UserError(
            f"not an audit anchor: {text!r}",
            "pass what `openlam audit head` printed: SEQ:HASH (64 hex digits)",
        )
    return (int(seq) if seq else None), digest


def file_anchor(path: str | Path) -> Callable[[int, str], None]:
    """Append each head to ``path`` as ``SEQ:HASH`` lines (one write per line, so
    processes appending together do not interleave within a line)."""
    target = Path(path)

    def anchor(seq: int, digest: str) -> None:
        with target.open("a", encoding="utf-8") as fh:
            fh.write(f"{seq}:{digest}\n")

    return anchor


def last_anchor(path: str | Path) -> str | None:
    """The highest ``SEQ:HASH`` in an anchor file, or None when it has none."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split()
    except FileNotFoundError:
        return None
    found = [
        (seq, line) for line in lines if (seq := whole_number(line.partition(":")[0])) is not None
    ]
    return max(found)[1] if found else None


class _Moved(Exception):
    """Another writer appended first."""


def _decoded(rec: dict[str, Any]) -> dict[str, Any]:
    out = dict(rec)
    with contextlib.suppress(TypeError, ValueError):
        out["body"] = json.loads(rec["body"])
    return out
