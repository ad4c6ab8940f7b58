"""A vote by SMS, end to end: webhook, batch job, stored vote, queued reply."""

from __future__ import annotations

from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.support.factories import seed
from tests.support.pipeline import drain
from tests.support.twilio_requests import inbound_form, signed_headers
from workers.runtime import Runtime

URL = PUBLIC_URL + "/sms/twilio"
ANA = "+584141234567"


def post_sms(client: FlaskClient, sender: str, body: str, sid: str | None = None) -> int:
    form = inbound_form(sender, body, sid)
    response = client.post("/sms/twilio", data=form, headers=signed_headers(AUTH_TOKEN, URL, form))
    return response.status_code


def replies_to(rt: Runtime, number: str) -> list[str]:
    with rt.sessions() as session:
        # The number is sealed at rest, so the match is made on the clear values in Python.
        rows = session.execute(
            select(OutboundRow.recipient, OutboundRow.body).order_by(OutboundRow.id)
        )
        return [body for recipient, body in rows if recipient == number]


def count(rt: Runtime, table: type) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(rt.sessions, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])


def test_a_signed_vote_is_stored_once_and_confirmed_with_a_receipt(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    assert post_sms(client, ANA, "VOTO 3") == 200
    drain(rt)
    assert count(rt, VoteRow) == 1
    assert count(rt, ParticipationRow) == 1
    [reply] = replies_to(rt, ANA)
    assert "registrado" in reply
    with rt.sessions() as session:
        receipt = session.scalar(select(VoteRow.receipt))
        assert session.scalar(select(OutboundRow.status)) == "outbox"
    assert receipt
    assert receipt in reply


def test_a_second_vote_under_first_policy_gets_the_original_receipt(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    post_sms(client, ANA, "VOTO 3")
    drain(rt)
    post_sms(client, ANA, "VOTO 2")
    drain(rt)
    first, second = replies_to(rt, ANA)
    with rt.sessions() as session:
        receipt = session.scalar(select(VoteRow.receipt))
        assert session.scalar(select(VoteRow.option)) == 3
    assert receipt in first
    assert receipt in second
    assert "Ya votaste" in second


def test_a_redelivered_message_is_acknowledged_and_changes_nothing(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    sid = "SM" + "a" * 32
    assert post_sms(client, ANA, "VOTO 3", sid) == 200
    assert post_sms(client, ANA, "VOTO 3", sid) == 200
    drain(rt)
    assert count(rt, InboundRow) == 1
    assert count(rt, VoteRow) == 1
    assert len(replies_to(rt, ANA)) == 1


def test_a_receipt_check_says_counted_without_revealing_the_choice(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    post_sms(client, ANA, "VOTO 3")
    drain(rt)
    with rt.sessions() as session:
        receipt = session.scalar(select(VoteRow.receipt))
    assert receipt
    post_sms(client, "+584269998877", f"recibo {receipt.lower().replace('-', '')}")
    post_sms(client, "+584269998877", "RECIBO ZZZ-ZZZ-ZZZ")
    drain(rt)
    counted, unknown = replies_to(rt, "+584269998877")
    assert f"Recibo {receipt}: el voto fue contado" in counted
    assert "3" not in counted.replace(receipt, "")
    assert "No encontramos el recibo ZZZ-ZZZ-ZZZ" in unknown


def test_under_the_last_policy_a_later_vote_replaces_and_the_old_receipt_says_so(
    client: FlaskClient, rt: Runtime
) -> None:
    seed(rt.sessions, revote="last", people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])
    post_sms(client, ANA, "VOTO 3")
    drain(rt)
    post_sms(client, ANA, "VOTO 4")
    drain(rt)
    with rt.sessions() as session:
        votes = session.execute(select(VoteRow.option, VoteRow.replaced_at, VoteRow.receipt)).all()
    counted = [option for option, replaced, _ in votes if replaced is None]
    assert counted == [4]
    old_receipt = next(receipt for _, replaced, receipt in votes if replaced is not None)
    post_sms(client, ANA, f"RECIBO {old_receipt}")
    drain(rt)
    *_, replaced_reply, check = replies_to(rt, ANA)
    assert "reemplaza" in replaced_reply
    assert "reemplazado por un voto posterior" in check
