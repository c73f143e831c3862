"""The hash-chained audit log: every edit, deletion and reordering is detected."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from openlam.config import Settings
from openlam.governance.audit import AuditLog, record_hash


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(Settings(workspace=tmp_path).app_database_url)
    for i in range(1, 6):
        audit.append(
            "action",
            run_id="r1",
            step_id=f"s{i}",
            actor="agent-7",
            action="mail.send",
            args={"to": f"user{i}@acme.example"},
        )
    return audit


def sql(audit: AuditLog, statement: str, **params: object) -> None:
    with audit.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_intact_log_verifies(log: AuditLog) -> None:
    result = log.verify()
    assert (result.ok, result.count) == (True, 5)
    assert [r["seq"] for r in log.records()] == [1, 2, 3, 4, 5]


def test_edit_is_detected(log: AuditLog) -> None:
    sql(log, "UPDATE gov_audit SET body = replace(body, 'user3', 'mallory') WHERE seq = 3")
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 3)
    assert "edited" in result.problem


def test_edit_with_a_recomputed_hash_breaks_the_next_link(log: AuditLog) -> None:
    rec = next(r for r in log._raw() if r["seq"] == 2)
    rec["actor"] = "someone-else"
    sql(
        log,
        "UPDATE gov_audit SET actor = :a, hash = :h WHERE seq = 2",
        a=rec["actor"],
        h=record_hash(rec),
    )
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 3)


def test_deletion_in_the_middle_is_detected(log: AuditLog) -> None:
    sql(log, "DELETE FROM gov_audit WHERE seq = 3")
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 3)
    assert "missing" in result.problem


def test_deletion_at_the_end_is_detected(log: AuditLog) -> None:
    sql(log, "DELETE FROM gov_audit WHERE seq = 5")
    result = log.verify()
    assert not result.ok
    assert "head" in result.problem


def test_reordering_is_detected(log: AuditLog) -> None:
    rows = {r["seq"]: r for r in log._raw()}
    for seq, other in ((2, 4), (4, 2)):  # swap the contents of records 2 and 4
        src = rows[other]
        sql(
            log,
            "UPDATE gov_audit SET ts=:ts, kind=:kind, run_id=:run_id, step_id=:step_id, "
            "actor=:actor, body=:body, prev_hash=:prev_hash, hash=:hash WHERE seq=:seq",
            seq=seq,
            **{
                k: src[k]
                for k in ("ts", "kind", "run_id", "step_id", "actor", "body", "prev_hash", "hash")
            },
        )
    result = log.verify()
    assert (result.ok, result.first_bad) == (False, 2)


def test_concurrent_appends_keep_one_chain(tmp_path: Path) -> None:
    url = Settings(workspace=tmp_path).app_database_url
    logs = [AuditLog(url) for _ in range(4)]

    def write(i: int) -> None:
        for n in range(15):
            logs[i].append("note", run_id=f"r{i}", n=n)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = logs[0].verify()
    assert (result.ok, result.count) == (True, 60)


def test_keyed_appends_are_idempotent(tmp_path: Path) -> None:
    audit = AuditLog(Settings(workspace=tmp_path).app_database_url)
    first = audit.append("policy", run_id="r1", step_id="s1", key="policy:s1", effect="allow")
    again = audit.append("policy", run_id="r1", step_id="s1", key="policy:s1", effect="allow")
    audit.append("policy", run_id="r2", step_id="s1", key="policy:s1", effect="allow")
    assert first["seq"] == again["seq"] == 1
    assert audit.verify().count == 2


def test_secrets_are_redacted_before_writing(tmp_path: Path) -> None:
    from openlam.actions.secrets import Redactor

    audit = AuditLog(
        Settings(workspace=tmp_path).app_database_url,
        redact=Redactor(["hunter2-very-secret"]).value,
    )
    audit.append("action", run_id="r", args={"password": "hunter2-very-secret"})
    assert "hunter2" not in json.dumps(audit.records())


def test_cli_verify_and_export(log: AuditLog, tmp_path: Path) -> None:
    from openlam.cli.main import _install, app

    _install()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--workspace", str(tmp_path)])
    assert ok.exit_code == 0 and "intact: 5 records" in ok.output
    out = tmp_path / "audit.jsonl"
    exported = runner.invoke(
        app, ["audit", "export", "--workspace", str(tmp_path), "--out", str(out)]
    )
    assert exported.exit_code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3, 4, 5]
    assert lines[2]["body"]["args"] == {"to": "user3@acme.example"}
    sql(log, "DELETE FROM gov_audit WHERE seq = 2")
    bad = runner.invoke(app, ["audit", "verify", "--workspace", str(tmp_path)])
    assert bad.exit_code == 1 and "TAMPERED at record 2" in bad.output


def _rehash_everything(log: AuditLog) -> None:
    """What an attacker with write access does: change a record, recompute every hash
    from there on, move the head — a chain that verifies on its own."""
    rows = log.records()
    prev = "0" * 64
    with log.engine.begin() as conn:
        for rec in rows:
            body = rec["body"]
            if rec["seq"] == 2:
                body = dict(body, args={"to": "innocent@acme.example"})
            raw = {
                **rec,
                "body": json.dumps(body, sort_keys=True, separators=(",", ":")),
                "prev_hash": prev,
            }
            raw["hash"] = prev = record_hash(raw)
            conn.execute(
                text("UPDATE gov_audit SET body = :b, prev_hash = :p, hash = :h WHERE seq = :s"),
                {"b": raw["body"], "p": raw["prev_hash"], "h": raw["hash"], "s": rec["seq"]},
            )
        conn.execute(text("UPDATE gov_audit_head SET hash = :h WHERE id = 1"), {"h": prev})


def _cli(tmp_path: Path, *args: str):
    from openlam.cli.main import _install, app

    _install()
    return CliRunner().invoke(app, [*args, "--workspace", str(tmp_path)])


def test_anchor_catches_truncation_that_moves_the_head(tmp_path: Path) -> None:
    audit = AuditLog(Settings(workspace=tmp_path).app_database_url)
    for i in range(30):
        audit.append("action", run_id="r1", step_id=f"s{i}", args={"n": i})
    anchor = _cli(tmp_path, "audit", "head").output.strip()
    assert anchor.startswith("30:") and len(anchor) == 3 + 64
    assert _cli(tmp_path, "audit", "verify", "--expect", anchor).exit_code == 0
    audit.append("action", run_id="r1", step_id="later", args={})  # the log grows: still fine
    assert _cli(tmp_path, "audit", "verify", "--expect", anchor).exit_code == 0

    sql(audit, "DELETE FROM gov_audit WHERE seq > 11")
    kept = audit.records()[-1]
    sql(audit, "UPDATE gov_audit_head SET seq = 11, hash = :h WHERE id = 1", h=kept["hash"])
    assert audit.verify().ok  # undetectable from inside the database alone
    bad = _cli(tmp_path, "audit", "verify", "--expect", anchor)
    assert bad.exit_code == 1
    assert "TAMPERED" in bad.output and "not in the log" in bad.output


def test_anchor_catches_a_consistently_rehashed_chain(log: AuditLog, tmp_path: Path) -> None:
    anchor = _cli(tmp_path, "audit", "head").output.strip()
    _rehash_everything(log)
    assert log.verify().ok
    assert not log.verify(anchor).ok
    bad = _cli(tmp_path, "audit", "verify", "--expect", anchor)
    assert bad.exit_code == 1 and "rehashed" in bad.output


def test_anchor_file_receives_every_head_and_verify_uses_it(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "heads.txt"
    outside.parent.mkdir()
    (tmp_path / "openlam.toml").write_text(f'[audit]\nanchor_file = "{outside}"\n')
    from openlam.config import load_settings
    from openlam.governance.api import audit_log

    audit = audit_log(load_settings(tmp_path))
    for i in range(5):
        audit.append("action", run_id="r1", step_id=f"s{i}", args={"n": i})
    lines = outside.read_text().split()
    assert [int(line.split(":")[0]) for line in lines] == [1, 2, 3, 4, 5]
    assert lines[-1] == _cli(tmp_path, "audit", "head").output.strip()
    assert _cli(tmp_path, "audit", "verify").exit_code == 0
    _rehash_everything(audit)
    bad = _cli(tmp_path, "audit", "verify")  # no --expect: the anchor file's last head
    assert bad.exit_code == 1 and "not in the log" in bad.output


def test_a_malformed_anchor_is_refused_clearly(log: AuditLog, tmp_path: Path) -> None:
    bad = _cli(tmp_path, "audit", "verify", "--expect", "abc")
    assert "not an audit anchor" in str(bad.exception or bad.output)
