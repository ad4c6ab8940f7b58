"""The web's look-up connections: no transaction around a read on PostgreSQL, and nothing of that
left on the connection for the writes that use it next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.app import WebState
from gateway.models import InboundRow

IDLE, INTRANS = 0, 2  # libpq's PQtransactionStatus


def _postgres_only(app: Flask) -> None:
    if app.extensions["consulta"].dialect != "postgresql":
        pytest.skip("SQLite's BEGIN is a function call, not a round trip: it keeps its sessions")


def _look_up(connection: Connection | Session) -> None:
    connection.scalar(select(func.count()).select_from(InboundRow))


def _on_a_look_up(state: WebState) -> Any:
    return state.lookups.connect()


def _in_a_session(state: WebState) -> Any:
    return state.sessions()


@pytest.mark.parametrize(
    ("open_reader", "status_after_a_read"),
    [(_on_a_look_up, IDLE), (_in_a_session, INTRANS)],
    ids=["a look-up reads outside any transaction", "an ordinary session reads inside one"],
)
def test_where_a_read_runs(
    app: Flask, open_reader: Callable[[WebState], Any], status_after_a_read: int
) -> None:
    _postgres_only(app)
    with open_reader(app.extensions["consulta"]) as reader:
        _look_up(reader)
        raw = reader.connection().connection if isinstance(reader, Session) else reader.connection
        assert raw.dbapi_connection.info.transaction_status == status_after_a_read


def test_a_connection_a_look_up_used_goes_back_to_the_pool_out_of_autocommit(app: Flask) -> None:
    _postgres_only(app)
    state = app.extensions["consulta"]
    with state.lookups.connect() as connection:
        _look_up(connection)
        raw = connection.connection.dbapi_connection
        assert raw.autocommit is True
    assert raw.autocommit is False


def test_a_write_after_a_look_up_on_the_same_connection_is_still_rolled_back(app: Flask) -> None:
    """The pool hands the look-up's connection on; a failed transaction must leave nothing."""
    _postgres_only(app)
    state = app.extensions["consulta"]
    for _ in range(state.engine.pool.size() + 1):  # every pooled connection, one at least twice
        with state.lookups.connect() as connection:
            _look_up(connection)
        with pytest.raises(RuntimeError):
            _write_then_fail(state.sessions)
    with state.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundRow)) == 0


def _write_then_fail(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        session.add(_row())
        session.flush()
        raise RuntimeError("the rest of the unit of work failed")


def _row() -> InboundRow:
    from gateway.models import utcnow

    now = utcnow()
    return InboundRow(
        provider="twilio", external_id="SM-lookup", channel="sms", sender="+584140000001",
        recipient="+584140000000", body="VOTO 1", received_at=now, enqueued_at=now,
        status="pending",
    )  # fmt: skip
