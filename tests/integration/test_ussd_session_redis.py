"""USSD_REDIS_URL: the menu's sessions and hop counters in a Redis of their own, the votes still
in the inbox's.

With `appendfsync always` on the inbox's Redis every reply waits for the disk, reads included;
a session is only a menu position, so it may live where nothing waits for an fsync
(docs/performance.md, runs 116 to 119). These tests hold the split: where each key goes, what a
hop does when the sessions' Redis is down, and that /metrics still counts every refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select

from gateway import inbox
from gateway.app import create_app
from gateway.models import VoteRow
from gateway.settings import Settings
from gateway.ussd.views import TOO_MANY_HOPS
from tests.integration.test_flood import METRICS_TOKEN, by_twilio, refused, scrape
from tests.integration.test_sms_pipeline import ANA
from tests.integration.test_ussd import AT_SECRET, at_dial, at_hop
from tests.integration.test_ussd_redis_ack import receipt_on, rows
from tests.support.factories import seed
from tests.support.pipeline import drain
from tests.support.ports import closed_port_url
from workers.runtime import Runtime

SESSION_KEYS = "consulta:ussd:*"


@pytest.fixture
def ussd_redis_url(redis_url: str) -> str:
    """Another database of the tests' server: a keyspace of its own, over a real connection."""
    base, _, number = redis_url.rpartition("/")
    return f"{base}/{(int(number) + 8) % 16}"


@pytest.fixture
def ussd_redis(ussd_redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(ussd_redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def settings(settings: Settings, ussd_redis_url: str, ussd_redis: Redis) -> Settings:
    return settings.with_(
        africastalking_secret=AT_SECRET, ack_after="redis", ussd_redis_url=ussd_redis_url
    )


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(rt.sessions, ballots={"C1": 5}, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])


def test_the_sessions_live_in_the_ussd_redis_and_the_vote_in_the_inbox(
    client: FlaskClient, rt: Runtime, registry: None, ussd_redis: Redis
) -> None:
    at_dial(client, "ATs1", ANA, "1", "3")
    assert ussd_redis.keys(SESSION_KEYS), "the session and its resumable copy"
    assert not rt.redis.keys(SESSION_KEYS)
    receipt = receipt_on(at_hop(client, "ATs1", ANA, "1*3*1").get_data(as_text=True))
    assert rt.redis.llen(inbox.INBOX) == 1
    assert not ussd_redis.exists(inbox.INBOX)
    drain(rt)
    with rt.sessions() as session:
        assert list(session.scalars(select(VoteRow.receipt))) == [receipt]


def test_a_caller_whose_call_dropped_resumes_from_the_ussd_redis(
    client: FlaskClient, registry: None, ussd_redis: Redis
) -> None:
    at_dial(client, "ATs2", ANA, "1")
    screen = at_hop(client, "ATs2-again", ANA, "").get_data(as_text=True)
    assert screen.startswith("CON Seguimos donde quedaste."), screen  # not the first screen
    assert ussd_redis.keys("consulta:ussd:resume:*")


def test_with_the_ussd_redis_down_a_hop_ends_politely_and_nothing_is_queued(
    settings: Settings, rt: Runtime, registry: None
) -> None:
    app = create_app(settings.with_(ussd_redis_url=closed_port_url("redis")))
    try:
        answer = at_hop(app.test_client(), "ATs3", ANA, "")
        assert answer.status_code == 200
        assert answer.get_data(as_text=True).startswith("END Servicio no disponible")
        assert rt.redis.llen(inbox.INBOX) == 0
        assert rows(rt) == 0
    finally:
        app.extensions["consulta"].engine.dispose()


@pytest.mark.parametrize(
    ("ussd_redis_up", "status", "reported"),
    [(True, 200, "ok"), (False, 503, "error: ConnectionError")],
    ids=["a reachable ussd redis is reported ok", "an unreachable one makes the web degraded"],
)
def test_the_health_check_reports_the_ussd_redis(
    settings: Settings, ussd_redis_up: bool, status: int, reported: str
) -> None:
    if not ussd_redis_up:
        settings = settings.with_(ussd_redis_url=closed_port_url("redis"))
    app = create_app(settings)
    try:
        answer = app.test_client().get("/healthz")
        assert answer.status_code == status
        assert answer.get_json()["ussd_redis"] == reported
    finally:
        app.extensions["consulta"].engine.dispose()


def test_without_a_ussd_redis_the_sessions_and_the_health_check_stay_with_the_one(
    settings: Settings, rt: Runtime, registry: None, ussd_redis: Redis
) -> None:
    app = create_app(settings.with_(ussd_redis_url=None))
    try:
        at_dial(app.test_client(), "ATs4", ANA, "1")
        assert rt.redis.keys(SESSION_KEYS)
        assert not ussd_redis.keys(SESSION_KEYS)
        assert "ussd_redis" not in app.test_client().get("/healthz").get_json()
    finally:
        app.extensions["consulta"].engine.dispose()


def test_a_hop_flood_is_counted_in_the_ussd_redis_and_shows_in_the_metrics_with_the_sms_ones(
    settings: Settings, rt: Runtime, ussd_redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)  # read when the app is built
    monkeypatch.delenv("METRICS_ALLOWED_NETWORKS", raising=False)
    app = create_app(settings.with_(flood_ussd_hops_per_minute=2, flood_per_sender_per_minute=1))
    try:
        client = app.test_client()
        screens = [at_hop(client, "ATs5", ANA, "").get_data(as_text=True) for _ in range(3)]
        by_twilio(client, ANA)
        by_twilio(client, ANA)  # one SMS over its own limit, counted in the inbox's Redis
        metrics = scrape(client)
    finally:
        app.extensions["consulta"].engine.dispose()
    assert TOO_MANY_HOPS.text in screens[2]
    assert ussd_redis.keys("consulta:flood:ussd:*")
    assert not rt.redis.keys("consulta:flood:ussd:*")
    assert refused("ussd", "sender_minute", 1) in metrics
    assert refused("sms", "sender_minute", 1) in metrics
