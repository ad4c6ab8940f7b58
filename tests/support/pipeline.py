"""Run the worker side in-process, the way RQ's docs recommend for tests."""

from __future__ import annotations

from rq import SimpleWorker
from rq.serializers import JSONSerializer

from gateway.queues import INTAKE_QUEUE, REPLIES_QUEUE
from workers import pump
from workers.runtime import Runtime


def drain(rt: Runtime) -> None:
    """Gather every waiting message into jobs, then run all jobs until the queues are empty."""
    while pump.pump_once(rt, wait_seconds=0.05):
        pass
    queues = [rt.queue(INTAKE_QUEUE), rt.queue(REPLIES_QUEUE)]
    worker = SimpleWorker(queues, connection=rt.redis, serializer=JSONSerializer)
    worker.work(burst=True)
    failed = [job_id for q in queues for job_id in q.failed_job_registry.get_job_ids()]
    if failed:
        job = queues[0].fetch_job(failed[0]) or queues[1].fetch_job(failed[0])
        raise AssertionError(f"{len(failed)} job(s) failed; first: {job and job.exc_info}")
