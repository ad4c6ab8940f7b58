"""`consulta reconcile`: what Twilio received against what the gateway stored, and the repair."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gateway.cli import main
from gateway.models import ConsultationRow, InboundRow, OperatorActionRow, VoteRow
from gateway.queues import INTAKE_LIST
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, SECRET
from tests.support.factories import Seeded, seed
from tests.support.fake_twilio import FakeTwilio, fake_twilio_fixture, webhook_form
from tests.support.pipeline import drain
from tests.support.twilio_requests import inbound_form, signed_headers
from workers.runtime import Runtime

__all__ = ["fake_twilio_fixture"]  # the fixture, imported so pytest finds it here

SLUG = "cpn-2026"
VOTERS = ["+584141234567", "+584241234568", "+584161234569", "+584261234570"]
# Wide of the test run on purpose: tests run minutes after these are read.
SINCE = (datetime.now(UTC) - timedelta(hours=6)).isoformat()
LATER = (datetime.now(UTC) + timedelta(hours=6)).isoformat()


@pytest.fixture
def registry(rt: Runtime) -> Seeded:
    people = [
        (f"V{10000000 + i}", "C1", date(1990, 5, 1), [phone]) for i, phone in enumerate(VOTERS)
    ]
    return seed(rt.sessions, slug=SLUG, people=people)


@pytest.fixture
def consulta(settings: Settings, fake_twilio: FakeTwilio) -> CliRunner:
    """The command as an operator runs it, against these databases and the fake Twilio."""
    fake_twilio.max_page_size = 2  # so that even a short list is read page by page
    return CliRunner(
        env={
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": settings.redis_url or "",
            "CONSULTA_SECRET": SECRET,
            **fake_twilio.env(),
        }
    )


def run(runner: CliRunner, *args: str, **env: str) -> Result:
    return runner.invoke(main, ["reconcile", SLUG, *args], env=env or None)


def deliver(client: FlaskClient, message: dict[str, Any]) -> None:
    """The webhook Twilio makes for a message in its log, signed as Twilio signs it."""
    form = webhook_form(message)
    url = PUBLIC_URL + "/sms/twilio"
    response = client.post("/sms/twilio", data=form, headers=signed_headers(AUTH_TOKEN, url, form))
    assert response.status_code == 200, response.text


def count(rt: Runtime, table: type, *where: Any) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(table).where(*where)) or 0


@pytest.fixture
def half_delivered(client: FlaskClient, fake_twilio: FakeTwilio, registry: Seeded) -> list[str]:
    """Four votes Twilio received; the webhooks of the last two never reached the gateway."""
    received = [fake_twilio.receive(phone, f"VOTO {n}") for n, phone in enumerate(VOTERS, 1)]
    for message in received[:2]:
        deliver(client, message)
    fake_twilio.receive(VOTERS[0], "VOTO 1", to="+582125559999")  # another number: not ours
    fake_twilio.receive(VOTERS[1], "Gracias", direction="outbound-api")  # our own reply
    fake_twilio.receive(VOTERS[2], "VOTO 2", at=datetime.now(UTC) - timedelta(days=2))  # before
    return [message["sid"] for message in received[2:]]


def test_reconcile_records_and_queues_exactly_the_missing_messages_and_they_are_counted(
    consulta: CliRunner, rt: Runtime, half_delivered: list[str]
) -> None:
    result = run(consulta, "--since", SINCE)
    assert result.exit_code == 0, result.output
    assert "Twilio received: 4 inbound messages" in result.output
    assert "gateway stored:  2" in result.output
    assert "missing at the gateway: 2" in result.output
    assert all(sid in result.output for sid in half_delivered)
    assert "stored but not in Twilio's list: 0" in result.output
    assert "recorded and queued: 2" in result.output
    assert not any(phone in result.output for phone in VOTERS)  # masked, never in clear
    assert rt.redis.llen(INTAKE_LIST) == 4  # two by webhook, two by the reconciliation
    drain(rt)
    assert count(rt, VoteRow) == 4
    assert count(rt, InboundRow, InboundRow.status == "done") == 4


def test_a_second_reconciliation_finds_nothing_missing_and_records_nothing(
    consulta: CliRunner, rt: Runtime, half_delivered: list[str]
) -> None:
    assert run(consulta, "--since", SINCE).exit_code == 0
    drain(rt)
    again = run(consulta, "--since", SINCE)
    assert again.exit_code == 0, again.output
    assert "Twilio received: 4 inbound messages" in again.output
    assert "gateway stored:  4" in again.output
    assert "missing at the gateway: 0" in again.output
    assert "nothing to record" in again.output
    assert count(rt, InboundRow) == 4
    assert count(rt, VoteRow) == 4
    assert count(rt, OperatorActionRow, OperatorActionRow.action == "reconcile") == 1


def test_a_recorded_message_keeps_the_time_twilio_received_it(
    consulta: CliRunner, rt: Runtime, half_delivered: list[str], fake_twilio: FakeTwilio
) -> None:
    sent_at = (datetime.now(UTC) - timedelta(minutes=30)).replace(microsecond=0)
    late = fake_twilio.receive(VOTERS[3], "VOTO 4", at=sent_at)
    assert run(consulta, "--since", SINCE).exit_code == 0
    with rt.sessions() as session:
        received = session.scalar(
            select(InboundRow.received_at).where(InboundRow.external_id == late["sid"])
        )
    assert received == sent_at  # so the window rules judge when the voter sent it


def test_a_dry_run_lists_what_is_missing_and_changes_nothing(
    consulta: CliRunner, rt: Runtime, half_delivered: list[str]
) -> None:
    queued = rt.redis.llen(INTAKE_LIST)
    result = run(consulta, "--since", SINCE, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "missing at the gateway: 2" in result.output
    assert all(sid in result.output for sid in half_delivered)
    assert "dry run: nothing recorded" in result.output
    assert count(rt, InboundRow) == 2
    assert rt.redis.llen(INTAKE_LIST) == queued
    assert count(rt, OperatorActionRow) == 0


def test_a_message_the_gateway_has_but_twilio_never_listed_is_reported(
    consulta: CliRunner, client: FlaskClient, registry: Seeded
) -> None:
    # Signed with our token but unknown to Twilio: a leaked token, or `consulta simulate`.
    form = inbound_form(VOTERS[0], "VOTO 1", "SM" + "f" * 32)
    url = PUBLIC_URL + "/sms/twilio"
    response = client.post("/sms/twilio", data=form, headers=signed_headers(AUTH_TOKEN, url, form))
    assert response.status_code == 200
    result = run(consulta, "--since", SINCE)
    assert result.exit_code == 0, result.output
    assert "Twilio received: 0 inbound messages" in result.output
    assert "stored but not in Twilio's list: 1" in result.output
    assert "SM" + "f" * 32 in result.output
    assert VOTERS[0] not in result.output


def test_messages_over_a_senders_flood_limit_are_listed_apart_and_not_recorded(
    consulta: CliRunner, rt: Runtime, registry: Seeded, fake_twilio: FakeTwilio
) -> None:
    # The webhook answers 200 to these and stores nothing: they were refused, not lost.
    start = datetime.now(UTC) - timedelta(minutes=10)
    for second in range(12):  # the default limit is 10 a minute per sender
        fake_twilio.receive(VOTERS[0], "VOTO 1", at=start + timedelta(seconds=second))
    result = run(consulta, "--since", SINCE)
    assert result.exit_code == 0, result.output
    assert "Twilio received: 12 inbound messages" in result.output
    assert "missing at the gateway: 10" in result.output
    assert "over a sender's flood limit, refused as at the webhook: 2" in result.output
    assert "recorded and queued: 10" in result.output
    assert count(rt, InboundRow) == 10


def test_a_certified_consultation_is_not_repaired(
    consulta: CliRunner, rt: Runtime, half_delivered: list[str]
) -> None:
    with rt.sessions() as session, session.begin():
        session.scalars(select(ConsultationRow)).one().status = "certified"
    result = run(consulta, "--since", SINCE)
    assert result.exit_code == 1
    assert "missing at the gateway: 2" in result.output
    assert "certified" in result.output
    assert count(rt, InboundRow) == 2


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--since", "8/3/2026"], {}, "'8/3/2026' is not an ISO date and time"),
        (["--since", "yesterday"], {}, "is not an ISO date and time"),
        (["--since", SINCE, "--until", "2020-01-01T00:00"], {}, "earlier than --until"),
        (["--since", LATER], {}, "in the future"),
        (["--since", SINCE, "--to", "not-a-number"], {}, "is not a phone number"),
        (["--since", SINCE], {"TWILIO_FROM": ""}, "which numbers do voters text?"),
        (["--since", SINCE], {"TWILIO_ACCOUNT_SID": ""}, "TWILIO_ACCOUNT_SID"),
        (["--since", SINCE], {"TWILIO_AUTH_TOKEN": "wrong"}, "HTTP 401"),
    ],
    ids=[
        "a date that is not ISO is refused",
        "a word for a date is refused",
        "a window that ends before it starts is refused",
        "a window that starts in the future is refused",
        "a number that is not a phone number is refused",
        "without --to or TWILIO_FROM the command asks which numbers are ours",
        "without Twilio credentials the command says which are missing",
        "credentials Twilio refuses are reported, not raised",
    ],
)
def test_a_mistake_gets_a_clear_message_and_never_a_traceback(
    consulta: CliRunner,
    rt: Runtime,
    registry: Seeded,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    result = run(consulta, *args, **env)
    assert result.exit_code in {1, 2}, result.output
    assert message in result.output
    assert isinstance(result.exception, SystemExit)  # click's own exit, not an error escaping
    assert "Traceback" not in result.output
    assert count(rt, InboundRow) == 0


def test_an_unknown_consultation_is_named(consulta: CliRunner, registry: Seeded) -> None:
    result = consulta.invoke(main, ["reconcile", "nope", "--since", SINCE])
    assert result.exit_code == 1
    assert "there is no consultation 'nope'" in result.output


def test_twilio_failing_to_list_is_reported_and_nothing_is_recorded(
    consulta: CliRunner, rt: Runtime, half_delivered: list[str], fake_twilio: FakeTwilio
) -> None:
    fake_twilio.plan(200)
    fake_twilio.plan(503)  # the second page fails
    result = run(consulta, "--since", SINCE)
    assert result.exit_code == 1
    assert "Twilio's message list could not be read: HTTP 503" in result.output
    assert count(rt, InboundRow) == 2
