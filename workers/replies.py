"""The reply job: each recorded reply is sent once through its provider, or kept for a person.

A reply row exists before any send. The job claims it (queued -> sending) in its own commit, so
two jobs never send the same row, and records each answer as soon as it comes. A refusal that
is sure (429, connection refused) goes back to queued with a backoff; a create that may have gone
through (5xx, timeout) is marked unknown and never resent blindly; an opt-out (Twilio's 21610,
Africa's Talking's UserInBlacklist) is final. Each reply leaves through the provider its message
came in by (`gateway.providers.registry`). Replies abroad, or past the hourly cap per number, are
never sent: they end as `blocked` or `capped` (`workers.reply_limits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from rq import Retry
from sqlalchemy import select, update

from gateway.db import transaction
from gateway.models import OutboundRow, utcnow
from gateway.providers.base import SendOutcome, SendResult
from gateway.queues import REPLIES_QUEUE
from messages.send import send_via
from workers import reply_limits, runtime

JOB_BATCH = 50  # replies per job: one claim commit, then one result commit per reply
RETRY_DELAYS = (2, 10, 30, 60, 120)  # seconds, for replies the provider refused for now


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


def send_replies(outbound_ids: list[int]) -> dict[str, int]:
    """RQ job: send these replies, each at most once."""
    rt = runtime.current()
    results: dict[int, SendResult] = {}
    for row_id, provider, recipient, body in _claim(rt, outbound_ids):
        results[row_id] = send_via(rt.settings, provider, recipient, body)
        # Recorded at once, not after the whole batch: Twilio's status callbacks for this SID
        # can arrive while the rest of the batch is still sending, and find no row without it.
        _record(rt, {row_id: results[row_id]})
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
        rows = session.execute(
            select(OutboundRow.id, OutboundRow.provider, OutboundRow.recipient, OutboundRow.body)
            .where(OutboundRow.id.in_(outbound_ids), OutboundRow.status == "queued")
            .with_for_update(skip_locked=True)
        ).all()
        verdicts = reply_limits.verdicts(rt.redis, rt.settings, [(r[0], r[2]) for r in rows])
        for status in set(verdicts.values()):
            settled = [row_id for row_id, verdict in verdicts.items() if verdict == status]
            session.execute(
                update(OutboundRow)
                .where(OutboundRow.id.in_(settled))
                .values(status=status, updated_at=utcnow(), **_attempt(status))
            )
    return [
        (row_id, provider, recipient, body)
        for row_id, provider, recipient, body in rows
        if verdicts[row_id] == reply_limits.SEND
    ]


def _attempt(status: str) -> dict[str, object]:
    """Only a reply that will be sent counts an attempt."""
    return {"attempts": OutboundRow.attempts + 1} if status == reply_limits.SEND else {}


def _record(rt: runtime.Runtime, results: dict[int, SendResult]) -> None:
    now = utcnow()
    with transaction(rt.sessions) as session:
        for row_id, result in results.items():
            status = "queued" if result.outcome is SendOutcome.RETRY else _status(result)
            session.execute(
                update(OutboundRow)
                .where(OutboundRow.id == row_id, OutboundRow.status == "sending")
                .values(
                    status=status,
                    provider_sid=result.provider_sid,
                    error_code=result.error_code,
                    updated_at=now,
                )
            )


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
