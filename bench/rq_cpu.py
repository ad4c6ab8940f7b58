"""RQ's own CPU per job: what a job costs before it does anything, in the enqueuer, the worker
and Redis.

    REDIS_URL=redis://127.0.0.1:6379/14 python -m bench.rq_cpu [--jobs 2000]

Why jobs are batched, and why the replies of an intake batch make one job (workers/replies.py:
JOB_BATCH). It enqueues `--jobs` jobs that do nothing (`builtins.len` of a 100-element list, as
a job's list of IDs), with the retry and JSON serializer the gateway's jobs have, then runs them
with an RQ `SimpleWorker` in burst mode, as `consulta worker` does (no fork per job), its log at
WARNING. It prints this process's CPU (`time.process_time`) and Redis's (`INFO cpu`) per job for
each side. The Redis database named by REDIS_URL is flushed before and after: give it one of its
own. This Redis's persistence is whatever it runs with; the pipeline's fsyncs every write.
"""

from __future__ import annotations

import argparse
import sys
import time

from redis import Redis
from rq import Queue, Retry, SimpleWorker
from rq.serializers import JSONSerializer

from bench import stack


def redis_cpu(redis: Redis) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def per_job(redis: Redis, jobs: int, work: object) -> tuple[float, float]:
    """(this process's, Redis's) ms of CPU per job spent in `work()`."""
    redis_before, ours_before = redis_cpu(redis), time.process_time()
    work()  # type: ignore[operator]
    ours = (time.process_time() - ours_before) * 1000 / jobs
    return ours, (redis_cpu(redis) - redis_before) * 1000 / jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rq_cpu", description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    options = parser.parse_args(argv)
    redis = Redis.from_url(stack.flushable_redis_url())
    redis.flushdb()
    queue = Queue("bench-rq-cpu", connection=redis, serializer=JSONSerializer)
    ids = list(range(100))

    def enqueue() -> None:
        for _ in range(options.jobs):
            queue.enqueue("builtins.len", ids, retry=Retry(max=3, interval=[5, 30, 60]))

    def run() -> None:
        worker = SimpleWorker([queue], connection=redis, serializer=JSONSerializer)
        worker.work(burst=True, logging_level="WARNING")

    try:
        enqueued = per_job(redis, options.jobs, enqueue)
        ran = per_job(redis, options.jobs, run)
        left = queue.count
    finally:
        redis.flushdb()
    print(f"jobs        {options.jobs:,} that do nothing; {left} left in the queue")
    print(f"enqueue     {enqueued[0]:.2f} ms CPU per job here, {enqueued[1]:.2f} in Redis")
    print(f"run         {ran[0]:.2f} ms CPU per job in the worker, {ran[1]:.2f} in Redis")
    print(f"total       {sum(enqueued) + sum(ran):.2f} ms CPU per job")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
