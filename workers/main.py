"""The worker process: an RQ worker, plus the pump and the sweep on a side thread.

It is an RQ `SimpleWorker`: jobs run in this process rather than in a fork per job. Our jobs are
our own code and idempotent, so the fork's isolation buys little, while it costs about four
times the throughput (guarantees.md) and makes threads unsafe. A killed worker loses nothing:
its messages are still pending in the database and the sweep queues them again.

The process rides out a Redis restart. RQ's own loop quits when Redis drops out under a running
job; we wait for Redis and start a fresh worker rather than exit, since a supervisor that sees
every worker crash at once may back off for minutes (tests/fault/test_kill_soak.py).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from contextlib import suppress

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
# Batches are only as big as what waits when the pump looks. Without a limit the pump turns every
# ID into a job of one as soon as it arrives, and a worker that falls behind (a job costs about 30
# Redis writes; with `appendfsync always` each waits for an fsync) faces a queue of tiny jobs it
# can never catch up with. With at most this many jobs waiting, IDs gather in the list instead
# and the next job takes them all (tests/fault/test_outage.py).
# With one pump for the deployment this also sets batch size: the fewer jobs wait, the more
# messages each takes. Keeping one per worker waiting made batches of 12 with four workers.
JOBS_AHEAD = 2
FOLLOWER_PAUSE_SECONDS = 1.0  # how often a worker that does not pump asks for the lease
BEHIND_PAUSE_SECONDS = 0.05
# RQ's maintenance pass restarts its scheduler if that died with Redis; RQ runs it every 10 min.
MAINTENANCE_SECONDS = 60
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class GatewayWorker(SimpleWorker):
    """A SimpleWorker that tells a stop we were asked for from a quit on a lost Redis."""

    # Between reconnects RQ waits twice as long each time, up to 60 s: after an outage of a
    # minute the worker would sit idle for another minute with Redis already back.
    max_connection_wait_time = 5.0
    stop_asked = False

    def request_stop(self, signum: int, frame: object) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def run(settings: Settings, queue_names: list[str], burst: bool = False) -> None:
    rt = runtime.Runtime.build(settings)
    runtime.install(rt)
    stop = threading.Event()
    _children_die_with_us()
    pumping = threading.Thread(target=feed, args=(rt, stop), name="pump", daemon=True)
    if INTAKE_QUEUE in queue_names:
        pumping.start()
    try:
        while not stop.is_set():
            worker = GatewayWorker(
                [rt.queue(name) for name in queue_names],
                connection=rt.redis,
                serializer=JSONSerializer,
                maintenance_interval=MAINTENANCE_SECONDS,
            )
            if _work(worker, burst) or worker.stop_asked:
                return
            _wait_for_redis(rt, stop)
    finally:
        stop.set()
        if pumping.is_alive():  # its BLPOP waits at most a second; closing Redis under it is noisy
            pumping.join(timeout=5)
        rt.close()


def _work(worker: GatewayWorker, burst: bool) -> bool:
    """Run RQ's loop; True if it ended as asked (burst done), False if it lost Redis."""
    try:
        # RQ logs every job at INFO: at a national peak that is thousands of lines a second.
        worker.work(with_scheduler=True, burst=burst, logging_level="WARNING")
    except RedisError as error:
        log.warning("worker lost Redis (%s): starting again when it answers", type(error).__name__)
        if worker.pubsub_thread:  # RQ's teardown could not reach Redis to stop it
            worker.pubsub_thread.stop()
        return False
    return burst


def _wait_for_redis(rt: runtime.Runtime, stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):  # RQ's handlers belong to the worker that quit
        signal.signal(sig, lambda *_: stop.set())
    stop.wait(OUTAGE_PAUSE_SECONDS)  # also paces restarts if RQ quit for another reason
    while not stop.is_set():
        with suppress(RedisError):
            rt.redis.ping()
            return
        stop.wait(OUTAGE_PAUSE_SECONDS)


def _children_die_with_us() -> None:
    """RQ forks its scheduler. Killed with SIGKILL, we would leave it running, holding the
    scheduler lock, for as long as it lives: ask the kernel to send it SIGTERM when we die."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def in_child() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # we died between the fork and the prctl
            os.kill(os.getpid(), signal.SIGTERM)

    os.register_at_fork(after_in_child=in_child)


def feed(rt: runtime.Runtime, stop: threading.Event) -> None:
    """Pump batches continuously and sweep every few seconds, riding out Redis or DB outages.

    Every intake worker runs this, but only one pumps at a time: the one holding the pump lease.
    With a pump in each worker, each took a share of what was waiting, and four workers made
    batches a quarter the size, so more workers carried fewer votes (docs/performance.md).
    """
    me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    last_sweep = 0.0
    try:
        while not stop.is_set():
            last_sweep = _feed_once(rt, stop, me, last_sweep)
    finally:
        with suppress(RedisError):
            pump.release_lease(rt.redis, me)


def _feed_once(rt: runtime.Runtime, stop: threading.Event, me: str, last_sweep: float) -> float:
    """One turn of the side thread; when it last swept."""
    try:
        if not pump.hold_lease(rt.redis, me):
            stop.wait(FOLLOWER_PAUSE_SECONDS)  # another worker pumps; the jobs still reach us
        elif rt.queue(INTAKE_QUEUE).count < JOBS_AHEAD:
            pump.pump_once(rt, wait_seconds=1.0)
        else:  # the workers are behind: let the next batch grow instead of queueing more jobs
            stop.wait(BEHIND_PAUSE_SECONDS)
        if time.monotonic() - last_sweep >= SWEEP_EVERY_SECONDS:
            last_sweep = time.monotonic()
            if recovered := pump.sweep_once(rt):
                _log_recovery(recovered)
    except (RedisError, SQLAlchemyError) as error:
        log.warning("pump paused: %s", type(error).__name__)
        stop.wait(OUTAGE_PAUSE_SECONDS)
    return last_sweep


def _log_recovery(counts: dict[str, int]) -> None:
    if any(counts.values()):
        log.warning("sweep re-queued %s", counts)
