"""ACK_AFTER=redis: the webhook answers once the message is in the Redis inbox.

Workers then write whole batches to the database. These tests hold that path to the same
promises as the database path: each message counted once, nothing lost when a batch's job is
lost or run twice, a Redis outage falling back to the database, and no number in clear in Redis.
"""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select

from gateway import inbox
from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow, utcnow
from gateway.providers.base import InboundMessage
from gateway.settings import Settings
from tests.integration.test_sms_pipeline import ANA, post_sms, replies_to
from tests.support.factories import seed
from tests.support.pipeline import drain
from tests.support.twilio_requests import message_sid
from workers import intake, pump
from workers.runtime import Runtime

BETO = "+584247654321"
STRANGER = "+584269998877"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(ack_after="redis", batch_linger_ms=0)


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(
        rt.sessions,
        people=[
            ("V12345678", "C1", date(1990, 5, 1), [ANA]),
            ("V20111222", "C1", date(1985, 2, 3), [BETO]),
        ],
    )


def count(rt: Runtime, table: type) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_the_acknowledgement_comes_before_the_database_and_the_worker_writes_the_batch(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    assert post_sms(client, ANA, "VOTO 3") == 200
    assert (count(rt, InboundRow), int(rt.redis.llen(inbox.INBOX))) == (0, 1)
    drain(rt)
    assert (count(rt, InboundRow), count(rt, VoteRow), count(rt, OutboundRow)) == (1, 1, 1)
    assert "VOTO" not in " ".join(replies_to(rt, ANA))  # a confirmation, not an echo
    assert inbox.waiting(rt.redis) == 0


def test_a_redelivered_message_in_the_same_batch_and_in_a_later_one_counts_once(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    sid = message_sid()
    for _ in range(3):
        post_sms(client, ANA, "VOTO 3", sid)
    drain(rt)
    post_sms(client, ANA, "VOTO 3", sid)
    drain(rt)
    assert (count(rt, InboundRow), count(rt, VoteRow), count(rt, OutboundRow)) == (1, 1, 1)


def test_two_voters_and_a_stranger_in_one_batch_each_get_their_own_outcome(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    for sender, body in [(ANA, "VOTO 3"), (BETO, "VOTO 1"), (STRANGER, "VOTO 2"), (ANA, "2")]:
        post_sms(client, sender, body)
    drain(rt)
    with rt.sessions() as session:
        outcomes = sorted(session.scalars(select(InboundRow.outcome)))
    assert outcomes == ["already_voted", "confirmed", "confirmed", "not_registered"]
    assert count(rt, ParticipationRow) == 2


def test_a_batch_whose_job_was_lost_is_found_by_the_sweep_and_counted_once(
    client: FlaskClient, rt: Runtime, registry: None, settings: Settings
) -> None:
    post_sms(client, ANA, "VOTO 3")
    post_sms(client, BETO, "VOTO 1")
    # The pump took the batch and died before its job ran: the batch is registered, not queued.
    batch = inbox.take_batch(rt.redis, 200, wait_seconds=0, linger_seconds=0)
    assert batch is not None
    assert int(rt.redis.llen(batch)) == 2
    assert pump.sweep_once(rt).get("batches") == 0  # too young to be called lost
    rt.redis.zadd(inbox.BATCHES, {batch: 0})  # ... until it has waited SWEEP_AFTER_SECONDS
    rt.redis.delete(pump.SWEEP_LOCK)
    assert pump.sweep_once(rt)["batches"] == 1
    drain(rt)
    assert (count(rt, VoteRow), count(rt, OutboundRow), inbox.waiting(rt.redis)) == (2, 2, 0)


def test_a_full_batch_goes_at_once_however_long_the_linger(rt: Runtime) -> None:
    for n in range(3):
        inbox.put(rt.redis, message(n))
    started = time.monotonic()
    batch = inbox.take_batch(rt.redis, 3, wait_seconds=0, linger_seconds=30)
    assert batch is not None
    assert int(rt.redis.llen(batch)) == 3
    assert time.monotonic() - started < 10  # not the 30 s linger


def test_a_batch_waits_out_its_linger_for_messages_that_trickle_in(rt: Runtime) -> None:
    inbox.put(rt.redis, message(0))
    later = threading.Timer(0.2, lambda: inbox.put(rt.redis, message(1)))
    later.start()
    try:
        batch = inbox.take_batch(rt.redis, 200, wait_seconds=0, linger_seconds=1)
    finally:
        later.join()
    assert batch is not None
    assert int(rt.redis.llen(batch)) == 2
    assert int(rt.redis.llen(inbox.INBOX)) == 0


def message(n: int) -> InboundMessage:
    return InboundMessage("twilio", message_sid(), ANA, "+582125550000", f"VOTO {n}", utcnow())


def test_a_batch_job_run_twice_or_after_its_commit_changes_nothing(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    post_sms(client, ANA, "VOTO 3")
    post_sms(client, STRANGER, "AYUDA")
    batch = inbox.take_batch(rt.redis, 200, wait_seconds=0, linger_seconds=0)
    assert batch is not None
    kept = rt.redis.lrange(batch, 0, -1)
    first = intake.process_inbox_batch(batch)
    rt.redis.rpush(batch, *kept)  # as if the worker died after the commit, before the cleanup
    second = intake.process_inbox_batch(batch)
    assert first == {"arrived": 2, "processed": 2, "replies": 2}
    assert second == {"arrived": 2, "processed": 0, "replies": 0}
    assert (count(rt, InboundRow), count(rt, VoteRow), count(rt, OutboundRow)) == (2, 1, 2)


def test_a_batch_mixing_a_recorded_message_with_new_ones_counts_only_the_new_ones(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    # A job run again after a crash, or a batch the sweep requeued, can hold a message that an
    # earlier batch already counted, beside new ones: only the new ones are judged.
    post_sms(client, ANA, "VOTO 3")
    first = inbox.take_batch(rt.redis, 200, wait_seconds=0, linger_seconds=0)
    assert first is not None
    recorded = rt.redis.lrange(first, 0, -1)
    assert intake.process_inbox_batch(first)["processed"] == 1
    post_sms(client, BETO, "VOTO 1")
    post_sms(client, STRANGER, "AYUDA")
    second = inbox.take_batch(rt.redis, 200, wait_seconds=0, linger_seconds=0)
    assert second is not None
    rt.redis.rpush(second, *recorded)  # ANA's message again, after the two new ones
    assert intake.process_inbox_batch(second) == {"arrived": 3, "processed": 2, "replies": 2}
    assert (count(rt, InboundRow), count(rt, VoteRow), count(rt, OutboundRow)) == (3, 2, 3)
    with rt.sessions() as session:
        rows = session.execute(select(InboundRow.status, InboundRow.outcome)).all()
    assert sorted(rows) == [("done", "confirmed"), ("done", "confirmed"), ("done", "help")]


def test_the_messages_of_a_batch_are_judged_in_the_order_they_arrived(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    # ANA's second vote reaches the inbox first but was received later: it is the one refused.
    later = utcnow()
    earlier = later - timedelta(seconds=30)
    for body, received_at in (("VOTO 2", later), ("VOTO 3", earlier)):
        message = InboundMessage("twilio", message_sid(), ANA, "+15550001", body, received_at)
        inbox.put(rt.redis, message)
    drain(rt)
    with rt.sessions() as session:
        outcomes = dict(session.execute(select(InboundRow.body, InboundRow.outcome)).all())
    assert outcomes == {"VOTO 3": "confirmed", "VOTO 2": "already_voted"}


def test_with_redis_refusing_the_webhook_still_answers_and_the_database_keeps_the_message(
    app: object, client: FlaskClient, rt: Runtime, registry: None, redis: Redis
) -> None:
    state = client.application.extensions["consulta"]
    working = state.redis
    state.redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)  # nothing there
    try:
        assert post_sms(client, ANA, "VOTO 3") == 200
    finally:
        state.redis = working
    assert count(rt, InboundRow) == 1  # written straight to the database instead
    with rt.sessions() as session, session.begin():
        session.execute(InboundRow.__table__.update().values(enqueued_at=_long_ago()))
    pump.sweep_once(rt)  # nothing was pushed to Redis: the sweep finds it in the database
    drain(rt)
    assert count(rt, VoteRow) == 1


def test_the_inbox_holds_no_number_and_no_text_in_clear(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    post_sms(client, ANA, "VOTO 3 V12345678")
    raw = b" ".join(rt.redis.lrange(inbox.INBOX, 0, -1))
    assert raw  # something to search
    for clear in (ANA, ANA[1:], "V12345678", "12345678", "VOTO"):
        assert clear.encode() not in raw


def test_a_batch_size_of_one_takes_one_message_not_the_whole_inbox(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    for sender in (ANA, BETO, STRANGER):
        post_sms(client, sender, "AYUDA")
    batch = inbox.take_batch(rt.redis, 1, wait_seconds=0, linger_seconds=0)
    assert batch is not None
    assert (int(rt.redis.llen(batch)), int(rt.redis.llen(inbox.INBOX))) == (1, 2)


def test_a_wrong_ack_after_setting_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="ACK_AFTER must be one of database, redis"):
        Settings.from_env({"ACK_AFTER": "memory"})


def _long_ago():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=1)
