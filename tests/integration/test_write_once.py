"""A batch from the Redis inbox is written once: each message inserted already judged and done.

The job looks up which of its messages are stored already, judges the rest in memory, and
inserts them with their outcome. If another job stores one of them in between (the same
MessageSid delivered twice, both copies taken at once), the insert finds it, and the batch is
judged again the claimed way: recorded pending, then judged. Nothing is judged twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select

from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow
from gateway.providers.base import InboundMessage
from gateway.settings import Settings
from tests.support.factories import seed
from tests.support.twilio_requests import message_sid
from workers import intake
from workers.runtime import Runtime

ANA, BETO, CARLA = "+584141234567", "+584141234568", "+584141234569"
GATEWAY = "+582125550000"
PEOPLE = [
    ("V10000001", "C1", date(1990, 1, 1), [ANA]),
    ("V10000002", "C1", date(1990, 1, 1), [BETO]),
    ("V10000003", "C1", date(1990, 1, 1), [CARLA]),
]
INSERT_INBOUND = "INSERT INTO inbound_messages"


def arrived(*senders_and_bodies: tuple[str, str]) -> list[InboundMessage]:
    now = datetime.now(UTC)
    return [
        InboundMessage("twilio", message_sid(), sender, GATEWAY, body, now)
        for sender, body in senders_and_bodies
    ]


def judge(rt: Runtime, settings: Settings, batch: list[InboundMessage]) -> tuple[int, list[int]]:
    with rt.sessions() as session, session.begin():
        return intake.record_judged(session, batch, settings)


def count(rt: Runtime, table: type, *where: Any) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(table).where(*where)) or 0


@contextmanager
def statements_seen(rt: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(rt.engine, "before_cursor_execute", note)


@contextmanager
def rival_stores_first(rt: Runtime, message: InboundMessage) -> Iterator[list[str]]:
    """Just before the batch's first insert of messages, another job commits `message`."""
    done: list[str] = []

    def interpose(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if done or not statement.startswith(INSERT_INBOUND):
            return
        done.append(message.external_id)
        with rt.sessions() as rival, rival.begin():
            rival.add(
                InboundRow(
                    provider=message.provider, external_id=message.external_id,
                    channel="sms", sender=message.sender, recipient=message.recipient,
                    body=message.body, received_at=message.received_at,
                    enqueued_at=message.received_at, status="pending",
                )
            )  # fmt: skip

    event.listen(rt.engine, "before_cursor_execute", interpose)
    try:
        yield done
    finally:
        event.remove(rt.engine, "before_cursor_execute", interpose)


def test_each_message_is_inserted_done_and_never_updated(rt: Runtime, settings: Settings) -> None:
    seed(rt.sessions, people=PEOPLE)
    batch = arrived((ANA, "VOTO 1"), (BETO, "VOTO 2"), (CARLA, "hola"))
    with statements_seen(rt) as seen:
        processed, replies = judge(rt, settings, batch)
    assert (processed, len(replies)) == (3, 3)
    assert sum(s.startswith(INSERT_INBOUND) for s in seen) == 1
    assert not [s for s in seen if s.startswith("UPDATE inbound_messages")]
    with rt.sessions() as session:
        stored = session.execute(select(InboundRow.status, InboundRow.outcome)).all()
    assert sorted(stored) == [
        ("done", "confirmed"),
        ("done", "confirmed"),
        ("done", "unrecognised"),
    ]
    assert count(rt, OutboundRow) == 3


def test_a_message_stored_before_is_neither_judged_nor_answered_again(
    rt: Runtime, settings: Settings
) -> None:
    seed(rt.sessions, people=PEOPLE)
    first = arrived((ANA, "VOTO 1"))
    judge(rt, settings, first)
    processed, replies = judge(rt, settings, [*first, *arrived((BETO, "VOTO 2"))])
    assert (processed, len(replies)) == (1, 1)
    assert (count(rt, InboundRow), count(rt, VoteRow), count(rt, OutboundRow)) == (2, 2, 2)


def test_the_same_message_twice_in_one_batch_is_written_once(
    rt: Runtime, settings: Settings
) -> None:
    seed(rt.sessions, people=PEOPLE)
    [message] = arrived((ANA, "VOTO 1"))
    processed, _ = judge(rt, settings, [message, message])
    assert processed == 1
    assert (count(rt, InboundRow), count(rt, VoteRow), count(rt, OutboundRow)) == (1, 1, 1)


def test_a_message_another_job_stores_meanwhile_is_left_to_that_job(
    rt: Runtime, settings: Settings
) -> None:
    if rt.engine.dialect.name == "sqlite":
        pytest.skip("SQLite takes one writer at a time: no rival can commit mid-batch")
    seed(rt.sessions, people=PEOPLE)
    batch = arrived((ANA, "VOTO 1"), (BETO, "VOTO 2"), (CARLA, "VOTO 3"))
    with rival_stores_first(rt, batch[1]) as rivals:
        processed, replies = judge(rt, settings, batch)
    assert rivals == [batch[1].external_id]
    # Judged again the claimed way: ANA and CARLA counted once; BETO's copy is the rival's.
    assert (processed, len(replies)) == (2, 2)
    assert count(rt, InboundRow) == 3
    assert count(rt, InboundRow, InboundRow.status == "pending") == 1
    assert count(rt, ParticipationRow) == count(rt, VoteRow) == 2
    assert count(rt, OutboundRow) == 2
