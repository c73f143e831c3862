"""Governance: a layer around actions (docs/governance.md).

* :mod:`policy` — YAML policies, org → department → agent → action, most specific wins
* :mod:`taint` — provenance of arguments and of plans (tool output is untrusted)
* :mod:`approvals` — requests, decisions by approvers, expiry; the wait is pluggable
* :mod:`budget` — model requests, tokens, cost and actions per run/agent/department/day
* :mod:`audit` — append-only, hash-chained log in the project database
* :mod:`gaps` — capability gaps, most requested first
* :mod:`gate` — ``build_gate`` combines them into the runner's ``gate`` hook
"""
