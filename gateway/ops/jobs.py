"""Failed RQ jobs: list them, retry them, discard them."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import asdict, dataclass
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from gateway.queues import INTAKE_QUEUE, REPLIES_QUEUE

JOB_QUEUES = (INTAKE_QUEUE, REPLIES_QUEUE)


@dataclass(frozen=True)
class FailedJob:
    id: str
    queue: str
    call: str  # the function and a shortened argument list
    error: str  # the exception's last line; the full traceback is in rq-dashboard
    failed_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_queue(redis: Redis, name: str) -> Queue:
    return Queue(name, connection=redis, serializer=JSONSerializer)


def failed_jobs(redis: Redis, limit: int = 20) -> list[FailedJob]:
    """The most recent failures across our queues, newest first."""
    found: list[FailedJob] = []
    for name in JOB_QUEUES:
        registry = job_queue(redis, name).failed_job_registry
        ids = registry.get_job_ids(0, limit - 1, desc=True, cleanup=False)
        jobs = Job.fetch_many(ids, connection=redis, serializer=JSONSerializer)
        found += [_describe(job, name) for job in jobs if job is not None]
    found.sort(key=lambda job: job.failed_at or "", reverse=True)
    return found[:limit]


def _describe(job: Job, queue_name: str) -> FailedJob:
    result = job.latest_result()
    lines = (
        [line for line in (result.exc_string or "").splitlines() if line.strip()] if result else []
    )
    return FailedJob(
        id=job.id,
        queue=queue_name,
        call=_shorten(job.get_call_string() or job.func_name or "?", 120),
        error=_shorten(lines[-1] if lines else "unknown error", 240),
        failed_at=job.ended_at.isoformat(timespec="seconds") if job.ended_at else None,
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry(redis: Redis, queue_name: str, job_id: str) -> bool:
    """Put a failed job back on its queue; False if it is no longer among the failed."""
    registry = job_queue(redis, queue_name).failed_job_registry
    try:
        registry.requeue(job_id)
    except (InvalidJobOperation, NoSuchJobError):
        return False
    return True


def discard(redis: Redis, queue_name: str, job_id: str) -> bool:
    """Drop a failed job for good; False if it is no longer among the failed."""
    registry = job_queue(redis, queue_name).failed_job_registry
    if not registry.remove(job_id):
        return False
    # If its data had already expired, leaving the registry was all there was left to do.
    with suppress(NoSuchJobError):
        Job.fetch(job_id, connection=redis, serializer=JSONSerializer).delete()
    return True
