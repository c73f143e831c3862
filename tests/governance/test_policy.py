"""Policies: precedence, conditions, defaults, and errors with file and line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openlam.actions.spec import Risk
from openlam.governance.policy import Effect, PolicyError, Query, load_policies

ORG = """
scope: org
allow_external: ["search.*"]
rules:
  - id: org-payments
    action: "pay.*"
    decision: require_approval
  - id: org-no-erase
    risk: destructive
    decision: deny
"""
FINANCE = """
scope: {department: finance}
rules:
  - id: finance-payments
    action: "pay.*"
    decision: allow
  - id: finance-big
    action: "pay.*"
    when: {args: {amount: {above: 1000}}}
    decision: require_approval
"""
CFO = """
scope: {agent: cfo}
rules:
  - id: cfo-transfer
    action: pay.transfer
    decision: allow
    trust_tool_output: true
"""


def policies(tmp_path: Path, *texts: str):
    paths = []
    for i, text in enumerate(texts):
        p = tmp_path / f"p{i}.yaml"
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    return load_policies(paths)


def q(action: str, risk: Risk, **kw) -> Query:
    return Query(action=action, risk=risk, args=kw.pop("args", {}), **kw)


def test_defaults_by_risk_tier(tmp_path: Path) -> None:
    p = policies(tmp_path)
    assert p.decide(q("x.get", Risk.read)).effect is Effect.allow
    assert p.decide(q("x.put", Risk.write)).effect is Effect.allow
    for risk in (Risk.external, Risk.financial, Risk.destructive):
        d = p.decide(q("x.do", risk))
        assert d.effect is Effect.require_approval
        assert d.rule_id == f"default:{risk.value}"


def test_most_specific_scope_wins(tmp_path: Path) -> None:
    p = policies(tmp_path, ORG, FINANCE, CFO)
    pay = {"args": {"to": "a@b.example", "amount": 50}}
    assert p.decide(q("pay.transfer", Risk.financial, **pay)).rule_id == "org-payments"
    d = p.decide(q("pay.transfer", Risk.financial, department="finance", **pay))
    assert (d.effect, d.rule_id) == (Effect.allow, "finance-payments")
    big = {"args": {"amount": 5000}}
    d = p.decide(q("pay.transfer", Risk.financial, department="finance", **big))
    assert (d.effect, d.rule_id) == (Effect.require_approval, "finance-big")  # more conditions
    d = p.decide(q("pay.transfer", Risk.financial, department="finance", agent="cfo", **big))
    assert (d.effect, d.rule_id) == (Effect.allow, "cfo-transfer")  # agent beats department
    # the exact action name beats a glob at the same level
    d = p.decide(q("pay.refund", Risk.financial, department="finance", agent="cfo", **big))
    assert d.rule_id == "finance-big"


def test_allow_list_for_external(tmp_path: Path) -> None:
    p = policies(tmp_path, ORG)
    assert p.decide(q("search.web", Risk.external)).effect is Effect.allow
    assert p.decide(q("mail.send", Risk.external)).effect is Effect.require_approval
    assert p.decide(q("files.erase", Risk.destructive)).effect is Effect.deny


def test_conflicting_equally_specific_rules_resolve_to_the_stricter(tmp_path: Path) -> None:
    p = policies(
        tmp_path,
        """
rules:
  - {id: allow-mail, action: mail.send, decision: allow}
  - {id: deny-mail, action: mail.send, decision: deny}
  - {id: ask-mail, action: mail.send, decision: require_approval}
""",
    )
    d = p.decide(q("mail.send", Risk.external))
    assert (d.effect, d.rule_id) == (Effect.deny, "deny-mail")
    assert "conflicting rules" in d.reason


def test_argument_predicates(tmp_path: Path) -> None:
    p = policies(
        tmp_path,
        """
rules:
  - id: outside
    action: mail.send
    when: {args: {to: {outside_domains: [acme.example]}}}
    decision: require_approval
  - id: inside
    action: mail.send
    decision: allow
  - id: many
    action: mail.blast
    when: {args: {to: {count_above: 3}}}
    decision: deny
  - id: secrets
    action: "notes.*"
    when: {args: {"*": {matches: "(?i)password"}}}
    decision: deny
""",
    )
    inside = {"to": ["bob@acme.example", "eve@sales.acme.example"], "body": "hi"}
    assert p.decide(q("mail.send", Risk.external, args=inside)).rule_id == "inside"
    outside = {"to": ["bob@acme.example", "x@evil.example"]}
    assert p.decide(q("mail.send", Risk.external, args=outside)).rule_id == "outside"
    assert p.decide(q("mail.blast", Risk.external, args={"to": list("abcd")})).effect is Effect.deny
    assert p.decide(q("mail.blast", Risk.external, args={"to": list("abc")})).rule_id != "many"
    assert (
        p.decide(q("notes.write", Risk.write, args={"text": "my PASSWORD is x"})).effect
        is Effect.deny
    )
    assert p.decide(q("notes.write", Risk.write, args={"text": "hello"})).effect is Effect.allow


def test_provenance_conditions_and_guardrail(tmp_path: Path) -> None:
    p = policies(
        tmp_path,
        """
allow_external: [mail.send]
rules:
  - id: no-untrusted-recipients
    action: mail.send
    when: {untrusted_args: [to]}
    decision: deny
""",
    )
    clean = q("mail.send", Risk.external, args={"to": "a@b.example"})
    assert p.decide(clean).effect is Effect.allow
    d = p.decide(q("mail.send", Risk.external, tainted_args=frozenset({"to"})))
    assert (d.effect, d.rule_id) == (Effect.deny, "no-untrusted-recipients")
    # an allow-listed action whose body came from tool output still needs approval
    d = p.decide(q("mail.send", Risk.external, tainted_args=frozenset({"body"})))
    assert (d.effect, d.guardrail) == (Effect.require_approval, "tainted-args")
    # writes planned after reading untrusted content need approval; reads do not
    d = p.decide(q("notes.write", Risk.write, tainted_origin=True))
    assert (d.effect, d.guardrail) == (Effect.require_approval, "tainted-origin")
    assert p.decide(q("mail.read", Risk.read, tainted_origin=True)).effect is Effect.allow
    # writing tool output into a note is normal work
    assert (
        p.decide(q("notes.write", Risk.write, tainted_args=frozenset({"text"}))).effect
        is Effect.allow
    )


def test_trust_tool_output_rule_skips_the_guardrail(tmp_path: Path) -> None:
    p = policies(tmp_path, CFO)
    d = p.decide(q("pay.transfer", Risk.financial, agent="cfo", tainted_origin=True))
    assert (d.effect, d.guardrail) == (Effect.allow, None)


def test_time_windows(tmp_path: Path) -> None:
    p = policies(
        tmp_path,
        """
rules:
  - id: office-hours
    action: pay.transfer
    when: {within: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00", tz: UTC}}
    decision: allow
  - id: night
    action: pay.transfer
    when: {outside: {days: [mon, tue, wed, thu, fri], from: "09:00", to: "17:00"}}
    decision: deny
""",
    )
    tuesday_noon = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    tuesday_night = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)
    sunday_noon = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert p.decide(q("pay.transfer", Risk.financial, now=tuesday_noon)).rule_id == "office-hours"
    assert p.decide(q("pay.transfer", Risk.financial, now=tuesday_night)).rule_id == "night"
    assert p.decide(q("pay.transfer", Risk.financial, now=sunday_noon)).rule_id == "night"


BAD = """rules:
  - id: ok
    action: mail.send
    decision: allow
  - id: typo
    action: mail.send
    decison: deny
  - id: bad-regex
    when:
      args:
        body: {matches: "([unclosed"}
    decision: deny
  - id: bad-tier
    risk: catastrophic
    decision: deny
"""


def test_invalid_file_reports_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policies([path])
    problems = info.value.problems
    assert f"{path}:7: unknown rule key 'decison'" in problems[0]
    assert any(p.startswith(f"{path}:5: rule typo: decision must be") for p in problems)
    assert any(p.startswith(f"{path}:11: invalid regular expression") for p in problems)
    assert any(p.startswith(f"{path}:14: rule bad-tier: unknown risk tier") for p in problems)


def test_yaml_syntax_error_and_duplicate_keys_have_lines(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - id: a\n    decision: [allow\n", encoding="utf-8")
    dup = tmp_path / "dup.yaml"
    dup.write_text("rules:\n  - id: a\n    decision: allow\n    decision: deny\n", encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        load_policies([broken, dup])
    text = "\n".join(info.value.problems)
    assert f"{broken}:4: not valid YAML" in text
    assert f"{dup}:4: duplicate key 'decision'" in text


def test_cli_policy_check(tmp_path: Path) -> None:
    from openlam.cli.main import _install, app

    _install()
    good = tmp_path / "policies"
    good.mkdir()
    (good / "org.yaml").write_text(ORG, encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "check", str(good), "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "OK: 3 rule(s) in 1 file(s)" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    result = CliRunner().invoke(app, ["policy", "check", str(bad), "--workspace", str(tmp_path)])
    assert result.exit_code == 1
    # The terminal wraps the message where the temporary path's length puts it.
    words = "".join(result.output.split())
    assert "bad.yaml:7:unknownrulekey'decison'" in words
