"""human: ask a person a question; the run waits durably for the answer.

The waiting is done by the durable runtime (``openlam.runtime.human``), which handles
``human.ask`` and the plan's ``ask_human`` steps; this module declares the action so
that agents may be granted it and plans are validated against its schema.
"""

from __future__ import annotations

from typing_extensions import TypedDict

from openlam.actions.spec import Risk, action
from openlam.errors import ActionError


class Answer(TypedDict):
    question: str
    answer: str
    by: str


@action("human.ask", risk=Risk.read, idempotent=True)  # asking again waits for the same answer
def ask(question: str, timeout_seconds: float = 86_400) -> Answer:
    """Ask a person a question and wait for the answer (answered with `openlam runs answer`).

    Args:
        question: One precise question.
        timeout_seconds: How long to wait before the step ends blocked (default a day).
    """
    raise ActionError(
        "human.ask needs a durable run (Workforce or `openlam run`), where "
        "the run can wait for the answer"
    )
