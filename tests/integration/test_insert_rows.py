"""`gateway.sql.insert_rows`: many rows in one statement, the same on PostgreSQL and SQLite.

On PostgreSQL the rows travel as one array per column (`INSERT … SELECT * FROM unnest(…)`), so
each column's type must still be applied to every element: sealed columns sealed, times in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, text

from gateway.models import InboundRow, OutboundRow
from gateway.sql import insert_rows
from workers.runtime import Runtime

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def inbound(n: int, sid: str | None = None) -> dict[str, object]:
    return {
        "provider": "twilio", "external_id": sid or f"SM{n:032d}", "channel": "sms",
        "sender": f"+58414000{n:04d}", "recipient": "+582125550000", "body": f"VOTO {n}",
        "receipt": None, "received_at": AT + timedelta(seconds=n), "enqueued_at": AT,
        "status": "pending",
    }  # fmt: skip


def reply(inbound_id: int) -> dict[str, object]:
    return {"inbound_id": inbound_id, "provider": "twilio", "recipient": "+584140000001",
            "body": "Voto registrado", "created_at": AT, "updated_at": AT}  # fmt: skip


def test_rows_come_back_in_order_with_their_values_sealed_and_read_back_clear(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        keys = (InboundRow.id, InboundRow.external_id)
        got = insert_rows(session, InboundRow, [inbound(n) for n in range(1, 4)], keys).all()
    assert [sid for _id, sid in got] == [f"SM{n:032d}" for n in range(1, 4)]
    with rt.sessions() as session:
        rows = session.scalars(select(InboundRow).order_by(InboundRow.id)).all()
        stored = session.execute(text("SELECT sender_sealed FROM inbound_messages")).scalars()
        assert all(not value.startswith("+58") for value in stored)  # sealed at rest
    assert [(r.sender, r.body, r.received_at) for r in rows] == [
        (f"+58414000{n:04d}", f"VOTO {n}", AT + timedelta(seconds=n)) for n in range(1, 4)
    ]


def test_conflicting_rows_are_skipped_and_only_the_new_ones_returned(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        insert_rows(session, InboundRow, [inbound(1)])
    with rt.sessions() as session, session.begin():
        rows = [inbound(1), inbound(2)]
        keys = (InboundRow.external_id,)
        got = insert_rows(session, InboundRow, rows, keys, ignore_conflicts=True).scalars().all()
    assert got == [f"SM{2:032d}"]


def test_a_conflict_is_an_error_unless_conflicts_are_ignored(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        insert_rows(session, InboundRow, [inbound(1)])
    with (
        pytest.raises(Exception, match="(?i)unique|duplicate"),
        rt.sessions() as session,
        session.begin(),
    ):
        insert_rows(session, InboundRow, [inbound(1)])


@pytest.mark.parametrize(
    ("column", "expected"),
    [("part", 1), ("encoding", "GSM-7"), ("segments", 1), ("status", "queued"), ("attempts", 0)],
)
def test_a_column_left_out_takes_its_default(rt: Runtime, column: str, expected: Any) -> None:
    with rt.sessions() as session, session.begin():
        [(inbound_id,)] = insert_rows(session, InboundRow, [inbound(1)], (InboundRow.id,)).all()
        insert_rows(session, OutboundRow, [reply(inbound_id)])
    with rt.sessions() as session:
        stored = session.scalars(select(OutboundRow)).one()
    assert getattr(stored, column) == expected


def test_rows_with_different_keys_are_refused(rt: Runtime) -> None:
    with rt.sessions() as session, pytest.raises(ValueError, match="same keys"):
        insert_rows(session, InboundRow, [inbound(1), inbound(2) | {"outcome": "confirmed"}])


def test_the_statement_text_is_the_same_for_every_batch_size(rt: Runtime) -> None:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", note)
    try:
        for size in (1, 7, 150):
            with rt.sessions() as session, session.begin():
                first = 1000 * size
                insert_rows(session, InboundRow, [inbound(n) for n in range(first, first + size)])
    finally:
        event.remove(rt.engine, "before_cursor_execute", note)
    inserts = [s for s in seen if s.startswith("INSERT")]
    if rt.engine.dialect.name == "postgresql":
        assert len(set(inserts)) == 1, inserts
    with rt.sessions() as session:
        assert len(session.scalars(select(InboundRow.id)).all()) == 158


def test_no_rows_at_all_are_refused(rt: Runtime) -> None:
    with rt.sessions() as session, pytest.raises(ValueError, match="at least one row"):
        insert_rows(session, InboundRow, [])


TRICKY = ['say "3"', "{3}", "back\\slash", "NULL", "", "a,b", "Votación 🙂", " spaced "]


def test_values_an_array_literal_would_have_to_escape_come_back_as_they_went_in(
    rt: Runtime,
) -> None:
    rows = [inbound(n) | {"body": body} for n, body in enumerate(TRICKY, start=1)]
    with rt.sessions() as session, session.begin():
        insert_rows(session, InboundRow, rows)
    with rt.sessions() as session:
        bodies = session.scalars(select(InboundRow.body).order_by(InboundRow.id)).all()
    assert bodies == TRICKY


def test_list_parameters_go_to_postgresql_in_its_binary_format(rt: Runtime) -> None:
    if rt.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no arrays: insert_rows is an executemany there")
    from psycopg.adapt import PyFormat, Transformer

    with rt.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        dumper = Transformer(raw).get_dumper(["+584140000001"], PyFormat.AUTO)
    assert type(dumper).__name__ == "ListBinaryDumper"
