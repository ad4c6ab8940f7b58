"""A batch's look-ups and updates read only the rows they ask for, whatever the planner knows.

The tables an intake job reads and writes grow from nothing while a vote runs, and autovacuum
analyses them a minute or more behind. With no statistics, or statistics from when the table was
empty, or from before this consultation opened, PostgreSQL's planner believed that few rows
matched and chose plans that read every row of the consultation for every batch: 7 to 24 ms a
batch and growing with each vote (docs/performance.md, runs 83 to 85). These run the gateway's
own statements against a table in each of those states, under the same connection settings as
the workers, and read back from EXPLAIN ANALYZE how many rows each really touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.orm import Session, sessionmaker

from bench.ussd import consultation_row
from gateway import ballot_box, privacy, results
from gateway.db import make_engine, make_sessionmaker
from gateway.migrate import upgrade
from gateway.models import ConsultationRow, InboundRow, OutboundRow
from gateway.settings import Settings
from gateway.sql import update_rows
from tests.conftest import SECRET
from tests.support import services
from workers import replies as replies_worker
from workers import runtime

ROWS = 20_000  # far more than a batch: a plan that reads them all is plain in the count
BATCH = 100
PUT_BACK = "/* put back */"  # a test's own statement, not measured
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine() -> Iterator[Engine]:
    """A fresh database each time: what the planner knows is the point of each test."""
    with services.postgres_server() as server, services.scratch_database(server) as url:
        upgrade(url)
        made = make_engine(url, short_queries=True)  # as the workers connect
        yield made
        made.dispose()


@pytest.fixture
def rt(engine: Engine, redis_url: str, redis: Redis) -> runtime.Runtime:
    """A replies worker's runtime on this test's own database."""
    settings = Settings(
        database_url="postgresql://unused", secret=SECRET, redis_url=redis_url,
        reply_cap_per_hour=0,  # one number for the whole backlog: no hourly cap here
    )  # fmt: skip
    return runtime.Runtime(settings, engine, make_sessionmaker(engine), redis)


def sql(engine: Engine, *statements: str, **params: Any) -> None:
    with engine.begin() as db:
        for statement in statements:
            db.execute(text(statement), params)


def consultations_and_people(engine: Engine, consultations: int) -> None:
    """Consultations 1..n, one circuit each, and ROWS people in each."""
    for c in range(1, consultations + 1):
        with engine.begin() as db:
            db.execute(
                insert(ConsultationRow), [consultation_row(NOW) | {"id": c, "slug": f"c{c}"}]
            )
        sql(
            engine,
            "INSERT INTO circuits (id, consultation_id, code, name) VALUES (:c, :c, 'C', 'C')",
            "INSERT INTO people (consultation_id, national_id_digest, national_id_sealed,"
            " circuit_id, birth_date) SELECT :c, 'd' || :c || '-' || g, 's', :c, :born"
            " FROM generate_series(1, :rows) g",
            c=c,
            born=date(1990, 1, 1), rows=ROWS,
        )  # fmt: skip


def participations(engine: Engine, consultation: int) -> None:
    """Everyone in the consultation has voted (one sealed receipt and time for them all)."""
    sql(
        engine,
        "INSERT INTO participations (consultation_id, person_id, receipt_sealed,"
        " voted_at_sealed, channel, revision) SELECT :c, id, :receipt, :at, 'sms', 0 FROM people"
        " WHERE consultation_id = :c",
        c=consultation,
        receipt=privacy.keys().seal("K7M2P9QX"),
        at=privacy.keys().seal(NOW.isoformat()),
    )


def replies(engine: Engine) -> None:
    """The batch's replies (the first BATCH) being sent; the rest sent long ago."""
    sql(
        engine,
        "INSERT INTO outbound_messages (part, encoding, segments, provider, recipient_sealed,"
        " body_sealed, status, attempts, created_at, updated_at) SELECT 1, 'gsm7', 1, 'twilio',"
        " 'x', 'y', CASE WHEN g <= :batch THEN 'sending' ELSE 'sent' END, 1, :now, :now"
        " FROM generate_series(1, :rows) g",
        now=NOW, rows=ROWS, batch=BATCH,
    )  # fmt: skip


def rows_touched(engine: Engine, table: str, run: Callable[[Session], None]) -> int:
    """How many rows of `table` (and of its indexes) the statements `run` makes really read.

    Each statement on the table is explained with ANALYZE on the same connection, with the same
    parameters, right after it runs: an UPDATE then runs twice, to the same values.
    """
    touched = 0

    def explain(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        nonlocal touched
        if table in statement and PUT_BACK not in statement:
            with cursor.connection.cursor() as explaining:  # the statement's rows stay unread
                explaining.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
                touched += _read(explaining.fetchone()[0][0]["Plan"], table)

    event.listen(engine, "after_cursor_execute", explain)
    try:
        sessions: sessionmaker[Session] = make_sessionmaker(engine)
        with sessions() as session, session.begin():
            run(session)
    finally:
        event.remove(engine, "after_cursor_execute", explain)
    return touched


def _read(node: dict[str, Any], table: str) -> int:
    """Rows a plan node on the table produced or threw away, loops included, and its children's."""
    mine = node.get("Relation Name") == table or node.get("Index Name", "").startswith(table)
    read = 0
    if mine:
        loops = node.get("Actual Loops", 1)
        kept = node.get("Actual Rows", 0)
        dropped = node.get("Rows Removed by Filter", 0) + node.get(
            "Rows Removed by Index Recheck", 0
        )
        read = (kept + dropped) * loops
    return read + sum(_read(child, table) for child in node.get("Plans", []))


def never_analysed(engine: Engine) -> None:
    """As a fresh database is, before autovacuum first comes round."""


def analysed_while_empty(engine: Engine) -> None:
    sql(engine, "ANALYZE participations", "ANALYZE outbound_messages", "ANALYZE inbound_messages")


def analysed_before_this_consultation(engine: Engine) -> None:
    """The statistics know consultation 1 only: the second round opens with them."""
    participations(engine, 1)
    sql(engine, "ANALYZE participations")


STATES = [
    pytest.param(never_analysed, 1, id="a table the planner never analysed"),
    pytest.param(analysed_while_empty, 1, id="a table analysed while it was empty"),
    pytest.param(analysed_before_this_consultation, 2, id="a consultation the statistics predate"),
]


@pytest.mark.parametrize(("state", "consultation"), STATES)
def test_a_batch_finds_its_standing_votes_by_the_key_alone(
    engine: Engine, state: Callable[[Engine], None], consultation: int
) -> None:
    consultations_and_people(engine, 2)
    state(engine)
    participations(engine, consultation)  # the vote runs: the table grows after the statistics
    wanted = list(range((consultation - 1) * ROWS + 1, (consultation - 1) * ROWS + 1 + BATCH))
    found: dict[int, Any] = {}

    def look_up(session: Session) -> None:
        for _ in range(12):  # past psycopg's prepare threshold and the server's generic plan
            found.update(ballot_box.standing_votes(session, consultation, wanted))

    read = rows_touched(engine, "participations", look_up)
    assert sorted(found) == wanted
    assert read <= 12 * 2 * BATCH, f"read {read} rows of participations for 12 x {BATCH}"


@pytest.mark.parametrize(("state", "consultation"), STATES)
def test_a_batch_under_last_locks_its_standing_votes_one_key_after_another_in_order(
    engine: Engine, state: Callable[[Engine], None], consultation: int
) -> None:
    """Two batches lock the same people in one order only if each probe locks its row as the
    sorted keys come: the unnest scanned in order, each key's row locked under it. A sort, a hash
    or a merge above the lock would lock in some other order."""
    consultations_and_people(engine, 2)
    state(engine)
    participations(engine, consultation)
    first = (consultation - 1) * ROWS + 1
    wanted = list(range(first + BATCH - 1, first - 1, -1))  # handed over in reverse
    found: dict[int, Any] = {}

    def look_up() -> None:
        with make_sessionmaker(engine)() as session, session.begin():
            found.update(ballot_box.standing_votes(session, consultation, wanted, lock=True))

    nodes = plan_nodes(engine, "participations", look_up)
    assert sorted(found) == sorted(wanted)
    assert nodes[:2] == ["Nested Loop", "Function Scan"], nodes
    assert "LockRows" in nodes[2:], nodes
    assert not {"Sort", "Hash Join", "Merge Join", "Hash"} & set(nodes), nodes


def messages(engine: Engine) -> None:
    """The batch's messages (the first BATCH) pending; the rest judged long ago."""
    sql(
        engine,
        "INSERT INTO inbound_messages (provider, external_id, channel, sender_sealed, recipient,"
        " body_sealed, received_at, enqueued_at, status) SELECT 'twilio', 'SM' || g, 'sms', 'x',"
        " '+1', 'y', :now, :now, CASE WHEN g <= :batch THEN 'pending' ELSE 'done' END"
        " FROM generate_series(1, :rows) g",
        now=NOW, rows=ROWS, batch=BATCH,
    )  # fmt: skip


def judge(session: Session) -> None:
    """The intake job's own update: the batch marked done, each with its outcome."""
    done = [{"id": i, "outcome": "confirmed", "consultation_id": None} for i in range(1, 101)]
    update_rows(session, InboundRow, done, same={"status": "done", "processed_at": NOW})


def record(session: Session) -> None:
    """The replies worker's own update: what the provider answered, if still `sending`."""
    sent = [{"id": i, "status": "sent", "provider_sid": f"SM{i}"} for i in range(1, 101)]
    update_rows(session, OutboundRow, sent, only_if={"status": "sending"})


UPDATES = [
    pytest.param(never_analysed, messages, judge, "inbound_messages", "pending",
                 id="messages judged, in a table the planner never analysed"),
    pytest.param(analysed_while_empty, messages, judge, "inbound_messages", "pending",
                 id="messages judged, in a table analysed while it was empty"),
    pytest.param(never_analysed, replies, record, "outbound_messages", "sending",
                 id="replies recorded, in a table the planner never analysed"),
    pytest.param(analysed_while_empty, replies, record, "outbound_messages", "sending",
                 id="replies recorded, in a table analysed while it was empty"),
]  # fmt: skip


@pytest.mark.parametrize(("state", "fill", "update", "table", "before"), UPDATES)
def test_a_batch_is_updated_by_the_key_alone(  # noqa: PLR0913 - one row of the table
    engine: Engine,
    state: Callable[[Engine], None],
    fill: Callable[[Engine], None],
    update: Callable[[Session], None],
    table: str,
    before: str,
) -> None:
    state(engine)
    fill(engine)
    put_back = text(f"{PUT_BACK} UPDATE {table} SET status = :before WHERE id <= :n")  # noqa: S608

    def twelve_batches(session: Session) -> None:
        for _ in range(12):
            update(session)
            session.execute(put_back, {"before": before, "n": BATCH})  # for the next round

    read = rows_touched(engine, table, twelve_batches)
    assert read <= 12 * 2 * BATCH, f"read {read} rows of {table} for 12 x {BATCH}"


def backlog(engine: Engine) -> None:
    """Replies queued faster than they go out (a slow provider at a peak): ROWS of them."""
    sql(
        engine,
        "INSERT INTO outbound_messages (part, encoding, segments, provider, recipient_sealed,"
        " body_sealed, status, attempts, created_at, updated_at) SELECT 1, 'gsm7', 1, 'twilio',"
        " :to, :body, 'queued', 0, :now, :now FROM generate_series(1, :rows) g",
        to=privacy.keys().seal("+584140000001"), body=privacy.keys().seal("Voto registrado"),
        now=NOW, rows=ROWS,
    )  # fmt: skip


STATES_OF_A_BACKLOG = [
    pytest.param(never_analysed, id="a backlog the planner never analysed"),
    pytest.param(analysed_while_empty, id="a backlog in a table analysed while it was empty"),
]


@pytest.mark.parametrize("state", STATES_OF_A_BACKLOG)
def test_a_reply_job_claims_its_replies_by_the_key_alone(
    engine: Engine, state: Callable[[Engine], None], rt: runtime.Runtime
) -> None:
    state(engine)
    backlog(engine)
    wanted = list(range(ROWS - BATCH + 1, ROWS + 1))  # the newest: the last the backlog reaches
    claimed: list[Any] = []

    def claim(session: Session) -> None:
        claimed.extend(replies_worker._claim(rt, session, wanted))

    read = rows_touched(engine, "outbound_messages", claim)
    assert sorted(row[0] for row in claimed) == wanted
    # Two statements (the claim, then its update to `sending`), each reading an index entry and
    # a row a reply at most.
    assert read <= 2 * 2 * BATCH, f"read {read} rows of outbound_messages to claim {BATCH}"


def test_a_reply_another_job_holds_is_skipped_not_waited_for(
    engine: Engine, rt: runtime.Runtime
) -> None:
    backlog(engine)
    with engine.connect() as rival:
        rival.execute(text("SET lock_timeout = '5s'"))
        rival.execute(text("SELECT id FROM outbound_messages WHERE id = 2 FOR UPDATE"))
        with rt.sessions() as session, session.begin():
            session.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail here
            claimed = replies_worker._claim(rt, session, [1, 2, 3])
        rival.rollback()
    assert [row[0] for row in claimed] == [1, 3]


def test_a_reply_listed_twice_in_a_job_is_claimed_once(engine: Engine, rt: runtime.Runtime) -> None:
    backlog(engine)
    with rt.sessions() as session, session.begin():
        claimed = replies_worker._claim(rt, session, [5, 6, 5])
    assert [row[0] for row in claimed] == [5, 6]


def votes(engine: Engine) -> None:
    """Everyone in consultation 1 has voted, for one of six options; one in ten replaced."""
    sql(
        engine,
        "INSERT INTO options (circuit_id, number, title) SELECT 1, n, 'Option ' || n"
        " FROM generate_series(1, 6) n",
        "INSERT INTO votes (receipt, consultation_id, circuit_id, option, cast_at, replaced_at)"
        " SELECT 'R' || id, 1, 1, id % 6 + 1, :now, CASE WHEN id % 10 = 0 THEN :now END"
        " FROM people WHERE consultation_id = 1",
        now=NOW.replace(tzinfo=None),
    )  # fmt: skip


def plan_nodes(engine: Engine, table: str, run: Callable[[], None]) -> list[str]:
    """The node types of every plan on `table` that `run` makes, from EXPLAIN on its own
    connection with the same parameters, right after each statement runs."""
    nodes: list[str] = []

    def explain(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if f"FROM {table}" in statement:
            with cursor.connection.cursor() as explaining:
                explaining.execute("EXPLAIN (FORMAT JSON) " + statement, params)
                nodes.extend(_node_types(explaining.fetchone()[0][0]["Plan"]))

    event.listen(engine, "after_cursor_execute", explain)
    try:
        run()
    finally:
        event.remove(engine, "after_cursor_execute", explain)
    return nodes


def _node_types(node: dict[str, Any]) -> list[str]:
    return [node["Node Type"], *(t for child in node.get("Plans", []) for t in _node_types(child))]


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(never_analysed, id="votes the planner never analysed"),
        pytest.param(lambda e: sql(e, "ANALYZE votes"), id="votes analysed while there were none"),
    ],
)
def test_the_results_count_every_vote_by_hashing_whatever_the_planner_believes(
    engine: Engine, state: Callable[[Engine], None]
) -> None:
    consultations_and_people(engine, 1)
    state(engine)
    votes(engine)  # the vote runs: the table fills after the statistics
    sessions: sessionmaker[Session] = make_sessionmaker(engine)
    counted: list[results.ResultsReport] = []
    nodes = plan_nodes(engine, "votes", lambda: counted.append(results.results(sessions, "c1")))
    assert sum(c.votes for c in counted[0].circuits) == ROWS - ROWS // 10
    assert "Aggregate" in nodes, nodes
    assert "Sort" not in nodes, f"the count sorted the votes: {nodes}"
