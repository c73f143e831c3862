"""Evaluation (docs/eval.md): suites of tasks with ground truth and end-state checkers,
a harness that runs them through the real workforce, scores stored in the project
database, comparison with an exact significance test, and the fake control models.

    suite     what a suite and a task are; finding installed suites
    controls  the oracle and negative-control models
    harness   running a suite's tasks and scoring them
    results   the eval_* tables
    stats     exact McNemar and Fisher tests
    own       OpenLAM's own suite; tau2, agentdojo: the external benchmarks
"""
