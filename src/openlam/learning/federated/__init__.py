"""Federated, privacy-first sharing of what was learned (optional extra ``federated``).

Members share tool reliability and playbook success counts — as fixed-length vectors,
clipped and noised on their own machine (differential privacy) — and get back the
aggregate of everyone's as "community" success rates. Goals, arguments, outputs,
error texts and ids never leave a workspace. See docs/federated.md.

``privacy``, ``vectors`` and ``membership`` work without Flower; ``flower`` (the Flower
apps) needs ``pip install 'openlam[federated]'``.
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "install it with: pip install 'openlam[federated]'"


def require_flower() -> Any:
    """The Flower apps module, or a clear error when Flower is not installed."""
    try:
        import flwr  # noqa: F401  # pyright: ignore[reportMissingImports]
    except ImportError:
        from openlam.errors import UserError

        raise UserError(
            "federated sharing needs Flower (flwr), which is not installed", INSTALL_HINT
        ) from None
    from openlam.learning.federated import flower as module

    return module
