"""The reply job: each recorded reply is sent once through its provider, or kept for a person.

A reply row exists before any send. The job claims it (queued -> sending) in its own commit, so
two jobs never send the same row. It sends them a few at a time, concurrently (each send waits
on the provider, not on the CPU), and records each group's answers in one commit as soon as they
come; a delivery report that beat that commit is waiting in Redis and is applied then
(`gateway.delivery_reports`). A refusal that
is sure (429, connection refused) goes back to queued with a backoff; a create that may have gone
through (5xx, timeout) is marked unknown and never resent blindly; an opt-out (Twilio's 21610,
Africa's Talking's UserInBlacklist) is final. Each reply leaves through the provider its message
came in by (`gateway.providers.registry`). Replies abroad, or past the hourly cap per number, are
never sent: they end as `blocked` or `capped` (`workers.reply_limits`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import cast

from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import Table, select, update

from gateway import delivery_reports
from gateway.db import transaction
from gateway.models import OutboundRow, utcnow
from gateway.providers.base import SendOutcome, SendResult
from gateway.queues import REPLIES_QUEUE
from gateway.sql import among, update_rows
from messages.send import send_via
from workers import reply_limits, runtime

log = logging.getLogger(__name__)
# Replies per job: one claim commit, then the answers' commits. A job costs RQ's own bookkeeping
# whatever its size, so the bigger the cheaper; but its last answers must be recorded well before
# the sweep takes a reply still `sending` for lost (240 s, workers/pump.py) and before RQ's 180 s
# job timeout: 13 groups, each bounded by the 10 s send timeout, take 130 s at worst.
JOB_BATCH = 100
SEND_AT_ONCE = 8  # replies of a job sent concurrently
# Answers are recorded in one commit once this long has passed since the last, and at the end of
# the job; an answer waits at most this plus one group's sends. Until then a sent reply is still
# `sending`: a worker killed meanwhile leaves it for the sweep to mark `unknown`, never to send it
# again. A commit per group of 8 was 13 commits for a job that writes 100 replies to the outbox
# in a few milliseconds; this is one, and a few a second while sends are slow.
RECORD_EVERY = 0.5  # seconds
RETRY_DELAYS = (2, 10, 30, 60, 120)  # seconds, for replies the provider refused for now
OUTBOUND = cast(Table, OutboundRow.__table__)


def enqueue_replies(rt: runtime.Runtime, outbound_ids: Sequence[int], delay: int = 0) -> None:
    """Queue the send jobs for replies already committed (never before the commit)."""
    queue = rt.queue(REPLIES_QUEUE)
    for start in range(0, len(outbound_ids), JOB_BATCH):
        chunk = list(outbound_ids[start : start + JOB_BATCH])
        retry = Retry(max=3, interval=[5, 30, 60])
        if delay:
            queue.enqueue_in(timedelta(seconds=delay), send_replies, chunk, retry=retry)
        else:
            queue.enqueue(send_replies, chunk, retry=retry)


def send_replies(outbound_ids: list[int], record_every: float = RECORD_EVERY) -> dict[str, int]:
    """RQ job: send these replies, each at most once, a few at a time."""
    rt = runtime.current()
    results: dict[int, SendResult] = {}
    unrecorded: dict[int, SendResult] = {}
    claimed = _claim(rt, outbound_ids)
    recorded_at = time.monotonic()
    for start in range(0, len(claimed), SEND_AT_ONCE):
        sent = _send_together(rt, claimed[start : start + SEND_AT_ONCE])
        results.update(sent)
        unrecorded.update(sent)
        last = start + SEND_AT_ONCE >= len(claimed)
        if last or time.monotonic() - recorded_at >= record_every:
            _record(rt, unrecorded)
            unrecorded, recorded_at = {}, time.monotonic()
    _retry_later(rt, results)
    return {
        outcome.value: sum(r.outcome is outcome for r in results.values())
        for outcome in SendOutcome
    }


def _claim(rt: runtime.Runtime, outbound_ids: list[int]) -> list[tuple[int, str, str, str]]:
    """(id, provider, recipient, body) of each reply this job now owns (queued -> sending).

    The rest of the rows it found are settled here for good: `blocked` (a country replies may
    not go to) or `capped` (too many replies to that number this hour). The cap is counted in
    Redis inside this transaction, so if Redis fails nothing is claimed and the job is retried.
    """
    with transaction(rt.sessions) as session:
        # Core on the session's connection: these are rows, not objects the session tracks.
        connection, c = session.connection(), OUTBOUND.c
        rows = connection.execute(
            select(c.id, c.provider, c.recipient_sealed, c.body_sealed)
            .where(among(session, c.id, outbound_ids), c.status == "queued")
            .with_for_update(skip_locked=True)
        ).all()
        verdicts = reply_limits.verdicts(rt.redis, rt.settings, [(r[0], r[2]) for r in rows])
        for status in set(verdicts.values()):
            settled = [row_id for row_id, verdict in verdicts.items() if verdict == status]
            connection.execute(
                update(OUTBOUND)
                .where(among(session, c.id, settled))
                .values(status=status, updated_at=utcnow(), **_attempt(status))
            )
    return [
        (row_id, provider, recipient, body)
        for row_id, provider, recipient, body in rows
        if verdicts[row_id] == reply_limits.SEND
    ]


Claimed = tuple[int, str, str, str]  # (outbound ID, provider, recipient, body)


def _send_together(rt: runtime.Runtime, group: list[Claimed]) -> dict[int, SendResult]:
    """Send a group at once: each send waits on the provider's answer, not on the CPU."""
    if len(group) == 1:
        row_id, provider, recipient, body = group[0]
        return {row_id: send_via(rt.settings, provider, recipient, body)}
    answers = _senders().map(lambda row: send_via(rt.settings, *row[1:]), group)
    return {row[0]: result for row, result in zip(group, answers, strict=True)}


@functools.cache
def _senders() -> ThreadPoolExecutor:
    """This process's sending threads, made on first use."""
    return ThreadPoolExecutor(SEND_AT_ONCE, thread_name_prefix="send")


def _attempt(status: str) -> dict[str, object]:
    """Only a reply that will be sent counts an attempt."""
    return {"attempts": OUTBOUND.c.attempts + 1} if status == reply_limits.SEND else {}


def _record(rt: runtime.Runtime, results: dict[int, SendResult]) -> None:
    """Each answer, in one commit; then any delivery report that came before it."""
    rows = [
        {"id": row_id, "status": "queued" if r.outcome is SendOutcome.RETRY else _status(r),
         "provider_sid": r.provider_sid, "error_code": r.error_code}
        for row_id, r in results.items()
    ]  # fmt: skip
    with transaction(rt.sessions) as session:
        # A row that moved on meanwhile (a delivery report came first) is left alone.
        sending = {"status": "sending"}
        update_rows(session, OutboundRow, rows, same={"updated_at": utcnow()}, only_if=sending)
    # Only after the commit: a report parked from now on finds the row (delivery_reports.py).
    sids = [r.provider_sid for r in results.values() if r.provider_sid]
    try:
        parked = delivery_reports.take(rt.redis, sids)
    except RedisError:
        log.warning("redis unavailable: early delivery reports of %d replies not read", len(sids))
        return
    if parked:
        with transaction(rt.sessions) as session:
            delivery_reports.apply(session, parked)


def _status(result: SendResult) -> str:
    if result.outcome is SendOutcome.SENT:
        return "outbox" if result.provider_sid is None else "sent"
    return result.outcome.value


def _retry_later(rt: runtime.Runtime, results: dict[int, SendResult]) -> None:
    again = [row_id for row_id, r in results.items() if r.outcome is SendOutcome.RETRY]
    if not again:
        return
    with rt.sessions() as session:
        attempts = max(
            session.scalars(select(OutboundRow.attempts).where(OutboundRow.id.in_(again)))
        )
    if attempts > len(RETRY_DELAYS):
        _give_up(rt, again)
        return
    enqueue_replies(rt, again, delay=RETRY_DELAYS[attempts - 1])


def _give_up(rt: runtime.Runtime, outbound_ids: list[int]) -> None:
    with transaction(rt.sessions) as session:
        session.execute(
            update(OutboundRow)
            .where(OutboundRow.id.in_(outbound_ids), OutboundRow.status == "queued")
            .values(status="failed", error_code="retries", updated_at=utcnow())
        )
