"""The intake job: a batch of acknowledged messages becomes votes and replies, in one commit.

A batch is claimed row by row (`status = 'pending'`), judged by the pure rules in `voting`,
written under the database's unique constraints, and marked done in the same transaction. So a
job that runs twice, or two jobs that race for the same message, change nothing the second time.
The replies are enqueued only after the commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import ballot_box, inbox
from gateway.db import transaction
from gateway.models import InboundRow, OutboundRow, utcnow
from gateway.providers.base import InboundMessage
from gateway.settings import Settings
from gateway.sql import among, insert_rows, update_rows
from messages.voice import cost
from voting import rules
from workers import runtime
from workers.booth import Booth, ClaimLostError, Message
from workers.replies import enqueue_replies


def process_inbound(inbound_ids: list[int]) -> dict[str, int]:
    """RQ job: count the votes among these messages and queue one reply for each."""
    if not isinstance(inbound_ids, list) or not all(type(i) is int for i in inbound_ids):
        raise TypeError(f"an intake job takes a list of inbound IDs, not {inbound_ids!r:.80}")
    rt = runtime.current()
    with transaction(rt.sessions) as session:
        messages = claim_pending(session, inbound_ids)
        reply_ids = handle_batch(session, messages, rt.settings)
    enqueue_replies(rt, reply_ids)
    return {"processed": len(messages), "replies": len(reply_ids)}


def process_inbox_batch(batch: str) -> dict[str, int]:
    """RQ job: write a batch from the Redis inbox to the database and judge it, in one commit.

    Run twice, the second run inserts nothing (the unique key) and so judges nothing.
    """
    rt = runtime.current()
    arrived = inbox.read_batch(rt.redis, batch)
    with transaction(rt.sessions) as session:
        messages = record_batch(session, arrived)
        reply_ids = handle_batch(session, messages, rt.settings)
    inbox.finish_batch(rt.redis, batch)
    enqueue_replies(rt, reply_ids)
    return {"arrived": len(arrived), "processed": len(messages), "replies": len(reply_ids)}


def record_batch(session: Session, arrived: list[InboundMessage]) -> list[Message]:
    """Insert the messages not seen before, in one statement; those that were new, in order.

    The rows this inserts are this transaction's own until it commits: nobody else can judge
    them, so they need no second read and no lock. They go in in key order, not arrival order:
    a message re-sent by the provider can sit in two batches that two workers write at once,
    and an insert waits for the other transaction's uncommitted row with the same key. In
    arrival order one batch could hold a key the other waits for while waiting for one the
    other holds (PostgreSQL's "deadlock detected": two in one minute of the benchmark, which
    re-sends 5% of its messages); in one order for every batch the later one just waits.
    """
    unique = {(m.provider, m.external_id): m for m in arrived}
    if not unique:
        return []
    now = utcnow()
    rows = [
        {
            "provider": m.provider,
            "external_id": m.external_id,
            "channel": m.channel,
            "sender": m.sender,
            "recipient": m.recipient,
            "body": m.body,
            "receipt": m.receipt,
            "received_at": m.received_at,
            "enqueued_at": now,
            "status": "pending",
        }
        for _, m in sorted(unique.items())
    ]
    keys = (InboundRow.id, InboundRow.provider, InboundRow.external_id)
    new = [
        _message(row_id, unique[(provider, external_id)])
        for row_id, provider, external_id in insert_rows(
            session, InboundRow, rows, returning=keys, ignore_conflicts=True
        )
    ]
    return sorted(new, key=lambda m: (m.received_at, m.id))


def _message(row_id: int, m: InboundMessage) -> Message:
    return Message(row_id, m.provider, m.channel, m.sender, m.body, m.receipt, m.received_at)


def claim_pending(session: Session, inbound_ids: Sequence[int]) -> list[Message]:
    """The still-pending messages among these, locked; a concurrent job skips them."""
    query = (
        select(
            InboundRow.id,
            InboundRow.provider,
            InboundRow.channel,
            InboundRow.sender,
            InboundRow.body,
            InboundRow.receipt,
            InboundRow.received_at,
        )  # fmt: skip
        .where(among(session, InboundRow.id, inbound_ids), InboundRow.status == "pending")
        .order_by(InboundRow.received_at, InboundRow.id)
        .with_for_update(skip_locked=True)
    )
    return [Message(*row) for row in session.execute(query)]


# How many times a batch is judged with its claims together before it is judged one claim at a
# time. A claim loses only to a rival that has committed (the insert waits for it), so the next
# judging reads the rival's vote and does not claim that person again: a second attempt loses
# only to yet another rival, for another person, in between.
TOGETHER_ATTEMPTS = 3


def handle_batch(session: Session, messages: list[Message], settings: Settings) -> list[int]:
    """Judge each message in order, mark it done, and record its reply; the reply IDs.

    The first votes are claimed together (one statement, in key order), from a savepoint; if
    another transaction counted one of those people first, the batch is judged again from the
    savepoint, the same way, up to TOGETHER_ATTEMPTS times, and then one claim at a time. Claims
    made together take their keys in one order in every batch, so two batches racing for the same
    voters wait for each other; one at a time, in message order, they could deadlock.
    """
    if not messages:
        return []
    for _ in range(TOGETHER_ATTEMPTS):
        try:
            with session.begin_nested():
                return _judge_batch(session, messages, settings, defer_claims=True)
        except ClaimLostError:
            continue
    return _judge_batch(session, messages, settings, defer_claims=False)


def _judge_batch(
    session: Session, messages: list[Message], settings: Settings, defer_claims: bool
) -> list[int]:
    """Every write in a few statements: the votes, the messages marked done, the replies."""
    consultations = ballot_box.all_consultations(session)
    booth = Booth(session, messages, settings, defer_claims)
    spoken_to = [rules.consultation_for(consultations, m.received_at) for m in messages]
    booth.prefetch(c for c in spoken_to if c is not None)
    now = utcnow()
    done: list[dict[str, object]] = []
    replies: list[dict[str, object]] = []
    for message, consultation in zip(messages, spoken_to, strict=True):
        answer = booth.handle(message, consultation)
        done.append(
            {"id": message.id, "outcome": answer.outcome,
             "consultation_id": consultation.id if consultation else None}
        )  # fmt: skip
        if booth.may_reply(message.sender):
            replies += [
                _reply_row(message, part, text, now)
                for part, text in enumerate(answer.texts, start=1)
            ]
    booth.store()
    update_rows(session, InboundRow, done, same={"status": "done", "processed_at": now})
    if not replies:
        return []
    return list(insert_rows(session, OutboundRow, replies, returning=(OutboundRow.id,)).scalars())


def _reply_row(message: Message, part: int, body: str, now: datetime) -> dict[str, object]:
    billed = cost(body)
    return {
        "inbound_id": message.id,
        "part": part,
        "encoding": billed.encoding,
        "segments": billed.segments,
        "provider": message.provider,
        "recipient": message.sender,
        "body": body,
        "status": "queued",
        "created_at": now,
        "updated_at": now,
    }
