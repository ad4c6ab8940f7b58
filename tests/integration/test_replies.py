"""Replies through Twilio's REST API, against a real local server that answers like Twilio.

Every test runs on SQLite and on PostgreSQL, with real Redis and real RQ jobs. The rule under
test is Twilio's own: a create is not idempotent, so a reply is resent only when Twilio surely
did not take it (429, connection refused), never after a 5xx or a timeout, never after 21610.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from redis.exceptions import RedisError
from sqlalchemy import event, select, update

from gateway.models import OutboundRow, utcnow
from gateway.providers import twilio
from gateway.providers.base import SendOutcome
from gateway.queues import REPLIES_QUEUE
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.support.chaos import TcpProxy
from tests.support.factories import seed
from tests.support.fake_twilio import (  # noqa: F401 - fake_twilio_fixture is a fixture
    ACCOUNT_SID,
    TWILIO_FROM,
    FakeTwilio,
    fake_twilio_fixture,
    settings_with_twilio,
)
from tests.support.pipeline import drain
from tests.support.ports import closed_port_url
from tests.support.twilio_requests import inbound_form, message_sid, signature, signed_headers
from workers import runtime
from workers.pump import sweep_once
from workers.replies import RETRY_DELAYS, enqueue_replies, send_replies
from workers.runtime import Runtime

SMS_URL = PUBLIC_URL + "/sms/twilio"
STATUS_URL = PUBLIC_URL + "/sms/twilio/status"
SERVICE_SID = "MG" + "7" * 32
ANA = "+584141234567"
BETO = "+584241234567"


# -- helpers -------------------------------------------------------------------------------


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


def sending_settings(rt: Runtime, fake: FakeTwilio, **changes: object) -> Settings:
    """Through the fake, with a sweep that finds every waiting reply stale at once."""
    return settings_with_twilio(rt.settings, fake, sweep_after_seconds=0, **changes)


def vote(client: FlaskClient, sender: str = ANA, body: str = "VOTO 3") -> None:
    form = inbound_form(sender, body)
    response = client.post(
        "/sms/twilio", data=form, headers=signed_headers(AUTH_TOKEN, SMS_URL, form)
    )
    assert response.status_code == 200


def replies(rt: Runtime) -> list[OutboundRow]:
    with rt.sessions() as session:
        return list(session.scalars(select(OutboundRow).order_by(OutboundRow.id)))


def the_reply(rt: Runtime) -> OutboundRow:
    [row] = replies(rt)
    return row


def queue_reply(rt: Runtime, recipient: str = ANA, body: str = "Hola") -> int:
    """A reply row as the intake job records it, before any send job runs."""
    now = utcnow()
    with rt.sessions() as session, session.begin():
        row = OutboundRow(
            provider="twilio",
            recipient=recipient,
            body=body,
            status="queued",
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row.id


def scheduled(rt: Runtime) -> list[datetime]:
    """When each delayed reply job is due (RQ keeps whole seconds, rounded down)."""
    registry = rt.queue(REPLIES_QUEUE).scheduled_job_registry
    return [registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()]


def backoff(rt: Runtime) -> float:
    """Seconds between the refusal being recorded and the one delayed job that sends again."""
    [due] = scheduled(rt)
    return (due - the_reply(rt).updated_at).total_seconds()


def waited(delay: float) -> Any:
    """A backoff of `delay` seconds, give or take RQ's rounding down to whole seconds."""
    return pytest.approx(delay - 0.5, abs=0.6)


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


def status_form(sid: str, status: str, error_code: str | None = None) -> dict[str, str]:
    """A status callback as Twilio posts it."""
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": TWILIO_FROM,
        "To": ANA,
        "MessageStatus": status,
        "SmsStatus": status,
        "ApiVersion": "2010-04-01",
    }
    if error_code:
        form["ErrorCode"] = error_code
    return form


def signed(form: dict[str, str]) -> dict[str, str]:
    """Signed as Twilio signs a status callback: over the StatusCallback URL we gave it."""
    return {"X-Twilio-Signature": signature(AUTH_TOKEN, STATUS_URL, form)}


def post_status(
    client: FlaskClient, form: dict[str, str], headers: dict[str, str] | None = None
) -> int:
    headers = signed(form) if headers is None else headers
    return client.post("/sms/twilio/status", data=form, headers=headers).status_code


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(
        rt.sessions,
        people=[
            ("V12345678", "C1", date(1990, 5, 1), [ANA]),
            ("V87654321", "C1", date(1985, 2, 3), [BETO]),
        ],
    )


@pytest.fixture
def sending(rt: Runtime, fake_twilio: FakeTwilio) -> Iterator[Runtime]:
    """The worker side sends through the fake Twilio."""
    with installed(sending_settings(rt, fake_twilio), rt) as built:
        yield built


@pytest.fixture
def sent_sid(client: FlaskClient, sending: Runtime, fake_twilio: FakeTwilio, registry: None) -> str:
    """A confirmed vote whose reply Twilio accepted: its SID."""
    vote(client)
    drain(sending)
    assert the_reply(sending).status == "sent"
    return fake_twilio.created[0]


# -- a reply is sent once, as Twilio expects it ---------------------------------------------


@pytest.mark.parametrize(
    ("changes", "sent_from", "service"),
    [
        pytest.param({}, TWILIO_FROM, None, id="from the configured number"),
        pytest.param(
            {"twilio_from": None, "twilio_messaging_service_sid": SERVICE_SID},
            None,
            SERVICE_SID,
            id="through a messaging service",
        ),
        pytest.param(
            {"twilio_messaging_service_sid": SERVICE_SID},
            None,
            SERVICE_SID,
            id="through the messaging service when a number is also set",
        ),
    ],
)
def test_a_confirmed_vote_is_posted_to_twilio_once_and_recorded_as_sent(
    client: FlaskClient,
    rt: Runtime,
    fake_twilio: FakeTwilio,
    registry: None,
    changes: dict[str, object],
    sent_from: str | None,
    service: str | None,
) -> None:
    with installed(sending_settings(rt, fake_twilio, **changes), rt) as worker:
        vote(client)
        drain(worker)
    [request] = fake_twilio.requests
    reply = the_reply(rt)
    assert (request.username, request.password) == (fake_twilio.account_sid, AUTH_TOKEN)
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert (request.to, request.from_, request.messaging_service_sid) == (ANA, sent_from, service)
    assert request.body == reply.body
    assert "voto registrado" in reply.body
    assert request.status_callback == STATUS_URL
    assert (reply.status, reply.provider_sid, reply.attempts) == ("sent", fake_twilio.created[0], 1)
    assert reply.error_code is None


# -- when the answers are recorded ---------------------------------------------------------


def commits_of(worker: Runtime) -> list[int]:
    """A list that grows by one at each commit on the worker's database connections."""
    seen: list[int] = []
    event.listen(worker.engine, "commit", lambda _connection: seen.append(1))
    return seen


def queue_replies(rt: Runtime, count: int) -> list[int]:
    """Replies to as many numbers (each under its own hourly cap)."""
    return [queue_reply(rt, recipient=f"+58414{n:07d}") for n in range(count)]


@dataclass(frozen=True)
class Recording:
    record_every: float
    commits: int
    seen_sent_when_the_last_group_went: int


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            Recording(record_every=3600, commits=3, seen_sent_when_the_last_group_went=8),
            id="fast answers: the first group times the sends, then the rest go in one claim",
        ),
        pytest.param(
            Recording(record_every=0, commits=4, seen_sent_when_the_last_group_went=16),
            id="slow answers: each group claimed and the last recorded while later sends wait",
        ),
    ],
)
def test_a_reply_job_claims_a_slice_at_a_time_and_records_the_answers_as_they_come(
    rt: Runtime, fake_twilio: FakeTwilio, case: Recording
) -> None:
    """A worker killed mid-job strands only what it claimed: the rest is still `queued`."""
    ids = queue_replies(rt, 20)  # sent in groups of 8, 8 and 4
    seen: list[tuple[int, int]] = []  # (sent, queued) as the first and the last group went

    def look() -> None:
        with rt.sessions() as session:
            statuses = list(session.scalars(select(OutboundRow.status)))
        seen.append((statuses.count("sent"), statuses.count("queued")))

    for n in range(20):
        fake_twilio.plan(201, before=look if n in (0, 16) else None)  # a group's first
    with installed(sending_settings(rt, fake_twilio), rt) as worker:
        commits = commits_of(worker)
        send_replies(ids, record_every=case.record_every)
    first, last = seen
    assert first == (0, 12)  # the first group claimed alone
    assert last == (case.seen_sent_when_the_last_group_went, 0)
    assert len(commits) == case.commits  # claims and answers, together when both are due
    assert [r.status for r in replies(rt)] == ["sent"] * 20


def test_redis_lost_between_two_claims_keeps_the_answers_and_leaves_the_rest_queued(
    rt: Runtime, fake_twilio: FakeTwilio
) -> None:
    """The next claim cannot count the hourly cap: the job fails, having recorded what it sent,
    and its retry sends the rest."""
    ids = queue_replies(rt, 20)
    redis_url = rt.settings.redis_url or ""
    port = urlsplit(redis_url).port
    relay = TcpProxy("127.0.0.1", port or 6379)
    try:
        fake_twilio.plan(201, before=relay.cut)  # Redis goes while the first group is sent
        settings = sending_settings(
            rt, fake_twilio, redis_url=redis_url.replace(f":{port}/", f":{relay.port}/")
        )
        with installed(settings, rt), pytest.raises(RedisError):
            send_replies(ids, record_every=3600)
        assert Counter(r.status for r in replies(rt)) == {"sent": 8, "queued": 12}
        relay.restore()
        with installed(settings, rt):
            send_replies(ids)  # as the job's retry runs it
    finally:
        relay.close()
    assert [r.status for r in replies(rt)] == ["sent"] * 20
    assert len(fake_twilio.requests) == 20


# -- what Twilio's answer decides -----------------------------------------------------------


@dataclass(frozen=True)
class Retryable:
    plans: list[dict[str, Any]] = field(default_factory=list)
    refused: bool = False  # the first attempt goes to a port nothing listens on
    error_code: str = ""
    requests_seen: int = 2


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            Retryable(plans=[{"status": 429, "code": 20429}], error_code="20429"),
            id="a 429 Too Many Requests was not processed",
        ),
        pytest.param(
            Retryable(plans=[{"status": 429, "code": 20429, "problem": True}], error_code="20429"),
            id="a 429 in RFC 9457 problem form was not processed",
        ),
        pytest.param(
            Retryable(refused=True, error_code="conn", requests_seen=1),
            id="a refused connection sent nothing",
        ),
    ],
)
def test_a_reply_twilio_surely_did_not_take_is_sent_again_after_a_backoff(
    client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio, registry: None, case: Retryable
) -> None:
    for plan in case.plans:
        fake_twilio.plan(**plan)
    first = {"twilio_api_base_url": closed_port_url()} if case.refused else {}
    with installed(sending_settings(rt, fake_twilio, **first), rt) as worker:
        vote(client)
        drain(worker)
        waiting = the_reply(rt)
        assert (waiting.status, waiting.error_code, waiting.provider_sid) == (
            "queued",
            case.error_code,
            None,
        )
        assert backoff(worker) == waited(RETRY_DELAYS[0])
    with installed(sending_settings(rt, fake_twilio), rt) as worker:
        assert run_scheduled(worker) == 1
    reply = the_reply(rt)
    assert (reply.status, reply.provider_sid, reply.attempts) == ("sent", fake_twilio.created[0], 2)
    assert len(fake_twilio.requests) == case.requests_seen


def test_a_reply_twilio_keeps_refusing_fails_after_the_last_backoff(
    client: FlaskClient, sending: Runtime, fake_twilio: FakeTwilio, registry: None
) -> None:
    for _ in range(len(RETRY_DELAYS) + 1):
        fake_twilio.plan(429, code=20429)
    vote(client)
    drain(sending)
    delays: list[float] = []
    while scheduled(sending):
        delays.append(backoff(sending))
        run_scheduled(sending)
    reply = the_reply(sending)
    assert (reply.status, reply.error_code, reply.attempts) == ("failed", "retries", 6)
    assert delays == [waited(delay) for delay in RETRY_DELAYS]
    assert len(fake_twilio.requests) == len(RETRY_DELAYS) + 1


@dataclass(frozen=True)
class Final:
    status: str
    error_code: str
    plan: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, object] = field(default_factory=dict)
    read_timeout: float | None = None  # how long the send waits on a hanging Twilio


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            Final("unknown", "20500", plan={"status": 500}),
            id="a 500 may have created the message",
        ),
        pytest.param(
            Final("unknown", "20503", plan={"status": 503}),
            id="a 503 may have created the message",
        ),
        pytest.param(
            Final(
                "unknown", "ReadTimeout", plan={"status": "hang", "seconds": 5}, read_timeout=0.5
            ),
            id="a read timeout may have created the message",
        ),
        pytest.param(
            Final("opted_out", "21610", plan={"status": 400, "code": 21610}),
            id="a 21610 means the voter opted out",
        ),
        pytest.param(
            Final("failed", "21211", plan={"status": 400, "code": 21211}),
            id="a 21211 invalid number is refused for good",
        ),
        pytest.param(
            Final("failed", "20003", changes={"twilio_auth_token": "not-the-token"}),
            id="wrong credentials are refused for good",
        ),
    ],
)
def test_a_reply_twilio_may_have_taken_or_refused_for_good_is_never_resent(
    client: FlaskClient,
    rt: Runtime,
    fake_twilio: FakeTwilio,
    registry: None,
    monkeypatch: pytest.MonkeyPatch,
    case: Final,
) -> None:
    if case.plan:
        fake_twilio.plan(**case.plan)
    settings = sending_settings(rt, fake_twilio, **case.changes)
    if case.read_timeout:
        monkeypatch.setattr(twilio, "TIMEOUT", (twilio.TIMEOUT[0], case.read_timeout))
    with installed(settings, rt) as worker:
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
    assert len(fake_twilio.requests) == 1
    assert (the_reply(rt).status, the_reply(rt).attempts) == (case.status, 1)


@pytest.mark.parametrize(
    ("at_once", "jobs"),
    [
        pytest.param(8, [200], id="an intake batch's 200 replies make one job"),
        pytest.param(8, [256, 256, 88], id="8 at once: jobs of 256, 32 full groups each"),
        pytest.param(48, [240, 240, 120], id="48 at once: jobs of 240, not 256 with 16 alone"),
        pytest.param(64, [256, 64], id="64 at once: jobs of 256, four full groups"),
    ],
)
def test_replies_are_queued_in_jobs_of_whole_groups(
    rt: Runtime, at_once: int, jobs: list[int]
) -> None:
    settings = rt.settings.with_(reply_sends_at_once=at_once)
    with installed(settings, rt) as worker:
        enqueue_replies(worker, list(range(1, sum(jobs) + 1)))
        queued = worker.queue(REPLIES_QUEUE).get_jobs()
    assert [len(job.args[0]) for job in queued] == jobs
    assert [i for job in queued for i in job.args[0]] == list(range(1, sum(jobs) + 1))


@pytest.mark.parametrize(
    ("replies", "at_once", "seconds"),
    [
        pytest.param(256, 8, 32 * 15 + 60, id="32 groups that all time out end inside the job"),
        pytest.param(1, 8, 15 + 60, id="one reply is one group"),
        pytest.param(200, 64, 4 * 15 + 60, id="a last group that is not full is still a group"),
    ],
)
def test_a_reply_job_may_run_as_long_as_its_sends_could_all_take(
    rt: Runtime, replies: int, at_once: int, seconds: int
) -> None:
    settings = rt.settings.with_(reply_sends_at_once=at_once)
    with installed(settings, rt) as worker:
        enqueue_replies(worker, list(range(1, replies + 1)))
        [job] = worker.queue(REPLIES_QUEUE).get_jobs()
    assert job.timeout == seconds


# -- a job that runs again sends nothing again ----------------------------------------------


def run_twice_in_a_row(worker: Runtime, reply_id: int) -> None:
    send_replies([reply_id])
    send_replies([reply_id])


def enqueue_twice(worker: Runtime, reply_id: int) -> None:
    enqueue_replies(worker, [reply_id])
    enqueue_replies(worker, [reply_id])
    drain(worker)


def run_by_two_workers_at_once(worker: Runtime, reply_id: int) -> None:
    threads = [threading.Thread(target=send_replies, args=([reply_id],)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_then_sweep(worker: Runtime, reply_id: int) -> None:
    send_replies([reply_id])
    sweep_once(worker)
    drain(worker)


@pytest.mark.parametrize(
    ("seconds_ago", "expected"),
    [
        pytest.param(300, ("unknown", "worker-died"), id="sending for longer than the sweep waits"),
        pytest.param(60, ("sending", None), id="sending for less: its job may still record it"),
    ],
)
def test_a_reply_a_killed_worker_left_sending_is_marked_unknown_and_never_sent_again(
    rt: Runtime, fake_twilio: FakeTwilio, seconds_ago: int, expected: tuple[str, str | None]
) -> None:
    """The worker died between the send and the record: the reply may have gone out."""
    row_id = queue_reply(rt)
    claimed_at = utcnow() - timedelta(seconds=seconds_ago)
    with rt.sessions() as session, session.begin():
        claim = update(OutboundRow).where(OutboundRow.id == row_id)
        session.execute(claim.values(status="sending", updated_at=claimed_at))
    with installed(sending_settings(rt, fake_twilio), rt) as worker:
        sweep_once(worker)
        drain(worker)
    reply = the_reply(rt)
    assert (reply.status, reply.error_code) == expected
    assert fake_twilio.requests == []


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(run_twice_in_a_row, id="the job run twice in a row"),
        pytest.param(enqueue_twice, id="the job enqueued twice"),
        pytest.param(run_by_two_workers_at_once, id="the job run by two workers at once"),
        pytest.param(run_then_sweep, id="the sweep after the job"),
    ],
)
def test_a_reply_job_that_runs_again_sends_nothing_again(
    sending: Runtime, fake_twilio: FakeTwilio, run: Callable[[Runtime, int], None]
) -> None:
    fake_twilio.plan(201, before=lambda: time.sleep(0.2))  # a slow Twilio: the runs overlap
    reply_id = queue_reply(sending)
    run(sending, reply_id)
    reply = the_reply(sending)
    assert len(fake_twilio.requests) == 1
    assert (reply.status, reply.provider_sid, reply.attempts) == ("sent", fake_twilio.created[0], 1)


# -- status callbacks -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("callbacks", "status", "error_code"),
    [
        pytest.param(["sent", "delivered"], "delivered", None, id="sent then delivered"),
        pytest.param(
            ["delivered", "sent"], "delivered", None, id="a late sent does not undo delivered"
        ),
        pytest.param(["delivered", "delivered"], "delivered", None, id="delivered twice"),
        pytest.param(
            ["queued", "sending", "sent"], "sent", None, id="early statuses leave it sent"
        ),
        pytest.param(["read"], "delivered", None, id="read counts as delivered"),
        pytest.param(
            ["sent", "undelivered:30003"],
            "undelivered",
            "30003",
            id="undelivered keeps the carrier error",
        ),
        pytest.param(
            ["failed:30007", "sent"], "failed", "30007", id="a late sent does not undo failed"
        ),
        pytest.param(
            ["delivered", "failed:30008"],
            "delivered",
            None,
            id="a final status is never replaced by another",
        ),
    ],
)
def test_status_callbacks_only_ever_move_a_reply_forward(
    client: FlaskClient,
    sending: Runtime,
    fake_twilio: FakeTwilio,
    sent_sid: str,
    callbacks: list[str],
    status: str,
    error_code: str | None,
) -> None:
    callback_url = fake_twilio.requests[0].status_callback
    assert callback_url == STATUS_URL  # what the gateway asked for is what Twilio signs
    for callback in callbacks:
        message_status, _, code = callback.partition(":")
        assert post_status(client, status_form(sent_sid, message_status, code or None)) == 204
    reply = the_reply(sending)
    assert (reply.status, reply.error_code) == (status, error_code)


def unsigned(form: dict[str, str]) -> dict[str, str]:
    return {}


def signed_with_another_token(form: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": signature("another-token", STATUS_URL, form)}


def signed_for_another_url(form: dict[str, str]) -> dict[str, str]:
    return {"X-Twilio-Signature": signature(AUTH_TOKEN, SMS_URL, form)}


@pytest.mark.parametrize(
    ("change", "sign", "answer"),
    [
        pytest.param({}, unsigned, 403, id="an unsigned callback is forbidden"),
        pytest.param(
            {},
            signed_with_another_token,
            403,
            id="a callback signed with another token is forbidden",
        ),
        pytest.param(
            {}, signed_for_another_url, 403, id="a callback signed for another URL is forbidden"
        ),
        pytest.param(
            {"MessageStatus": "teleported"},
            signed,
            400,
            id="an unknown MessageStatus is a bad request",
        ),
        pytest.param({"MessageSid": ""}, signed, 400, id="a missing MessageSid is a bad request"),
        pytest.param(
            {"MessageSid": message_sid()},
            signed,
            204,
            id="a SID we never sent is acknowledged and ignored",
        ),
    ],
)
def test_a_status_callback_that_cannot_be_trusted_or_matched_changes_nothing(
    client: FlaskClient,
    sending: Runtime,
    sent_sid: str,
    change: dict[str, str],
    sign: Callable[[dict[str, str]], dict[str, str]],
    answer: int,
) -> None:
    form = status_form(sent_sid, "delivered") | change
    assert post_status(client, form, sign(form)) == answer
    reply = the_reply(sending)
    assert (reply.status, reply.provider_sid) == ("sent", sent_sid)


def test_a_delivery_report_that_arrives_while_its_batch_is_still_sending_is_kept(
    client: FlaskClient, sending: Runtime, fake_twilio: FakeTwilio, registry: None
) -> None:
    answers: list[int] = []

    def report_the_first_delivered() -> None:
        # The two sends are in flight together: wait for the other one's answer, then report
        # it while this one is still held, before the job can record either.
        deadline = time.monotonic() + 5
        while not fake_twilio.created and time.monotonic() < deadline:
            time.sleep(0.01)
        answers.append(post_status(client, status_form(fake_twilio.created[0], "delivered")))

    fake_twilio.plan(201)
    fake_twilio.plan(201, before=report_the_first_delivered)
    vote(client, ANA)
    vote(client, BETO)
    drain(sending)  # one intake job, then one reply job that sends both replies at once
    by_sid = {row.provider_sid: row.status for row in replies(sending)}
    assert answers == [204]
    assert by_sid == {fake_twilio.created[0]: "delivered", fake_twilio.created[1]: "sent"}


# -- no provider configured -----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"twilio_account_sid": None}, id="without an account SID"),
        pytest.param({"twilio_auth_token": None}, id="without an auth token"),
    ],
)
def test_replies_stay_in_the_outbox_without_twilio_credentials(
    client: FlaskClient,
    rt: Runtime,
    fake_twilio: FakeTwilio,
    registry: None,
    changes: dict[str, object],
) -> None:
    with installed(sending_settings(rt, fake_twilio, **changes), rt) as worker:
        vote(client)
        drain(worker)
    reply = the_reply(rt)
    assert (reply.status, reply.provider_sid, reply.error_code) == ("outbox", None, None)
    assert fake_twilio.requests == []
