"""What a run costs besides its work: wall and CPU outside the model and the actions.

The model request (:func:`openlam.models.request`), the act phase of an action
(:func:`openlam.loop.act.execute`), a special step (a delegated child's whole run, a
question to a person) and the wait for an approval mark themselves as work on the clock
of the run they belong to (a context variable the runner sets); whatever this
process spends on the run outside those spans — planning, validation, governance,
checkpoints, the audit log, the databases — is overhead. Concurrent steps overlap, so
a span is the time at least one of them is in flight.

CPU is the process's: exact when one run is in flight at a time; with runs side by side
in one process each run's figure also holds the others' CPU of the same moments.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar


class OverheadClock:
    def __init__(self, run_id: str = "") -> None:
        self.run_id = run_id
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        self.busy = 0
        self.work_wall = self.work_cpu = 0.0
        self._since = (0.0, 0.0)

    def enter(self) -> None:
        if self.busy == 0:
            self._since = (time.perf_counter(), time.process_time())
        self.busy += 1

    def leave(self) -> None:
        self.busy -= 1
        if self.busy == 0:
            self.work_wall += time.perf_counter() - self._since[0]
            self.work_cpu += time.process_time() - self._since[1]

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def measure(self) -> tuple[float, float]:
        """(wall, CPU) seconds of overhead so far."""
        wall = time.perf_counter() - self.wall0 - self.work_wall
        cpu = time.process_time() - self.cpu0 - self.work_cpu
        return round(max(wall, 0.0), 4), round(max(cpu, 0.0), 4)


_current: ContextVar[OverheadClock | None] = ContextVar("openlam_overhead", default=None)


def start_clock(run_id: str) -> OverheadClock:
    """A new clock for the run in this task (and the step tasks it starts)."""
    clock = OverheadClock(run_id)
    _current.set(clock)
    return clock


def run_clock(run_id: str) -> OverheadClock:
    """The clock whoever runs ``run_id`` in this task started (a durable workflow starts
    it before loading the run's journal), else a new one — never an earlier run's clock
    left in the same task."""
    clock = _current.get()
    return clock if clock is not None and clock.run_id == run_id else start_clock(run_id)


@contextlib.contextmanager
def working() -> Iterator[None]:
    """Mark the enclosed span as the run's work (no-op outside a run)."""
    clock = _current.get()
    if clock is None:
        yield
        return
    with clock.working():
        yield
