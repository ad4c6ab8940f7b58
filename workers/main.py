"""The worker process: an RQ worker, plus the pump and the sweep on a side thread.

It is an RQ `SimpleWorker`: jobs run in this process rather than in a fork per job. Our jobs are
our own code and idempotent, so the fork's isolation buys little, while it costs about four
times the throughput (guarantees.md) and makes threads unsafe. A killed worker loses nothing:
its messages are still pending in the database and the sweep queues them again.
"""

from __future__ import annotations

import logging
import threading
import time

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy.exc import SQLAlchemyError

from gateway.queues import INTAKE_QUEUE
from gateway.settings import Settings
from workers import pump, runtime

log = logging.getLogger(__name__)
SWEEP_EVERY_SECONDS = 5.0
OUTAGE_PAUSE_SECONDS = 1.0


def run(settings: Settings, queue_names: list[str], burst: bool = False) -> None:
    rt = runtime.Runtime.build(settings)
    runtime.install(rt)
    stop = threading.Event()
    if INTAKE_QUEUE in queue_names:
        threading.Thread(target=feed, args=(rt, stop), name="pump", daemon=True).start()
    worker = SimpleWorker(
        [rt.queue(name) for name in queue_names], connection=rt.redis, serializer=JSONSerializer
    )
    try:
        # RQ logs every job at INFO: at a national peak that is thousands of lines a second.
        worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
    finally:
        stop.set()
        rt.close()


def feed(rt: runtime.Runtime, stop: threading.Event) -> None:
    """Pump batches continuously and sweep every few seconds, riding out Redis or DB outages."""
    last_sweep = 0.0
    while not stop.is_set():
        try:
            pump.pump_once(rt, wait_seconds=1.0)
            if time.monotonic() - last_sweep >= SWEEP_EVERY_SECONDS:
                last_sweep = time.monotonic()
                if recovered := pump.sweep_once(rt):
                    _log_recovery(recovered)
        except (RedisError, SQLAlchemyError) as error:
            log.warning("pump paused: %s", type(error).__name__)
            stop.wait(OUTAGE_PAUSE_SECONDS)


def _log_recovery(counts: dict[str, int]) -> None:
    if any(counts.values()):
        log.warning("sweep re-queued %s", counts)
