"""The web's look-up sessions: no transaction around a read on PostgreSQL, and nothing of that
left on the connection for the writes that use it next."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.models import InboundRow

IDLE, INTRANS = 0, 2  # libpq's PQtransactionStatus


def _postgres_only(app: Flask) -> None:
    if app.extensions["consulta"].dialect != "postgresql":
        pytest.skip("SQLite's BEGIN is a function call, not a round trip: it keeps its sessions")


@pytest.mark.parametrize(
    ("sessions", "status_after_a_read"),
    [("lookups", IDLE), ("sessions", INTRANS)],
    ids=["a look-up reads outside any transaction", "an ordinary session reads inside one"],
)
def test_where_a_read_runs(app: Flask, sessions: str, status_after_a_read: int) -> None:
    _postgres_only(app)
    with getattr(app.extensions["consulta"], sessions)() as session:
        session.scalar(select(func.count()).select_from(InboundRow))
        raw = session.connection().connection.dbapi_connection
        assert raw.info.transaction_status == status_after_a_read


def test_a_connection_a_look_up_used_goes_back_to_the_pool_out_of_autocommit(app: Flask) -> None:
    _postgres_only(app)
    state = app.extensions["consulta"]
    with state.lookups() as session:
        session.scalar(select(func.count()).select_from(InboundRow))
        raw = session.connection().connection.dbapi_connection
        assert raw.autocommit is True
    assert raw.autocommit is False


def test_a_write_after_a_look_up_on_the_same_connection_is_still_rolled_back(app: Flask) -> None:
    """The pool hands the look-up's connection on; a failed transaction must leave nothing."""
    _postgres_only(app)
    state = app.extensions["consulta"]
    for _ in range(state.engine.pool.size() + 1):  # every pooled connection, one at least twice
        with state.lookups() as session:
            session.scalar(select(func.count()).select_from(InboundRow))
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
