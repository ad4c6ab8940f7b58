"""`gateway.sql.update_rows`: many rows changed by primary key in one statement, on both databases.

On PostgreSQL the changes travel as one array per column (`UPDATE … FROM unnest(…)`), so each
column's type must still be applied to every element, and the text must not change with the
number of rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select, text

from gateway.models import InboundRow, OutboundRow
from gateway.sql import insert_rows, update_rows
from tests.integration.test_insert_rows import inbound, reply
from workers.runtime import Runtime

LATER = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def stored_inbound(rt: Runtime, count: int) -> list[int]:
    with rt.sessions() as session, session.begin():
        rows = [inbound(n) for n in range(1, count + 1)]
        return list(insert_rows(session, InboundRow, rows, (InboundRow.id,)).scalars())


def test_each_row_gets_its_own_values_and_the_shared_ones(rt: Runtime) -> None:
    ids = stored_inbound(rt, 3)
    changes = [
        {"id": ids[0], "outcome": "confirmed", "consultation_id": None},
        {"id": ids[2], "outcome": "invalid", "consultation_id": None},
    ]
    with rt.sessions() as session, session.begin():
        update_rows(session, InboundRow, changes, same={"status": "done", "processed_at": LATER})
    with rt.sessions() as session:
        rows = session.execute(
            select(InboundRow.status, InboundRow.outcome, InboundRow.processed_at)
            .order_by(InboundRow.id)
        ).all()  # fmt: skip
    assert rows == [
        ("done", "confirmed", LATER),
        ("pending", None, None),
        ("done", "invalid", LATER),
    ]


def test_a_row_that_fails_the_condition_is_left_as_it_was(rt: Runtime) -> None:
    (inbound_id,) = stored_inbound(rt, 1)
    with rt.sessions() as session, session.begin():
        outbound = [
            reply(inbound_id) | {"part": part, "status": s}
            for part, s in ((1, "sending"), (2, "queued"))
        ]
        ids = list(insert_rows(session, OutboundRow, outbound, (OutboundRow.id,)).scalars())
    changes = [{"id": i, "status": "sent", "provider_sid": f"SM{i}"} for i in ids]
    with rt.sessions() as session, session.begin():
        update_rows(session, OutboundRow, changes, only_if={"status": "sending"})
    with rt.sessions() as session:
        rows = session.execute(
            select(OutboundRow.status, OutboundRow.provider_sid).order_by(OutboundRow.id)
        ).all()
    assert rows == [("sent", f"SM{ids[0]}"), ("queued", None)]


def test_a_sealed_column_is_sealed_at_rest_and_read_back_clear(rt: Runtime) -> None:
    (inbound_id,) = stored_inbound(rt, 1)
    with rt.sessions() as session, session.begin():
        update_rows(session, InboundRow, [{"id": inbound_id, "sender": "+584149999999"}])
    with rt.sessions() as session:
        assert session.scalar(select(InboundRow.sender)) == "+584149999999"
        at_rest = session.execute(text("SELECT sender_sealed FROM inbound_messages")).scalar()
    assert "+58414" not in at_rest


def test_the_statement_text_is_the_same_for_every_batch_size(rt: Runtime) -> None:
    ids = stored_inbound(rt, 158)
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", note)
    try:
        start = 0
        for size in (1, 7, 150):
            with rt.sessions() as session, session.begin():
                rows = [{"id": i, "outcome": f"batch {size}"} for i in ids[start : start + size]]
                update_rows(session, InboundRow, rows, same={"status": "done"})
            start += size
    finally:
        event.remove(rt.engine, "before_cursor_execute", note)
    updates = [s for s in seen if s.startswith("UPDATE")]
    if rt.engine.dialect.name == "postgresql":
        assert len(updates) == 3, updates
        assert len(set(updates)) == 1, updates
    with rt.sessions() as session:
        outcomes = session.scalars(select(InboundRow.outcome).where(InboundRow.status == "done"))
        assert sorted(set(outcomes)) == ["batch 1", "batch 150", "batch 7"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "at least one row"),
        ([{"id": 1, "outcome": "x"}, {"id": 2}], "same keys"),
    ],
    ids=["no rows at all are refused", "rows with different keys are refused"],
)
def test_rows_that_cannot_make_one_statement_are_refused(
    rt: Runtime, rows: list[dict[str, Any]], message: str
) -> None:
    with rt.sessions() as session, pytest.raises(ValueError, match=message):
        update_rows(session, InboundRow, rows)
