# ruff: noqa: RUF002, RUF003 (σ, −: the mathematics is written as it is printed)
"""The differential-privacy arithmetic of federated sharing: how much noise a stated
(ε, δ) needs, and what several rounds cost together.

The mechanism is the Gaussian mechanism, applied on each member's own machine (local
DP: the aggregation server never sees a number without its noise). Its noise is
calibrated with the *analytic* Gaussian mechanism (Balle & Wang, ICML 2018, Theorem
8): the smallest σ for which

    Φ(Δ/2σ − εσ/Δ) − e^ε · Φ(−Δ/2σ − εσ/Δ) ≤ δ

where Δ is the L2 sensitivity of what is shared. Unlike the textbook
σ = Δ·√(2 ln(1.25/δ))/ε (Dwork & Roth, Theorem A.1), which is proved only for ε < 1,
this is exact for every ε > 0 — and smaller than the textbook σ where both hold.

Rounds compose: ``k`` rounds at (ε, δ) each cost (kε, kδ) in all (basic composition,
a safe upper bound; tighter accountants would say less).
"""

from __future__ import annotations

import math

SENSITIVITY = 2.0
"""L2 sensitivity Δ of one member's shared vector to one *event* — one action call, or
one playbook run. A call adds one to its action's successes or failures (1), one to its
source's (1), and one latency to its action's recent-latency window, which may push the
oldest one out of another bucket (√2 at most): √(1 + 1 + 1 + 1) = 2. A playbook run adds
one to one bucket's successes or failures: 1 ≤ 2. Clipping (a projection onto a ball)
never increases it."""


def _phi(x: float) -> float:
    """The standard normal distribution function."""
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def delta_of(sigma: float, epsilon: float, sensitivity: float = SENSITIVITY) -> float:
    """The exact δ of the Gaussian mechanism with noise ``sigma`` at ``epsilon``."""
    a = sensitivity / (2.0 * sigma)
    b = epsilon * sigma / sensitivity
    return _phi(a - b) - math.exp(epsilon) * _phi(-a - b)


def noise_sigma(epsilon: float, delta: float, sensitivity: float = SENSITIVITY) -> float:
    """The smallest Gaussian σ that makes one release (ε, δ)-differentially private."""
    check(epsilon, delta)
    low, high = 1e-6 * sensitivity, sensitivity
    while delta_of(high, epsilon, sensitivity) > delta:
        high *= 2.0
    for _ in range(200):  # bisection: δ(σ) decreases as σ grows
        mid = (low + high) / 2.0
        if delta_of(mid, epsilon, sensitivity) > delta:
            low = mid
        else:
            high = mid
    return high


def classic_sigma(epsilon: float, delta: float, sensitivity: float = SENSITIVITY) -> float:
    """The textbook calibration Δ·√(2 ln(1.25/δ))/ε (valid for ε < 1 only)."""
    return sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon


def check(epsilon: float, delta: float) -> None:
    """Refuse parameters that promise no privacy or make no sense."""
    from openlam.errors import UserError

    if not (math.isfinite(epsilon) and 0 < epsilon <= 20):
        raise UserError(
            f"epsilon must be a number above 0 and at most 20, got {epsilon:g}",
            "a smaller ε is more private; 0.5–8 per round is usual (the default is 1)",
        )
    if not (math.isfinite(delta) and 0 < delta < 1e-2):
        raise UserError(
            f"delta must be above 0 and below 0.01, got {delta:g}",
            "δ is the chance the guarantee fails; use far less than 1 / the number of "
            "events recorded (the default is 1e-6)",
        )


def composed(rounds: list[tuple[float, float]]) -> tuple[float, float]:
    """(ε, δ) spent by these rounds together (basic composition)."""
    return sum(e for e, _ in rounds), sum(d for _, d in rounds)
