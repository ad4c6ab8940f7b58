"""The intake job: a batch of acknowledged messages becomes votes and replies, in one commit.

A batch is judged by the pure rules in `voting` and written under the database's unique
constraints, its messages marked done in the same transaction. So a job that runs twice, or two
jobs that race for the same message, change nothing the second time. The replies are enqueued
only after the commit. Messages committed by the webhook (ACK_AFTER=database) are claimed row
by row (`status = 'pending'`); messages from the Redis inbox are written once, already judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway import ballot_box, inbox
from gateway.db import transaction
from gateway.models import InboundRow, OutboundRow, utcnow
from gateway.providers.base import InboundMessage
from gateway.settings import Settings
from gateway.sql import among, insert_rows
from messages.voice import cost
from voting import rules
from workers import runtime
from workers.booth import Booth, ClaimLostError, Message
from workers.replies import enqueue_replies

NOT_STORED = 0  # the ID of a message judged before its row is written


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
        processed, reply_ids = record_judged(session, arrived, rt.settings)
    inbox.finish_batch(rt.redis, batch)
    enqueue_replies(rt, reply_ids)
    return {"arrived": len(arrived), "processed": processed, "replies": len(reply_ids)}


class AlreadyStoredError(Exception):
    """A message of the batch was stored by another job after this one looked: judge it again."""


def record_judged(
    session: Session, arrived: list[InboundMessage], settings: Settings
) -> tuple[int, list[int]]:
    """Store the batch's new messages once, already judged; (how many, their reply IDs).

    Inserting them pending and then marking them done wrote each row twice, and with it every
    index of the table. Here the messages not stored before are judged in memory and inserted
    done, from a savepoint. If one of them was stored meanwhile (the same MessageSid, delivered
    again and taken by another job at that moment), or a claim lost, the savepoint is rolled back
    and the batch is recorded pending and judged as a claimed batch is.
    """
    fresh = _not_stored(session, arrived)
    if not fresh:
        return 0, []
    try:
        with session.begin_nested():
            return len(fresh), _judge_and_insert(session, fresh, settings)
    except (AlreadyStoredError, ClaimLostError):
        messages = record_batch(session, arrived)
        return len(messages), handle_batch(session, messages, settings)


def _not_stored(session: Session, arrived: list[InboundMessage]) -> list[InboundMessage]:
    """The messages of the batch not stored yet, each once, in the order they were received."""
    unique = {(m.provider, m.external_id): m for m in arrived}
    if not unique:
        return []
    providers, external_ids = {p for p, _ in unique}, {e for _, e in unique}
    stored = session.execute(
        select(InboundRow.provider, InboundRow.external_id).where(
            among(session, InboundRow.provider, providers),
            among(session, InboundRow.external_id, external_ids),
        )
    )
    for provider, external_id in stored:
        unique.pop((provider, external_id), None)
    return sorted(unique.values(), key=lambda m: m.received_at)


def _judge_and_insert(
    session: Session, fresh: list[InboundMessage], settings: Settings
) -> list[int]:
    now = utcnow()
    messages = [_message(NOT_STORED, m) for m in fresh]
    judged = _judge(session, messages, settings, defer_claims=True)
    rows = [_inbound_row(m, now) | _done(j, now) for m, j in zip(fresh, judged, strict=True)]
    keys = (InboundRow.provider, InboundRow.external_id, InboundRow.id)
    ids = {(p, e): i for p, e, i in insert_rows(session, InboundRow, rows, keys, True)}
    if len(ids) < len(rows):
        raise AlreadyStoredError
    inbound_ids = [ids[(m.provider, m.external_id)] for m in fresh]
    return _insert_replies(session, zip(inbound_ids, judged, strict=True), now)


def record_batch(session: Session, arrived: list[InboundMessage]) -> list[Message]:
    """Insert the messages not seen before, in one statement; those that were new, in order.

    The rows this inserts are this transaction's own until it commits: nobody else can judge
    them, so they need no second read and no lock.
    """
    unique = {(m.provider, m.external_id): m for m in arrived}
    if not unique:
        return []
    now = utcnow()
    rows = [_inbound_row(m, now) for m in unique.values()]
    keys = (InboundRow.id, InboundRow.provider, InboundRow.external_id)
    new = [
        _message(row_id, unique[(provider, external_id)])
        for row_id, provider, external_id in insert_rows(
            session, InboundRow, rows, returning=keys, ignore_conflicts=True
        )
    ]
    return sorted(new, key=lambda m: (m.received_at, m.id))


def _inbound_row(m: InboundMessage, now: datetime) -> dict[str, object]:
    return {
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


def handle_batch(session: Session, messages: list[Message], settings: Settings) -> list[int]:
    """Judge each message in order, mark it done, and record its reply; the reply IDs.

    First with the first votes claimed together (one statement), from a savepoint; if another
    transaction counted one of those people first, again from the savepoint, one claim at a time.
    """
    if not messages:
        return []
    try:
        with session.begin_nested():
            return _judge_batch(session, messages, settings, defer_claims=True)
    except ClaimLostError:
        return _judge_batch(session, messages, settings, defer_claims=False)


@dataclass(frozen=True)
class Judged:
    message: Message
    consultation_id: int | None  # the consultation open when it was received, if any
    outcome: str
    replies: tuple[str, ...]  # empty when we may not reply to the sender


def _judge(
    session: Session, messages: list[Message], settings: Settings, defer_claims: bool
) -> list[Judged]:
    """Each message's verdict, in order, with the batch's votes written."""
    consultations = ballot_box.all_consultations(session)
    booth = Booth(session, messages, settings, defer_claims)
    judged = []
    for message in messages:
        consultation = rules.consultation_for(consultations, message.received_at)
        answer = booth.handle(message, consultation)
        texts = answer.texts if booth.may_reply(message.sender) else ()
        judged.append(
            Judged(message, consultation.id if consultation else None, answer.outcome, texts)
        )
    booth.store()
    return judged


def _judge_batch(
    session: Session, messages: list[Message], settings: Settings, defer_claims: bool
) -> list[int]:
    """Every write in a few statements: the votes, the messages marked done, the replies."""
    now = utcnow()
    judged = _judge(session, messages, settings, defer_claims)
    done = [{"id": j.message.id} | _done(j, now) for j in judged]
    session.execute(update(InboundRow), done)  # by primary key, as one executemany
    return _insert_replies(session, ((j.message.id, j) for j in judged), now)


def _done(judged: Judged, now: datetime) -> dict[str, object]:
    return {"status": "done", "outcome": judged.outcome, "processed_at": now,
            "consultation_id": judged.consultation_id}  # fmt: skip


def _insert_replies(
    session: Session, judged: Iterable[tuple[int, Judged]], now: datetime
) -> list[int]:
    replies = [
        _reply_row(inbound_id, j.message, part, text, now)
        for inbound_id, j in judged
        for part, text in enumerate(j.replies, start=1)
    ]
    if not replies:
        return []
    return list(insert_rows(session, OutboundRow, replies, returning=(OutboundRow.id,)).scalars())


def _reply_row(
    inbound_id: int, message: Message, part: int, body: str, now: datetime
) -> dict[str, object]:
    billed = cost(body)
    return {
        "inbound_id": inbound_id,
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
