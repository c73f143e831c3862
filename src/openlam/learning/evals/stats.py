"""Significance of a difference in success rate between two evaluations.

On the same tasks (paired) the exact McNemar test: only the tasks where the two differ
count, and under "no difference" each such task is a fair coin — a two-sided exact
binomial test. On different tasks, Fisher's exact test on the 2x2 table. Both exact, in a
few lines, with no dependency.
"""

from __future__ import annotations

from math import comb


def binomial_two_sided(k: int, n: int) -> float:
    """P(a result at least as extreme as k successes in n fair coin flips)."""
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(0, min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """p-value for paired outcomes: ``a_only`` tasks only A got done, ``b_only`` only B."""
    return binomial_two_sided(min(a_only, b_only), a_only + b_only)


def fisher_exact(a_yes: int, a_no: int, b_yes: int, b_no: int) -> float:
    """Two-sided p-value of Fisher's exact test for the table [[a_yes, a_no], [b_yes, b_no]]."""
    row_a, col_yes, n = a_yes + a_no, a_yes + b_yes, a_yes + a_no + b_yes + b_no

    def p(x: int) -> float:
        return comb(col_yes, x) * comb(n - col_yes, row_a - x) / comb(n, row_a)

    observed = p(a_yes)
    low, high = max(0, row_a + col_yes - n), min(row_a, col_yes)
    return min(1.0, sum(q for x in range(low, high + 1) if (q := p(x)) <= observed * (1 + 1e-9)))
