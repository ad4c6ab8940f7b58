"""Engines and sessions. Built on request by the app factory or the worker, never at import."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg.types.array import ListBinaryDumper
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def sqlalchemy_url(url: str) -> str:
    """Accept the URLs people paste: `postgres://` and `postgresql://` both mean psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# The webhook and the workers ask PostgreSQL small questions: a batch's phones, its ballots, a
# claim. A parallel plan or a JIT compile costs them more than the answer: with 1M people the
# planner sometimes sent a batch's phone look-up to parallel workers, which start a process each.
# Reports (`consulta results`) keep the server's defaults.
SHORT_QUERIES = "-c max_parallel_workers_per_gather=0 -c jit=off"


def make_engine(url: str, short_queries: bool = False) -> Engine:
    """An engine for `url`; `short_queries` for the web and workers (see SHORT_QUERIES)."""
    url = sqlalchemy_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    options = {"options": SHORT_QUERIES} if short_queries else {}
    engine = create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=options
    )
    event.listen(engine, "connect", _arrays_in_binary)
    return engine


def _arrays_in_binary(dbapi_connection: Any, _record: Any) -> None:
    """Send list parameters (a batch's columns, `= ANY(:ids)`) in PostgreSQL's binary format.

    psycopg writes a list in the text format by default, escaping and quoting every element in
    Python, and the server then parses every element back: 395 µs for 175 timestamps against
    24 in binary, and 199 against 21 for 175 strings. The last dumper registered for a type is
    the one `%s` uses.
    """
    dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers work during a write; the Python driver's own transaction handling
        # is switched off so that we can BEGIN IMMEDIATE: a writer takes the lock up front
        # instead of failing half-way when two writers meet.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def make_lookups(engine: Engine) -> Engine:
    """The engine for a web request's look-ups, which write nothing: `with lookups.connect()`.

    On PostgreSQL they run in autocommit, so a look-up costs its own queries and no more. In a
    transaction each would also pay a BEGIN and a ROLLBACK, two more round trips to a server
    that, at a peak, shares the CPUs with everything else: 4 of the 7 a USSD dial made. They are
    Core connections, not ORM sessions: a session cost more CPU than the query it ran
    (gateway/ballot_box.py). SQLite keeps its transactions: its BEGIN is a function call, not a
    round trip.
    """
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits on success, rolls back on any error."""
    with sessions() as session, session.begin():
        yield session
