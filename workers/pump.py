"""Gathering and recovery: acknowledged messages into batched jobs, and nothing left behind.

The webhook pushes each new message's ID onto a Redis list. The pump takes up to a batch of
them at a time and enqueues one intake job for the lot, so a busy minute costs a few jobs, not
one per vote. The sweep reads the gateway's own records: any message still pending after a
while (its ID lost with a killed pump, a dead worker or a Redis restart) is pushed again, and
any reply still waiting is queued again. Running a message twice is harmless by design.

Every intake worker can pump, but one at a time does: the holder of a short lease in Redis.
A worker killed while pumping loses the lease when it expires, and another takes over.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Retry
from sqlalchemy import select, update

from gateway import inbox, redis_scripts
from gateway.db import transaction
from gateway.models import InboundRow, OutboundRow, utcnow
from gateway.queues import INTAKE_LIST, INTAKE_QUEUE
from workers import runtime
from workers.intake import process_inbound, process_inbox_batch
from workers.replies import RETRY_DELAYS, enqueue_replies

SWEEP_LIMIT = 5000  # rows per sweep pass: a backlog is recovered over several passes
SWEEP_LOCK = "consulta:sweep-lock"
INTAKE_RETRY = Retry(max=5, interval=[1, 5, 15, 30, 60])


PUMP_LEASE = "consulta:pump-lease"
PUMP_LEASE_MS = 3000  # a dead pump's lease passes to another worker after this
# Take the lease if it is free, or renew it if it is ours: 1 if we hold it now.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def hold_lease(redis: Redis, me: str, lease_ms: int = PUMP_LEASE_MS) -> bool:
    """Whether `me` is the deployment's one pump now; renews the lease each time it is."""
    return bool(redis_scripts.script(redis, _HOLD)(keys=[PUMP_LEASE], args=[me, lease_ms]))


def release_lease(redis: Redis, me: str) -> None:
    """On the way out, so that another worker pumps at once rather than after the lease."""
    redis_scripts.script(redis, _RELEASE)(keys=[PUMP_LEASE], args=[me])


def push_for_intake(rt: runtime.Runtime, inbound_ids: list[int]) -> None:
    if inbound_ids:
        rt.redis.rpush(INTAKE_LIST, *inbound_ids)


def pump_once(rt: runtime.Runtime, wait_seconds: float = 1.0) -> int:
    """Move one batch into one intake job; 0 if nothing came within the wait.

    With ACK_AFTER=redis the messages themselves wait in the inbox (and the ID list only holds
    what the database took while Redis was away); otherwise the ID list is all there is.
    """
    if rt.settings.ack_after == "redis":
        return _pump_ids(rt, wait_seconds=0) + _pump_inbox(rt, wait_seconds)
    return _pump_ids(rt, wait_seconds)


def _pump_inbox(rt: runtime.Runtime, wait_seconds: float) -> int:
    settings = rt.settings
    linger = settings.batch_linger_ms / 1000
    batch = inbox.take_batch(rt.redis, settings.batch_size, wait_seconds, linger)
    if batch is None:
        return 0
    _enqueue_inbox_batch(rt, batch)
    return 1


def _enqueue_inbox_batch(rt: runtime.Runtime, batch: str) -> None:
    rt.queue(INTAKE_QUEUE).enqueue(
        process_inbox_batch, batch, retry=INTAKE_RETRY, result_ttl=300, failure_ttl=7 * 86400
    )


def _pump_ids(rt: runtime.Runtime, wait_seconds: float) -> int:
    first: Any
    if wait_seconds > 0:
        popped = rt.redis.blpop([INTAKE_LIST], timeout=wait_seconds)
        first = None if popped is None else popped[1]
    else:
        first = rt.redis.lpop(INTAKE_LIST)
    if first is None:
        return 0
    rest = rt.redis.lpop(INTAKE_LIST, rt.settings.batch_size - 1) or []
    ids = [int(first)] + [int(raw) for raw in rest]
    rt.queue(INTAKE_QUEUE).enqueue(
        process_inbound, ids, retry=INTAKE_RETRY, result_ttl=300, failure_ttl=7 * 86400
    )
    return len(ids)


def sweep_once(rt: runtime.Runtime) -> dict[str, int]:
    """Re-queue what was acknowledged or recorded but has not moved on; one sweeper at a time."""
    after = rt.settings.sweep_after_seconds
    if not rt.redis.set(SWEEP_LOCK, "1", nx=True, ex=max(1, after // 3)):
        return {}
    # First what needs Redis alone, so that a database outage does not hold it up: batches
    # taken from the inbox whose job never finished (a killed pump or worker).
    batches = inbox.stale_batches(rt.redis, after)
    for batch in batches:
        _enqueue_inbox_batch(rt, batch)
    cutoff = utcnow() - timedelta(seconds=after)
    # A reply refused for now waits up to the longest backoff for its delayed job; re-queueing it
    # sooner would undo the backoff, so replies are swept on a longer clock.
    reply_cutoff = utcnow() - timedelta(seconds=max(after, 2 * max(RETRY_DELAYS)))
    with transaction(rt.sessions) as session:
        inbound = _stale_ids(session, InboundRow, "pending", InboundRow.enqueued_at, cutoff)
        session.execute(
            update(InboundRow).where(InboundRow.id.in_(inbound)).values(enqueued_at=utcnow())
        )
        replies = _stale_ids(session, OutboundRow, "queued", OutboundRow.updated_at, reply_cutoff)
        session.execute(
            update(OutboundRow).where(OutboundRow.id.in_(replies)).values(updated_at=utcnow())
        )
        # A send that was claimed but never reported back may have reached the provider.
        stuck = session.execute(
            update(OutboundRow)
            .where(OutboundRow.status == "sending", OutboundRow.updated_at < reply_cutoff)
            .values(status="unknown", error_code="worker-died", updated_at=utcnow())
        )
    push_for_intake(rt, inbound)
    enqueue_replies(rt, replies)
    unknown: int = stuck.rowcount  # type: ignore[attr-defined]
    return {
        "inbound": len(inbound), "batches": len(batches), "replies": len(replies),
        "unknown": unknown,
    }  # fmt: skip


def _stale_ids(session, table, status, stamp, cutoff) -> list[int]:  # type: ignore[no-untyped-def]
    query = (
        select(table.id)
        .where(table.status == status, stamp < cutoff)
        .order_by(table.id)
        .limit(SWEEP_LIMIT)
    )
    return list(session.scalars(query))
