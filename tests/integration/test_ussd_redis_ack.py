"""USSD votes with ACK_AFTER=redis: into the Redis inbox with the SMS, once per session.

The confirmation screen (and its receipt) is shown once the vote is in the inbox; the worker
writes it to the database with its batch. A confirmation hop the aggregator repeats must show
the receipt first given and put nothing in twice; with Redis down the vote goes to the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import event, func, select

from gateway import inbox
from gateway.models import InboundRow, VoteRow
from gateway.settings import Settings
from tests.integration.test_sms_pipeline import ANA, replies_to
from tests.integration.test_ussd import AT_SECRET, HUBTEL_SECRET, at_dial, at_hop
from tests.support.factories import seed
from tests.support.pipeline import drain
from workers.runtime import Runtime

RECEIPT = re.compile(r"Recibo ([A-Z0-9-]+)")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(
        africastalking_secret=AT_SECRET, hubtel_secret=HUBTEL_SECRET, ack_after="redis"
    )


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(rt.sessions, ballots={"C1": 5}, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])


def rows(rt: Runtime) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(InboundRow)) or 0


def receipt_on(screen: str) -> str:
    found = RECEIPT.search(screen)
    assert found, screen
    return found.group(1)


def test_the_confirmed_vote_waits_in_the_inbox_and_the_worker_stores_it_under_its_receipt(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    screens = at_dial(client, "ATr1", ANA, "1", "3", "1")
    receipt = receipt_on(screens[-1])
    assert rows(rt) == 0
    assert rt.redis.llen(inbox.INBOX) == 1
    drain(rt)
    with rt.sessions() as session:
        assert list(session.scalars(select(VoteRow.receipt))) == [receipt]
    [sms] = replies_to(rt, ANA)
    assert receipt in sms


def test_a_repeated_confirmation_hop_shows_the_first_receipt_and_puts_nothing_twice(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    first = at_dial(client, "ATr2", ANA, "1", "3", "1")[-1]
    rt.redis.delete(*rt.redis.keys("consulta:ussd:session:*"))  # as if the session was lost
    again = at_hop(client, "ATr2", ANA, "1*3*1").get_data(as_text=True)
    assert receipt_on(again) == receipt_on(first)
    assert rt.redis.llen(inbox.INBOX) == 1
    drain(rt)
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(VoteRow)) == 1


def test_with_redis_refusing_the_vote_the_database_takes_it(
    client: FlaskClient, rt: Runtime, registry: None, redis: Redis
) -> None:
    at_dial(client, "ATr3", ANA, "1", "3")
    # The inbox refuses writes (a key of the wrong type), as a Redis out of memory would.
    redis.delete(inbox.INBOX)
    redis.set(inbox.INBOX, "not a list")
    screen = at_hop(client, "ATr3", ANA, "1*3*1").get_data(as_text=True)
    assert screen.startswith("END "), screen
    assert rows(rt) == 1
    redis.delete(inbox.INBOX)
    drain(rt)
    assert receipt_on(screen) in replies_to(rt, ANA)[0]


def statements_in(client: FlaskClient, hop: Callable[[], object]) -> list[str]:
    """The SQL the web app ran for one hop."""
    engine = client.application.extensions["consulta"].engine
    ran: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *_: object) -> None:
        ran.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        hop()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return ran


def test_a_dial_reads_the_database_twice_and_the_vote_not_at_all(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    dial = statements_in(client, lambda: at_hop(client, "ATr4", ANA, ""))
    on_people = [s for s in dial if "FROM people" in s]
    assert len(on_people) == 1, dial
    assert "options" in on_people[0], dial
    reads = [s for s in dial if s.startswith("SELECT")]
    assert len(reads) == 2, dial  # the consultations, with the phone's language; the people
    at_dial(client, "ATr4", ANA, "1", "3")
    confirm = statements_in(client, lambda: at_hop(client, "ATr4", ANA, "1*3*1"))
    assert confirm == []
    drain(rt)
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(VoteRow)) == 1


def test_a_session_saved_before_the_sealed_id_was_kept_still_votes_as_its_voter(
    client: FlaskClient, rt: Runtime, registry: None, redis: Redis
) -> None:
    at_dial(client, "ATr5", ANA, "1", "3")
    for key in redis.keys("consulta:ussd:*"):  # the session as an older release saved it
        saved = json.loads(redis.get(key))
        for voter in saved["context"]["voters"]:
            del voter["sealed_id"]
        redis.set(key, json.dumps(saved))
    screen = at_hop(client, "ATr5", ANA, "1*3*1").get_data(as_text=True)
    drain(rt)
    with rt.sessions() as session:
        assert list(session.scalars(select(VoteRow.receipt))) == [receipt_on(screen)]
