"""Flood control: refused at the door before any database write; replies held back on the way out.

Every test runs on SQLite and on PostgreSQL, with real Redis. A refused message still gets the
provider's 2xx; what it must not get is a row, a queue entry or a reply.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from gateway import privacy
from gateway.app import create_app
from gateway.models import InboundRow, OutboundRow, utcnow
from gateway.queues import INTAKE_LIST
from gateway.settings import Settings
from gateway.ussd.views import TOO_MANY_HOPS
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.support import processes
from tests.support.factories import seed
from tests.support.fake_africastalking import sms_form
from tests.support.fake_twilio import (  # noqa: F401 - fake_twilio_fixture is a fixture
    FakeTwilio,
    fake_twilio_fixture,
    settings_with_twilio,
)
from tests.support.pipeline import drain
from tests.support.twilio_requests import inbound_form, signed_headers
from workers import runtime
from workers.replies import send_replies
from workers.runtime import Runtime

ANA = "+584141234567"
BETO = "+584241234567"
NEW_YORK = "+12125551234"
NAIROBI = "+254711234567"
AT_SECRET = "at-flood-secret"
HUBTEL_SECRET = "hubtel-flood-secret"
METRICS_TOKEN = "flood-metrics-token"


@pytest.fixture(autouse=True)
def metrics_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read when the app is built, so set before it."""
    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)
    monkeypatch.delenv("METRICS_ALLOWED_NETWORKS", raising=False)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(africastalking_secret=AT_SECRET, hubtel_secret=HUBTEL_SECRET)


# -- helpers -------------------------------------------------------------------------------


@contextmanager
def client_with(settings: Settings, **changes: object) -> Iterator[FlaskClient]:
    """A test client of an app built with these settings changed; closed afterwards."""
    app: Flask = create_app(settings.with_(**changes))
    try:
        yield app.test_client()
    finally:
        app.extensions["consulta"].engine.dispose()
        app.extensions["consulta"].redis.close()


def by_twilio(client: FlaskClient, sender: str, body: str = "VOTO 3") -> TestResponse:
    form = inbound_form(sender, body)
    headers = signed_headers(AUTH_TOKEN, PUBLIC_URL + "/sms/twilio", form)
    return client.post("/sms/twilio", data=form, headers=headers)


def by_africastalking(client: FlaskClient, sender: str, body: str = "VOTO 3") -> TestResponse:
    return client.post(f"/sms/africastalking/{AT_SECRET}", data=sms_form(sender, body))


SMS_PROVIDERS = [
    pytest.param(by_twilio, id="by Twilio"),
    pytest.param(by_africastalking, id="by Africa's Talking"),
]
Post = Callable[[FlaskClient, str], TestResponse]


def stored_senders(rt: Runtime) -> Counter[str]:
    with rt.sessions() as session:
        return Counter(row.sender for row in session.scalars(select(InboundRow)))


def refused(channel: str, reason: str, count: int) -> str:
    """The /metrics line that counts refusals."""
    return f'consulta_flood_refused_total{{channel="{channel}",reason="{reason}"}} {count:.1f}'


def scrape(client: FlaskClient) -> str:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def queue_replies(rt: Runtime, recipients: list[str]) -> list[int]:
    """Reply rows as the intake job records them, before any send job runs."""
    now = utcnow()
    rows = [
        OutboundRow(
            provider="twilio",
            recipient=to,
            body="Hola",
            status="queued",
            created_at=now,
            updated_at=now,
        )
        for to in recipients
    ]
    with rt.sessions() as session, session.begin():
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def statuses(rt: Runtime, ids: list[int]) -> list[str]:
    with rt.sessions() as session:
        found = dict(session.execute(select(OutboundRow.id, OutboundRow.status)).all())
    return [found[i] for i in ids]


@contextmanager
def worker_with(settings: Settings, restore: Runtime) -> Iterator[Runtime]:
    """A worker runtime with these settings, installed as a worker would install it."""
    built = Runtime.build(settings)
    runtime.install(built)
    try:
        yield built
    finally:
        runtime.install(restore)
        built.close()


# -- at the door ---------------------------------------------------------------------------


@pytest.mark.parametrize("post", SMS_PROVIDERS)
def test_the_eleventh_sms_in_a_minute_from_one_sender_is_acknowledged_but_not_stored(
    client: FlaskClient, rt: Runtime, post: Post
) -> None:
    answers = [post(client, ANA) for _ in range(11)] + [post(client, BETO)]
    assert [a.status_code for a in answers] == [200] * 12
    assert len({a.get_data() for a in answers}) == 1  # the refused one reads like the others
    assert stored_senders(rt) == Counter({ANA: 10, BETO: 1})
    assert rt.redis.llen(INTAKE_LIST) == 11


def test_twilio_and_africas_talking_share_one_budget_per_number(
    client: FlaskClient, rt: Runtime
) -> None:
    for _ in range(6):
        by_twilio(client, ANA)
        by_africastalking(client, ANA)
    assert stored_senders(rt) == Counter({ANA: 10})


@dataclass(frozen=True)
class Flood:
    changes: dict[str, object]
    senders: list[str]
    stored: int
    metric: str = ""  # the /metrics line that must show, if any


FLOODS = [
    pytest.param(
        Flood(
            {"flood_per_sender_per_minute": 0, "flood_per_sender_per_hour": 3},
            [ANA] * 4,
            stored=3,
            metric=refused("sms", "sender_hour", 1),
        ),
        id="the hourly limit holds on its own",
    ),
    pytest.param(
        Flood(
            {"flood_overall_per_second": 3},
            [f"+58414555{n:04d}" for n in range(4)],
            stored=3,
            metric=refused("sms", "overall", 1),
        ),
        id="the overall cap holds across senders",
    ),
    pytest.param(
        Flood(
            {
                "flood_per_sender_per_minute": 0,
                "flood_per_sender_per_hour": 0,
                "flood_overall_per_second": 0,
            },
            [ANA] * 70,
            stored=70,
        ),
        id="a limit of 0 is no limit",
    ),
]


@pytest.mark.parametrize("flood", FLOODS)
def test_each_limit_refuses_what_is_past_it_and_counts_the_refusal(
    settings: Settings, rt: Runtime, flood: Flood
) -> None:
    with client_with(settings, **flood.changes) as client:
        assert {by_twilio(client, sender).status_code for sender in flood.senders} == {200}
        text = scrape(client)
    assert sum(stored_senders(rt).values()) == flood.stored
    if flood.metric:
        assert flood.metric in text
    else:
        assert "consulta_flood_refused_total{" not in text


def test_a_refusal_is_in_the_metrics_and_the_log_with_the_number_masked(
    client: FlaskClient, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.flood")
    for _ in range(13):
        by_twilio(client, ANA)
    assert refused("sms", "sender_minute", 3) in scrape(client)
    records = [r for r in caplog.records if r.name == "gateway.flood"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert warnings == [f"flood: sms from {privacy.mask(ANA)} refused (sender_minute)"]
    assert len(records) == 3  # the rest of a flood is logged at debug level
    assert not any(ANA in r.getMessage() for r in caplog.records)


def at_hop(client: FlaskClient, text: str) -> str:
    form = {"sessionId": "s1", "phoneNumber": ANA, "serviceCode": "*123#", "text": text}
    answer = client.post(f"/ussd/africastalking/{AT_SECRET}", data=form)
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def hubtel_hop(client: FlaskClient, kind: str) -> str:
    payload = {"Type": kind, "SessionId": "s1", "Mobile": ANA, "ServiceCode": "*123#"}
    answer = client.post(f"/ussd/hubtel/{HUBTEL_SECRET}", json=payload)
    assert answer.status_code == 200
    return str(answer.get_json()["Message"])


@pytest.mark.parametrize(
    "hop",
    [
        pytest.param(lambda client: at_hop(client, ""), id="at Africa's Talking"),
        pytest.param(lambda client: hubtel_hop(client, "Initiation"), id="at Hubtel"),
    ],
)
def test_a_ussd_caller_past_the_hop_limit_is_shown_a_closing_screen(
    settings: Settings, rt: Runtime, hop: Callable[[FlaskClient], str]
) -> None:
    with client_with(settings, flood_ussd_hops_per_minute=2) as client:
        screens = [hop(client) for _ in range(3)]
        assert refused("ussd", "sender_minute", 1) in scrape(client)
    assert TOO_MANY_HOPS.text not in screens[0] + screens[1]
    assert TOO_MANY_HOPS.text in screens[2]


def test_the_end_of_a_session_is_never_refused(settings: Settings, rt: Runtime) -> None:
    """Hubtel sends it, not the caller; it only forgets the session."""
    with client_with(settings, flood_ussd_hops_per_minute=1) as client:
        hubtel_hop(client, "Initiation")
        assert hubtel_hop(client, "Initiation") == TOO_MANY_HOPS.text
        assert hubtel_hop(client, "Release") == ""


def test_ussd_hops_do_not_spend_the_sms_budget(client: FlaskClient, rt: Runtime) -> None:
    for _ in range(12):
        at_hop(client, "")
    for _ in range(10):
        by_twilio(client, ANA)
    assert stored_senders(rt) == Counter({ANA: 10})


def test_with_redis_down_every_message_is_stored_and_the_outage_logged(
    settings: Settings, rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"redis://127.0.0.1:{processes.free_port()}/0"
    with client_with(settings, redis_url=nowhere) as client:
        assert {by_twilio(client, ANA).status_code for _ in range(12)} == {200}
    assert stored_senders(rt) == Counter({ANA: 12})  # the sweep will queue them
    outages = [r.getMessage() for r in caplog.records if r.name == "gateway.flood"]
    assert outages == [f"flood control off, redis down: sms from {privacy.mask(ANA)} admitted"] * 12


# -- on the way out ------------------------------------------------------------------------


def test_replies_past_the_hourly_cap_for_a_number_are_capped_and_never_sent(
    rt: Runtime, fake_twilio: FakeTwilio
) -> None:
    with worker_with(settings_with_twilio(rt.settings, fake_twilio), rt) as worker:
        to_ana = queue_replies(worker, [ANA] * 10)
        to_beto = queue_replies(worker, [BETO])
        send_replies(to_ana + to_beto)
    assert statuses(rt, to_ana) == ["sent"] * 8 + ["capped"] * 2
    assert statuses(rt, to_beto) == ["sent"]
    assert Counter(request.to for request in fake_twilio.requests) == {ANA: 8, BETO: 1}


def test_a_reply_sent_again_after_a_429_counts_once_against_the_cap(
    rt: Runtime, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.plan(429, code=20429)
    live = settings_with_twilio(rt.settings, fake_twilio, reply_cap_per_hour=2)
    with worker_with(live, rt) as worker:
        [first] = queue_replies(worker, [ANA])
        send_replies([first])
        assert statuses(rt, [first]) == ["queued"]  # Twilio did not take it: tried again later
        send_replies([first])
        second, third = queue_replies(worker, [ANA, ANA])
        send_replies([second, third])
    assert statuses(rt, [first, second, third]) == ["sent", "sent", "capped"]


@dataclass(frozen=True)
class Abroad:
    allowed: tuple[str, ...]
    sent: list[str]
    blocked: list[str] = field(default_factory=list)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Abroad((), [ANA], [NEW_YORK, NAIROBI]), id="only the default region"),
        pytest.param(Abroad(("VE", "KE"), [ANA, NAIROBI], [NEW_YORK]), id="a list of regions"),
        pytest.param(Abroad(("*",), [ANA, NAIROBI, NEW_YORK]), id="anywhere"),
        pytest.param(Abroad(("*",), [], ["20880"]), id="never to what is not a phone number"),
    ],
)
def test_replies_go_only_to_the_allowed_countries(
    rt: Runtime, fake_twilio: FakeTwilio, case: Abroad
) -> None:
    live = settings_with_twilio(rt.settings, fake_twilio, allowed_countries=case.allowed)
    with worker_with(live, rt) as worker:
        sent, blocked = queue_replies(worker, case.sent), queue_replies(worker, case.blocked)
        send_replies(sent + blocked)
    assert statuses(rt, sent) == ["sent"] * len(sent)
    assert statuses(rt, blocked) == ["blocked"] * len(blocked)
    assert sorted(request.to or "" for request in fake_twilio.requests) == sorted(case.sent)


def test_a_message_from_abroad_is_judged_but_its_reply_is_blocked(
    client: FlaskClient, rt: Runtime
) -> None:
    seed(rt.sessions)  # an open consultation, with nobody from New York in its registry
    assert by_twilio(client, NEW_YORK, "VOTO 3").status_code == 200
    drain(rt)
    with rt.sessions() as session:
        assert session.scalar(select(InboundRow.outcome)) == "not_registered"
        assert list(session.scalars(select(OutboundRow.status))) == ["blocked"]


def test_retries_of_a_message_the_database_refused_do_not_use_up_the_senders_window(
    client: FlaskClient, rt: Runtime
) -> None:
    """Each 503 is refunded: the message counts once, when it is finally stored."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    state = client.application.extensions["consulta"]
    working = state.sessions
    state.sessions = sessionmaker(create_engine("sqlite:////nonexistent-dir/consulta.db"))
    form = inbound_form(ANA, "VOTO 3")
    headers = signed_headers(AUTH_TOKEN, PUBLIC_URL + "/sms/twilio", form)
    try:
        refused = [client.post("/sms/twilio", data=form, headers=headers) for _ in range(15)]
    finally:
        state.sessions = working
    assert {r.status_code for r in refused} == {503}
    assert client.post("/sms/twilio", data=form, headers=headers).status_code == 200
    assert stored_senders(rt) == Counter({ANA: 1})
