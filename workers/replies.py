"""The reply job: each recorded reply is sent once through its provider, or kept for a person.

A reply row exists before any send. The job claims it (queued -> sending) in a commit, so two
jobs never send the same row; it claims a slice at a time, about as many as it sends in
RECORD_EVERY, so that a worker killed mid-job strands few. It sends them a few at a time,
concurrently (each send waits on the provider, not on the CPU), and records the answers in a
commit every RECORD_EVERY, with the next slice's claim when one is due; a delivery report that
beat that commit is waiting in Redis and is applied then (`gateway.delivery_reports`).

A refusal that is sure (429, connection refused) goes back to queued with a backoff; a create
that may have gone through (5xx, timeout) is marked unknown and never resent blindly; an opt-out
(Twilio's 21610, Africa's Talking's UserInBlacklist) is final. Each reply leaves through the
provider its message came in by (`gateway.providers.registry`). Replies abroad, or past the
hourly cap per number, are never sent: they end as `blocked` or `capped`
(`workers.reply_limits`).
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
from sqlalchemy.orm import Session

from gateway import delivery_reports
from gateway.db import transaction
from gateway.models import OutboundRow, utcnow
from gateway.providers.base import ERROR_CODE_CHARS, SendOutcome, SendResult
from gateway.queues import REPLIES_QUEUE
from gateway.sql import among, by_unique_key, update_rows
from messages.send import send_via
from workers import reply_limits, runtime

log = logging.getLogger(__name__)
# Replies per job: an intake batch's replies (BATCH_SIZE, 200 by default) make one job. A job
# costs RQ's own bookkeeping whatever its size, about 4 ms of CPU (`bench.rq_cpu`) and a dozen
# Redis round trips, most of them fsynced; 200 replies in jobs of 96 paid it three times
# (docs/performance.md, ninth session). A job sends REPLY_SENDS_AT_ONCE (8 or more) at a time,
# in whole groups (job_size), and its RQ timeout grows with its groups (job_timeout). Its size
# does not have to fit the sweep's 240 s: a reply is `sending` only between the claim of its
# slice and the commit of its answers (_slice_for, SLICE_GROUPS); what a long job has not
# claimed yet is still `queued`, and if the sweep queues it again the claim lets only one job
# send it.
JOB_BATCH = 256
# The most one group of sends can take: every provider's TIMEOUT is 5 s to connect and 10 s for
# each read (gateway/providers/twilio.py, africastalking.py).
GROUP_WORST_SECONDS = 15
JOB_MARGIN_SECONDS = 60  # the claims' and the answers' commits, and RQ's own work
# Groups claimed at most at once: 12 at their slowest end in 180 s, inside the 240 s after which
# the sweep takes a reply still `sending` for lost (workers/pump.py).
SLICE_GROUPS = 12
# Answers are recorded in one commit once this long has passed since the last, and at the end of
# the job; an answer waits at most this plus one group's sends. Until then a sent reply is still
# `sending`: a worker killed meanwhile leaves it for the sweep to mark `unknown`, never to send it
# again. A commit per group of 8 was 13 commits for a job that writes 100 replies to the outbox
# in a few milliseconds; this is one, and a few a second while sends are slow.
RECORD_EVERY = 0.5  # seconds
RETRY_DELAYS = (2, 10, 30, 60, 120)  # seconds, for replies the provider refused for now
OUTBOUND = cast(Table, OutboundRow.__table__)
Claimed = tuple[int, str, str, str]  # (outbound ID, provider, recipient, body)


def job_size(at_once: int) -> int:
    """Replies per job: about JOB_BATCH, in whole groups of `at_once`.

    A job sends a group and waits for all of it before the next, so each group costs one wait
    on the provider, however few it holds. 100 at 32 at once went out as 32, 32, 32 and then 4
    alone: four waits, where 96 take three; at 64 at once, 100 took two waits, as 128 do.
    """
    return at_once * max(1, round(JOB_BATCH / at_once))


def job_timeout(replies: int, at_once: int) -> int:
    """RQ's timeout for a job of this many replies: each group of sends at its slowest, and a
    margin. RQ's default (180 s) would cut a job of 256 short if every send timed out."""
    groups = -(-replies // at_once)
    return groups * GROUP_WORST_SECONDS + JOB_MARGIN_SECONDS


def enqueue_replies(rt: runtime.Runtime, outbound_ids: Sequence[int], delay: int = 0) -> None:
    """Queue the send jobs for replies already committed (never before the commit)."""
    queue = rt.queue(REPLIES_QUEUE)
    at_once = rt.settings.reply_sends_at_once
    size = job_size(at_once)
    for start in range(0, len(outbound_ids), size):
        chunk = list(outbound_ids[start : start + size])
        options = {
            "retry": Retry(max=3, interval=[5, 30, 60]),
            "job_timeout": job_timeout(len(chunk), at_once),
        }
        if delay:
            queue.enqueue_in(timedelta(seconds=delay), send_replies, chunk, **options)
        else:
            queue.enqueue(send_replies, chunk, **options)


def send_replies(outbound_ids: list[int], record_every: float = RECORD_EVERY) -> dict[str, int]:
    """RQ job: send these replies, each at most once, a few at a time."""
    rt = runtime.current()
    results: dict[int, SendResult] = {}
    unrecorded: dict[int, SendResult] = {}
    unclaimed, claimed = list(outbound_ids), list[Claimed]()
    at_once = rt.settings.reply_sends_at_once
    slice_size, recorded_at = at_once, time.monotonic()
    try:
        while unclaimed or claimed:
            if not claimed:
                next_slice, unclaimed = unclaimed[:slice_size], unclaimed[slice_size:]
                claimed = _record_and_claim(rt, unrecorded, next_slice)
                unrecorded, recorded_at = {}, time.monotonic()
                continue
            group, claimed = claimed[:at_once], claimed[at_once:]
            started = time.monotonic()
            sent = _send_together(rt, group)
            slice_size = _slice_for(time.monotonic() - started, record_every, at_once)
            results.update(sent)
            unrecorded.update(sent)
            # With the slice sent, the next claim (or the end) records them in its commit.
            if claimed and time.monotonic() - recorded_at >= record_every:
                _record_and_claim(rt, unrecorded, [])
                unrecorded, recorded_at = {}, time.monotonic()
    except BaseException:
        _settle_what_was_sent(rt, unrecorded, results)
        raise
    if unrecorded:
        _record_and_claim(rt, unrecorded, [])
    _retry_later(rt, results)
    return {
        outcome.value: sum(r.outcome is outcome for r in results.values())
        for outcome in SendOutcome
    }


def _settle_what_was_sent(
    rt: runtime.Runtime, unrecorded: dict[int, SendResult], results: dict[int, SendResult]
) -> None:
    """The job is failing (a claim the database or Redis refused, RQ's timeout): keep the answers
    it has, in a commit of their own, and the backoff of the refused; its retry does the rest.
    A failure here is logged, not raised over the one that ended the job."""
    try:
        if unrecorded:
            _record_and_claim(rt, unrecorded, [])
        _retry_later(rt, results)
    except Exception:
        log.exception("reply job failing: %d answers could not be recorded", len(unrecorded))


def _slice_for(group_seconds: float, record_every: float, at_once: int) -> int:
    """How many replies to claim next: as many as are sent in `record_every` at the pace of the
    last group, in whole groups. A worker killed mid-job leaves its claimed replies `sending`,
    never to be sent (the sweep marks them `unknown`); the ones it had not claimed are still
    `queued`, and its job's retry or the sweep sends them. So a claim covers a short time, and
    at most SLICE_GROUPS groups: answered within the sweep's wait even if every send timed out."""
    groups = record_every / group_seconds if group_seconds > 0 else SLICE_GROUPS
    return at_once * max(1, min(SLICE_GROUPS, int(groups)))


def _record_and_claim(
    rt: runtime.Runtime, answers: dict[int, SendResult], outbound_ids: list[int]
) -> list[Claimed]:
    """Record these answers and claim these replies, in one commit; then apply any delivery
    report that came before the answers were recorded.

    If Redis fails while the claim counts the hourly cap, the answers are still committed and
    nothing is claimed; the error then fails the job, and its retry claims the rest.
    """
    claimed: list[Claimed] = []
    failure: RedisError | None = None
    with transaction(rt.sessions) as session:
        if answers:
            _write_answers(session, answers)
        if outbound_ids:
            try:
                claimed = _claim(rt, session, outbound_ids)
            except RedisError as error:  # raised before the claim changed a row
                failure = error
    if answers:
        _apply_early_reports(rt, answers)
    if failure is not None:
        raise failure
    return claimed


def _claim(rt: runtime.Runtime, session: Session, outbound_ids: list[int]) -> list[Claimed]:
    """(id, provider, recipient, body) of each reply this job now owns (queued -> sending).

    The rest of the rows it found are settled here for good: `blocked` (a country replies may
    not go to) or `capped` (too many replies to that number this hour). The cap is counted in
    Redis before any row changes, so if Redis fails nothing is claimed.
    """
    # Core on the session's connection: these are rows, not objects the session tracks.
    connection, c = session.connection(), OUTBOUND.c
    # By the key, one probe a reply: a backlog of queued replies at a peak is exactly when a
    # plan that walks every queued row to find a job's hundred would hurt (test_plans.py).
    columns = (c.id, c.provider, c.recipient_sealed, c.body_sealed)
    queued = by_unique_key(session, columns, c.id, outbound_ids, c.status == "queued", lock="skip")
    rows = connection.execute(queued).all()
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


def _send_together(rt: runtime.Runtime, group: list[Claimed]) -> dict[int, SendResult]:
    """Send a group at once: each send waits on the provider's answer, not on the CPU."""
    if len(group) == 1:
        return {group[0][0]: _send_one(rt, group[0])}
    answers = _senders(rt.settings.reply_sends_at_once).map(lambda row: _send_one(rt, row), group)
    return {row[0]: result for row, result in zip(group, answers, strict=True)}


def _send_one(rt: runtime.Runtime, row: Claimed) -> SendResult:
    """One reply's send; an error no adapter turned into an answer may have sent it."""
    row_id, provider, recipient, body = row
    try:
        return send_via(rt.settings, provider, recipient, body)
    except Exception as error:
        log.exception("reply %d: the send failed unexpectedly; never sent again", row_id)
        return SendResult(SendOutcome.UNKNOWN, error_code=type(error).__name__[:ERROR_CODE_CHARS])


@functools.cache
def _senders(count: int) -> ThreadPoolExecutor:
    """This process's sending threads, made on first use."""
    return ThreadPoolExecutor(count, thread_name_prefix="send")


def _attempt(status: str) -> dict[str, object]:
    """Only a reply that will be sent counts an attempt."""
    return {"attempts": OUTBOUND.c.attempts + 1} if status == reply_limits.SEND else {}


def _write_answers(session: Session, results: dict[int, SendResult]) -> None:
    """Each answer onto its row, unless the row moved on (a delivery report came first)."""
    rows = [
        {"id": row_id, "status": "queued" if r.outcome is SendOutcome.RETRY else _status(r),
         "provider_sid": r.provider_sid, "error_code": r.error_code}
        for row_id, r in results.items()
    ]  # fmt: skip
    sending = {"status": "sending"}
    update_rows(session, OutboundRow, rows, same={"updated_at": utcnow()}, only_if=sending)


def _apply_early_reports(rt: runtime.Runtime, results: dict[int, SendResult]) -> None:
    """Delivery reports parked before these answers were committed (delivery_reports.py); only
    after the commit, since a report parked from then on finds its row."""
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
