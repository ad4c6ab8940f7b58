"""The Twilio webhook as a table of requests: who gets in, what is recorded, what is refused."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gateway.models import InboundRow
from gateway.queues import INTAKE_LIST
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.support.twilio_requests import inbound_form, signature
from workers.runtime import Runtime

URL = PUBLIC_URL + "/sms/twilio"


@dataclass(frozen=True)
class Case:
    label: str
    form: dict[str, str] = field(default_factory=lambda: inbound_form("+584141234567", "VOTO 3"))
    sign_with: str | None = AUTH_TOKEN
    signed_url: str = URL
    path: str = "/sms/twilio"
    status: int = 200
    recorded: int = 1
    sender: str | None = "+584141234567"


def drop(field_name: str) -> dict[str, str]:
    form = inbound_form("+584141234567", "VOTO 3")
    del form[field_name]
    return form


CASES = [
    Case("a correctly signed vote is recorded and acknowledged"),
    Case("a national-format sender is stored in E.164", form=inbound_form("04141234567", "VOTO 3")),
    Case("an unsigned request is refused", sign_with=None, status=403, recorded=0),
    Case(
        "a request signed with another token is refused",
        sign_with="not-the-token",
        status=403,
        recorded=0,
    ),
    Case(
        "a request signed for the internal URL behind a proxy is refused",
        signed_url="http://localhost/sms/twilio",
        status=403,
        recorded=0,
    ),
    Case(
        "a query string is part of what Twilio signed",
        path="/sms/twilio?source=main",
        signed_url=URL + "?source=main",
    ),
    Case(
        "a request whose signature covers another query is refused",
        path="/sms/twilio?source=other",
        signed_url=URL + "?source=main",
        status=403,
        recorded=0,
    ),
    Case("a missing MessageSid is a clear 400", form=drop("MessageSid"), status=400, recorded=0),
    Case("a missing From is a clear 400", form=drop("From"), status=400, recorded=0),
    Case("a missing Body is a clear 400", form=drop("Body"), status=400, recorded=0),
    Case(
        "a SID that is not Twilio's is a clear 400",
        form=inbound_form("+584141234567", "VOTO 3", sid="hello"),
        status=400,
        recorded=0,
    ),
    Case(
        "a body over Twilio's 1,600 characters is a clear 400",
        form=inbound_form("+584141234567", "3" * 1601),
        status=400,
        recorded=0,
    ),
    Case(
        "an empty body is recorded: the worker answers with help",
        form=inbound_form("+584141234567", ""),
    ),
    Case(
        "an unknown extra parameter Twilio adds is accepted",
        form=inbound_form("+584141234567", "VOTO 3", FromCountry="VE", NewField="x"),
    ),
    Case(
        "a STOP is recorded like any message: it is the worker that never counts it",
        form=inbound_form("+584141234567", "STOP"),
    ),
    Case(
        "an accented body in UTF-8 is recorded",
        form=inbound_form("+584141234567", "Votación 3 ¡sí!"),
    ),
]


def post(client: FlaskClient, case: Case) -> int:
    headers = {}
    if case.sign_with:
        headers["X-Twilio-Signature"] = signature(case.sign_with, case.signed_url, case.form)
    return client.post(case.path, data=case.form, headers=headers).status_code


def recorded(rt: Runtime) -> list[InboundRow]:
    with rt.sessions() as session:
        return list(session.scalars(select(InboundRow)))


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_webhook_request(client: FlaskClient, rt: Runtime, case: Case) -> None:
    assert post(client, case) == case.status
    rows = recorded(rt)
    assert len(rows) == case.recorded
    assert rt.redis.llen(INTAKE_LIST) == case.recorded
    if case.recorded:
        assert rows[0].sender == case.sender
        assert rows[0].body == case.form["Body"]
        assert rows[0].status == "pending"


def test_the_acknowledgement_is_an_empty_twiml_response(client: FlaskClient) -> None:
    form = inbound_form("+584141234567", "VOTO 3")
    response = client.post(
        "/sms/twilio", data=form, headers={"X-Twilio-Signature": signature(AUTH_TOKEN, URL, form)}
    )
    assert response.mimetype == "text/xml"
    assert response.data.decode().endswith("<Response/>")


def raw_post(client: FlaskClient, body: bytes, form_for_signature: dict[str, str]) -> int:
    headers = {
        "X-Twilio-Signature": signature(AUTH_TOKEN, URL, form_for_signature),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return client.post("/sms/twilio", data=body, headers=headers).status_code


def test_a_body_that_is_not_utf8_is_a_clear_400_and_changes_nothing(
    client: FlaskClient, rt: Runtime
) -> None:
    form = inbound_form("+584141234567", "x")
    body = b"&".join(f"{k}={v}".encode() for k, v in form.items() if k != "Body") + b"&Body=%E9t%E9"
    assert raw_post(client, body, form) == 400
    assert recorded(rt) == []


def test_an_oversized_body_is_refused_with_413_and_changes_nothing(
    app: Flask, client: FlaskClient, rt: Runtime
) -> None:
    form = inbound_form("+584141234567", "x" * (app.config["MAX_CONTENT_LENGTH"] + 10))
    status = client.post(
        "/sms/twilio", data=form, headers={"X-Twilio-Signature": signature(AUTH_TOKEN, URL, form)}
    ).status_code
    assert status == 413
    assert recorded(rt) == []


def test_a_redelivery_with_the_same_sid_is_acknowledged_and_not_queued_again(
    client: FlaskClient, rt: Runtime
) -> None:
    case = Case("same SID twice")
    assert post(client, case) == 200
    assert post(client, case) == 200
    assert len(recorded(rt)) == 1
    assert rt.redis.llen(INTAKE_LIST) == 1


def test_errors_are_plain_text_never_html(client: FlaskClient) -> None:
    response = client.post("/sms/twilio", data={"Body": "x"})
    assert response.status_code == 403
    assert response.mimetype == "text/plain"
    assert b"X-Twilio-Signature" in response.data


def test_health_reports_database_and_redis(client: FlaskClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok", "database": "ok", "redis": "ok"}


def test_a_message_is_recorded_even_when_redis_is_down(
    client: FlaskClient, app: Flask, rt: Runtime
) -> None:
    """Commit first: the sweep, not Redis, is what guarantees the message is processed."""
    from redis import Redis

    app.extensions["consulta"].redis = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    assert post(client, Case("redis down")) == 200
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundRow)) == 1
