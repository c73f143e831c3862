"""A bare DBOS worker for the SQLite dequeue test: it takes "job" workflows from one
queue; each job returns how many of the queue's workflows were running as it started.

    python -m tests.fakes.dequeue_worker SYSTEM_DB_URL QUEUE SECONDS [--unlocked]
"""

from __future__ import annotations

import os
import sys
import time

from dbos import DBOS

from openlam.runtime.sqlite_dequeue import serialize_dequeues

url, queue, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
if "--unlocked" not in sys.argv:
    serialize_dequeues()
DBOS(
    config={
        "name": "openlam",
        "system_database_url": url,
        "executor_id": f"dequeue-{os.getpid()}",
        "application_version": "1",
        "log_level": "WARNING",
    }
)


@DBOS.step()
def running_now() -> int:
    return len(DBOS.list_workflows(status="PENDING", queue_name=queue, load_input=False))


@DBOS.workflow(name="job")
def job(_i: int) -> int:
    seen = running_now()
    time.sleep(0.02)
    return seen


DBOS.listen_queues([queue])
DBOS.launch()
time.sleep(seconds)
DBOS.destroy()
