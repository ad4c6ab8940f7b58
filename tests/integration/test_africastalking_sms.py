"""Africa's Talking SMS end to end: who gets in, what is recorded, and how replies leave.

Every test runs on SQLite and on PostgreSQL, with real Redis, real RQ jobs, and a real local
server that answers like AT's messaging API. AT signs nothing, so the secret in the path and the
source network are all that stand between a stranger and the ballot box.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow, utcnow
from gateway.providers import africastalking
from gateway.providers.base import SendOutcome
from gateway.queues import INTAKE_LIST, REPLIES_QUEUE
from gateway.settings import Settings
from tests.support.factories import seed
from tests.support.fake_africastalking import (  # noqa: F401 - fake_africastalking_fixture
    API_KEY,
    SHORT_CODE,
    USERNAME,
    FakeAfricasTalking,
    fake_africastalking_fixture,
    report_form,
    settings_with_africastalking,
    sms_form,
)
from tests.support.fake_twilio import (  # noqa: F401 - fake_twilio_fixture is a fixture
    FakeTwilio,
    fake_twilio_fixture,
    settings_with_twilio,
)
from tests.support.pipeline import drain
from workers import runtime
from workers.pump import sweep_once
from workers.replies import RETRY_DELAYS, send_replies
from workers.runtime import Runtime

SECRET = "k3y-in-the-path"
URL = f"/sms/africastalking/{SECRET}"
STATUS_URL = f"{URL}/status"
ALLOWED = ("127.0.0.0/8",)  # the test client calls from 127.0.0.1
WANJIKU = "+254711234567"
STRANGER = "203.0.113.9"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """AT's callbacks carry our secret and come from an allowed network."""
    return settings.with_(
        africastalking_secret=SECRET,
        ussd_allowed_networks=ALLOWED,
        allowed_countries=("VE", "KE"),  # the voters here write from Kenya
    )


# -- helpers -------------------------------------------------------------------------------


def post(
    client: FlaskClient,
    path: str,
    form: dict[str, str],
    remote_addr: str = "127.0.0.1",
    raw: bytes | None = None,
) -> TestResponse:
    environ = {"REMOTE_ADDR": remote_addr}
    if raw is not None:
        content_type = "application/x-www-form-urlencoded"
        return client.post(path, data=raw, content_type=content_type, environ_base=environ)
    return client.post(path, data=form, environ_base=environ)


def recorded(rt: Runtime) -> list[InboundRow]:
    with rt.sessions() as session:
        return list(session.scalars(select(InboundRow).order_by(InboundRow.id)))


def replies(rt: Runtime) -> list[OutboundRow]:
    with rt.sessions() as session:
        return list(session.scalars(select(OutboundRow).order_by(OutboundRow.id)))


def the_reply(rt: Runtime) -> OutboundRow:
    [row] = replies(rt)
    return row


def counted(rt: Runtime, table: Any) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def vote(client: FlaskClient, id_: str | None = None) -> None:
    assert post(client, URL, sms_form(WANJIKU, "VOTO 3", id_)).status_code == 200


@contextmanager
def installed(settings: Settings, restore: Runtime) -> Iterator[Runtime]:
    """A worker runtime with these settings, installed as a worker would install it."""
    built = Runtime.build(settings)
    runtime.install(built)
    try:
        yield built
    finally:
        runtime.install(restore)
        built.close()


def through(rt: Runtime, fake: FakeAfricasTalking, **changes: object) -> Settings:
    """Sending through the fake AT, with a sweep that finds every waiting reply stale at once."""
    return settings_with_africastalking(rt.settings, fake, sweep_after_seconds=0, **changes)


def queue_reply(rt: Runtime, provider: str, recipient: str = WANJIKU) -> int:
    """A reply row as the intake job records it, before any send job runs."""
    now = utcnow()
    with rt.sessions() as session, session.begin():
        row = OutboundRow(
            provider=provider,
            recipient=recipient,
            body="Hola",
            status="queued",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row.id


def scheduled(rt: Runtime) -> list[datetime]:
    registry = rt.queue(REPLIES_QUEUE).scheduled_job_registry
    return [registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()]


def run_scheduled(rt: Runtime) -> int:
    """Bring every delayed reply job forward to now and run it; how many there were."""
    queue = rt.queue(REPLIES_QUEUE)
    registry = queue.scheduled_job_registry
    job_ids = registry.get_job_ids()
    for job_id in job_ids:
        job = queue.fetch_job(job_id)
        assert job is not None
        registry.remove(job)
        queue.enqueue_job(job)
    drain(rt)
    return len(job_ids)


def closed_port_url() -> str:
    """A local URL nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(rt.sessions, people=[("V12345678", "C1", date(1990, 5, 1), [WANJIKU])])


# -- who gets in, and what is recorded -----------------------------------------------------


@dataclass(frozen=True)
class Case:
    label: str
    form: dict[str, str] = field(default_factory=lambda: sms_form(WANJIKU, "VOTO 3"))
    path: str = URL
    remote_addr: str = "127.0.0.1"
    changes: dict[str, object] = field(default_factory=dict)  # to the app's settings
    raw: bytes | None = None  # posted as it is instead of the form
    status: int = 200
    recorded: int = 1
    sender: str = WANJIKU


def without(name: str) -> dict[str, str]:
    form = sms_form(WANJIKU, "VOTO 3")
    del form[name]
    return form


NOT_UTF8 = b"from=%2B254711234567&to=20880&text=Votaci%F3n&date=2026-03-01&id=ATXid_latin1"

CASES = [
    Case("a message with our secret from an allowed network is recorded and acknowledged"),
    Case("a sender without its plus is stored in E.164", form=sms_form("254711234567", "VOTO 3")),
    Case("an accented text in UTF-8 is recorded", form=sms_form(WANJIKU, "Votación 3 ¡sí!")),
    Case("an empty text is recorded: the worker answers with help", form=sms_form(WANJIKU, "")),
    Case("a premium message's linkId is accepted", form=sms_form(WANJIKU, "VOTO 3", linkId="L1")),
    Case("a wrong secret is forbidden", path="/sms/africastalking/guess", status=403, recorded=0),
    Case("the secret in another case is forbidden", path=f"/sms/africastalking/{SECRET.upper()}",
         status=403, recorded=0),
    Case("a secret with a character beyond ASCII is forbidden, not an error",
         path=f"{URL}é", status=403, recorded=0),
    Case("without a secret configured every request is forbidden",
         changes={"africastalking_secret": None}, status=403, recorded=0),
    Case("a path without any secret is no route at all", path="/sms/africastalking/",
         status=404, recorded=0),
    Case("a caller outside the allowed networks is forbidden, secret or not",
         remote_addr=STRANGER, status=403, recorded=0),
    Case("an allowed IPv4 caller seen through a dual-stack socket gets in",
         remote_addr="::ffff:127.0.0.1"),
    Case("an empty allow-list lets any network in", remote_addr=STRANGER,
         changes={"ussd_allowed_networks": ()}),
    Case("a missing id is a clear 400", form=without("id"), status=400, recorded=0),
    Case("a missing from is a clear 400", form=without("from"), status=400, recorded=0),
    Case("a missing text is a clear 400", form=without("text"), status=400, recorded=0),
    Case("a missing date is a clear 400", form=without("date"), status=400, recorded=0),
    Case("a text over 1,600 characters is a clear 400", form=sms_form(WANJIKU, "3" * 1601),
         status=400, recorded=0),
    Case("an id wider than the column is a clear 400", form=sms_form(WANJIKU, "x", "A" * 65),
         status=400, recorded=0),
    Case("a body that is not UTF-8 is a clear 400", raw=NOT_UTF8, status=400, recorded=0),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.label for case in CASES])
def test_an_inbound_sms_callback(app: Flask, client: FlaskClient, rt: Runtime, case: Case) -> None:
    state = app.extensions["consulta"]
    state.settings = state.settings.with_(**case.changes)
    response = post(client, case.path, case.form, case.remote_addr, case.raw)
    assert response.status_code == case.status
    rows = recorded(rt)
    assert len(rows) == case.recorded
    assert rt.redis.llen(INTAKE_LIST) == case.recorded
    if case.recorded:
        assert response.data == b""
        row = rows[0]
        assert (row.provider, row.external_id, row.sender, row.recipient, row.body) == (
            "africastalking",
            case.form["id"],
            case.sender,
            SHORT_CODE,
            case.form["text"],
        )


def test_a_message_at_delivers_again_is_acknowledged_and_recorded_once(
    client: FlaskClient, rt: Runtime
) -> None:
    form = sms_form(WANJIKU, "VOTO 3")
    answers = [post(client, URL, form).status_code for _ in range(3)]  # AT retries until a 2xx
    assert answers == [200, 200, 200]
    assert len(recorded(rt)) == 1
    assert rt.redis.llen(INTAKE_LIST) == 1


# -- a vote by AT SMS, confirmed through AT ---------------------------------------------------


def test_a_vote_by_at_sms_is_counted_and_confirmed_once_through_at(
    client: FlaskClient, rt: Runtime, fake_africastalking: FakeAfricasTalking, registry: None
) -> None:
    with installed(through(rt, fake_africastalking), rt) as worker:
        vote(client, "ATXid_vote")
        vote(client, "ATXid_vote")  # AT delivered it again: still one vote, one confirmation
        drain(worker)
    [request] = fake_africastalking.requests
    reply = the_reply(rt)
    assert (request.path, request.api_key, request.accept) == (
        "/version1/messaging",
        API_KEY,
        "application/json",
    )
    assert (request.username, request.to, request.from_) == (USERNAME, WANJIKU, SHORT_CODE)
    assert request.message == reply.body
    assert "voto registrado" in reply.body
    assert (reply.provider, reply.status, reply.provider_sid, reply.attempts) == (
        "africastalking",
        "sent",
        fake_africastalking.created[0],
        1,
    )
    assert (counted(rt, VoteRow), counted(rt, ParticipationRow)) == (1, 1)


@pytest.mark.parametrize(
    ("provider", "through_at", "through_twilio"),
    [
        pytest.param("africastalking", 1, 0, id="a reply to an AT message leaves through AT"),
        pytest.param("twilio", 0, 1, id="a reply to a Twilio message leaves through Twilio"),
        pytest.param("hubtel", 0, 1, id="a reply to a Hubtel voter leaves by the default"),
        pytest.param("carrier-pigeon", 0, 1, id="a reply to an unknown provider leaves by default"),
    ],
)
def test_each_reply_leaves_through_the_provider_its_message_came_in_by(
    rt: Runtime,
    fake_africastalking: FakeAfricasTalking,
    fake_twilio: FakeTwilio,
    provider: str,
    through_at: int,
    through_twilio: int,
) -> None:
    both = settings_with_twilio(through(rt, fake_africastalking), fake_twilio)
    with installed(both, rt):
        reply_id = queue_reply(rt, provider)
        assert send_replies([reply_id])["sent"] == 1
    assert (len(fake_africastalking.requests), len(fake_twilio.requests)) == (
        through_at,
        through_twilio,
    )
    assert the_reply(rt).status == "sent"


@pytest.mark.parametrize(
    ("provider", "changes"),
    [
        pytest.param("africastalking", {"africastalking_api_key": None}, id="AT without a key"),
        pytest.param("africastalking", {"africastalking_username": None}, id="AT without a user"),
        pytest.param("hubtel", {"twilio_account_sid": None}, id="Hubtel's default without Twilio"),
    ],
)
def test_a_reply_stays_in_the_outbox_without_credentials_for_its_provider(
    rt: Runtime,
    fake_africastalking: FakeAfricasTalking,
    fake_twilio: FakeTwilio,
    provider: str,
    changes: dict[str, object],
) -> None:
    both = settings_with_twilio(through(rt, fake_africastalking), fake_twilio, **changes)
    with installed(both, rt):
        send_replies([queue_reply(rt, provider)])
    reply = the_reply(rt)
    assert (reply.status, reply.provider_sid, reply.error_code) == ("outbox", None, None)
    assert (fake_africastalking.requests, fake_twilio.requests) == ([], [])


# -- what AT's answer decides ------------------------------------------------------------------


@dataclass(frozen=True)
class Final:
    status: str
    error_code: str
    plan: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, object] = field(default_factory=dict)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Final("unknown", "500", plan={"status": 500}),
                     id="a 500 may have sent it"),
        pytest.param(Final("unknown", "502", plan={"status": 502}),
                     id="a 502 may have sent it"),
        pytest.param(Final("unknown", "ReadTimeout", plan={"status": "hang", "seconds": 5}),
                     id="a read timeout may have sent it"),
        pytest.param(Final("opted_out", "406", plan={"status": 201, "code": 406}),
                     id="UserInBlacklist means the voter opted out"),
        pytest.param(Final("failed", "403", plan={"status": 201, "code": 403}),
                     id="InvalidPhoneNumber is refused for good"),
        pytest.param(Final("failed", "401", changes={"africastalking_api_key": "not-the-key"}),
                     id="wrong credentials are refused for good"),
    ],
)  # fmt: skip
def test_a_reply_at_may_have_taken_or_refused_for_good_is_never_resent(
    client: FlaskClient,
    rt: Runtime,
    fake_africastalking: FakeAfricasTalking,
    registry: None,
    monkeypatch: pytest.MonkeyPatch,
    case: Final,
) -> None:
    monkeypatch.setattr(africastalking, "TIMEOUT", (2.0, 0.3))  # a hanging AT, briefly
    if case.plan:
        fake_africastalking.plan(**case.plan)
    with installed(through(rt, fake_africastalking, **case.changes), rt) as worker:
        vote(client)
        drain(worker)
        reply = the_reply(rt)
        assert (reply.status, reply.error_code, reply.provider_sid) == (
            case.status,
            case.error_code,
            None,
        )
        assert scheduled(worker) == []
        assert send_replies([reply.id]) == dict.fromkeys(map(str, SendOutcome), 0)
        sweep_once(worker)
        drain(worker)
    assert len(fake_africastalking.requests) == 1
    assert (the_reply(rt).status, the_reply(rt).attempts) == (case.status, 1)


@pytest.mark.parametrize(
    ("first", "error_code", "requests_seen"),
    [
        pytest.param({"plan": {"status": 429}}, "429", 2, id="a 429 was not processed"),
        pytest.param({"refused": True}, "conn", 1, id="a refused connection sent nothing"),
    ],
)
def test_a_reply_at_surely_did_not_take_is_sent_again_after_a_backoff(
    client: FlaskClient,
    rt: Runtime,
    fake_africastalking: FakeAfricasTalking,
    registry: None,
    first: dict[str, Any],
    error_code: str,
    requests_seen: int,
) -> None:
    if "plan" in first:
        fake_africastalking.plan(**first["plan"])
    nowhere = {"africastalking_api_base_url": closed_port_url()} if "refused" in first else {}
    with installed(through(rt, fake_africastalking, **nowhere), rt) as worker:
        vote(client)
        drain(worker)
        waiting = the_reply(rt)
        assert (waiting.status, waiting.error_code) == ("queued", error_code)
        [due] = scheduled(worker)
        backoff = (due - waiting.updated_at).total_seconds()
        assert backoff == pytest.approx(RETRY_DELAYS[0] - 0.5, abs=0.6)
    with installed(through(rt, fake_africastalking), rt) as worker:
        assert run_scheduled(worker) == 1
    reply = the_reply(rt)
    assert (reply.status, reply.provider_sid, reply.attempts) == (
        "sent",
        fake_africastalking.created[0],
        2,
    )
    assert len(fake_africastalking.requests) == requests_seen


# -- delivery reports --------------------------------------------------------------------------


@pytest.fixture
def sent_id(
    client: FlaskClient, rt: Runtime, fake_africastalking: FakeAfricasTalking, registry: None
) -> str:
    """A confirmed vote whose reply AT accepted: its messageId."""
    with installed(through(rt, fake_africastalking), rt) as worker:
        vote(client)
        drain(worker)
    assert the_reply(rt).status == "sent"
    return fake_africastalking.created[0]


@pytest.mark.parametrize(
    ("reports", "status", "error_code"),
    [
        pytest.param(["Sent", "Success"], "delivered", None, id="sent then delivered"),
        pytest.param(["Success", "Sent"], "delivered", None, id="a late Sent does not undo it"),
        pytest.param(["Success", "Success"], "delivered", None, id="delivered twice"),
        pytest.param(["Submitted", "Buffered"], "sent", None, id="early statuses leave it sent"),
        pytest.param(["Failed:UserInBlackList"], "failed", "UserInBlackList",
                     id="a failure keeps its reason"),
        pytest.param(["Rejected:UserAccountSuspended"], "failed", "UserAccountSuspe",
                     id="a long reason is cut to the column's width"),
        pytest.param(["Success", "Failed:DeliveryFailure"], "delivered", None,
                     id="a final status is never replaced by another"),
    ],
)  # fmt: skip
def test_delivery_reports_only_ever_move_a_reply_forward(
    client: FlaskClient,
    rt: Runtime,
    sent_id: str,
    reports: list[str],
    status: str,
    error_code: str | None,
) -> None:
    for report in reports:
        theirs, _, reason = report.partition(":")
        response = post(client, STATUS_URL, report_form(sent_id, theirs, reason or None))
        assert (response.status_code, response.data) == (200, b"")
    reply = the_reply(rt)
    assert (reply.status, reply.error_code) == (status, error_code)


@pytest.mark.parametrize(
    ("path", "change", "remote_addr", "answer"),
    [
        pytest.param("/sms/africastalking/guess/status", {}, "127.0.0.1", 403,
                     id="a report without our secret is forbidden"),
        pytest.param(STATUS_URL, {}, STRANGER, 403,
                     id="a report from outside the allowed networks is forbidden"),
        pytest.param(STATUS_URL, {"status": "Teleported"}, "127.0.0.1", 400,
                     id="an unknown status is a bad request"),
        pytest.param(STATUS_URL, {"id": ""}, "127.0.0.1", 400, id="a missing id is a bad request"),
        pytest.param(STATUS_URL, {"id": "ATXid_never"}, "127.0.0.1", 200,
                     id="an id we never sent is acknowledged and ignored"),
    ],
)  # fmt: skip
def test_a_report_that_cannot_be_trusted_or_matched_changes_nothing(
    client: FlaskClient,
    rt: Runtime,
    sent_id: str,
    path: str,
    change: dict[str, str],
    remote_addr: str,
    answer: int,
) -> None:
    form = report_form(sent_id, "Success") | change
    assert post(client, path, form, remote_addr).status_code == answer
    reply = the_reply(rt)
    assert (reply.status, reply.provider_sid) == ("sent", sent_id)
