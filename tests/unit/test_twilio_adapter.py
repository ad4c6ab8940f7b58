"""The Twilio adapter on its own: parsing webhooks, ranking statuses, signatures, send outcomes.

No database: signatures come from the SDK's own RequestValidator, and sends go to a local
stand-in for Twilio's API (`tests/support/fake_twilio.py`) over real connections. Only what this
machine cannot reach is faked, at the socket: a name that does not resolve, a host that never
answers.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NoReturn

import pytest
from werkzeug.datastructures import MultiDict

from gateway.providers import keepalive, twilio
from gateway.providers.base import BadRequestError, InboundMessage, SendOutcome
from gateway.settings import Settings
from tests.support.fake_twilio import (  # noqa: F401 - fake_twilio_fixture is a fixture
    ACCOUNT_SID,
    TWILIO_FROM,
    FakeTwilio,
    fake_twilio_fixture,
    settings_with_twilio,
)
from tests.support.ports import closed_port_url
from tests.support.twilio_requests import inbound_form, message_sid, signature

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ANA = "+584141234567"
TOKEN = "test-auth-token"
URL = "https://consulta.example.org/sms/twilio"

# -- parse_inbound ----------------------------------------------------------------------------


def without(name: str) -> dict[str, str]:
    form = inbound_form(ANA, "VOTO 3")
    del form[name]
    return form


@pytest.mark.parametrize(
    ("form", "complaint"),
    [
        pytest.param(without("MessageSid"), "missing field: MessageSid", id="no MessageSid"),
        pytest.param(
            inbound_form(ANA, "VOTO 3") | {"MessageSid": ""},
            "missing field: MessageSid",
            id="an empty MessageSid",
        ),
        pytest.param(without("From"), "missing field: From", id="no From"),
        pytest.param(without("To"), "missing field: To", id="no To"),
        pytest.param(without("Body"), "missing field: Body", id="no Body"),
        pytest.param(
            {"Body": "VOTO 3"},
            "missing field: MessageSid, From, To",
            id="several missing fields are all named",
        ),
        pytest.param(
            inbound_form(ANA, "x", sid="hello"),
            "not a Twilio message SID",
            id="a SID that is not Twilio's",
        ),
        pytest.param(
            inbound_form(ANA, "x", sid="SM" + "a" * 31),
            "not a Twilio message SID",
            id="a SID one character short",
        ),
        pytest.param(
            inbound_form(ANA, "x", sid="SM" + "a" * 33),
            "not a Twilio message SID",
            id="a SID one character long",
        ),
        pytest.param(
            inbound_form(ANA, "x", sid="AC" + "a" * 32),
            "not a Twilio message SID",
            id="an account SID instead of a message SID",
        ),
        pytest.param(
            inbound_form(ANA, "x", sid="sm" + "a" * 32),
            "not a Twilio message SID",
            id="a SID with a lower-case prefix",
        ),
        pytest.param(
            inbound_form(ANA, "x", sid="SM" + "a" * 31 + "-"),
            "not a Twilio message SID",
            id="a SID with punctuation",
        ),
        pytest.param(
            inbound_form(ANA, "3" * 1601),
            "longer than 1600",
            id="a body one character over Twilio's limit",
        ),
    ],
)
def test_an_inbound_webhook_twilio_would_not_send_is_a_bad_request(
    form: dict[str, str], complaint: str
) -> None:
    with pytest.raises(BadRequestError, match=complaint):
        twilio.parse_inbound(form, RECEIVED, "VE")


@pytest.mark.parametrize(
    ("sender", "stored"),
    [
        pytest.param("+584141234567", "+584141234567", id="E.164 stays as it is"),
        pytest.param("584141234567", "+584141234567", id="a full number without its plus"),
        pytest.param("04141234567", "+584141234567", id="the national format in Venezuela"),
        pytest.param("0414-123.45.67", "+584141234567", id="the national format with separators"),
        pytest.param("+58 414 1234567", "+584141234567", id="an international format with spaces"),
        pytest.param("+12125551234", "+12125551234", id="a foreign number keeps its country"),
        pytest.param("12345", "12345", id="a short code is kept as it came"),
        pytest.param("Movistar", "Movistar", id="an alphanumeric sender is kept as it came"),
        pytest.param("X" * 40, "X" * 32, id="an over-long sender is cut to the column's width"),
    ],
)
def test_an_inbound_sender_is_stored_in_e164_when_it_is_a_phone_number(
    sender: str, stored: str
) -> None:
    message = twilio.parse_inbound(inbound_form(sender, "VOTO 3"), RECEIVED, "VE")
    assert message.sender == stored


@pytest.mark.parametrize(
    ("sid", "body"),
    [
        pytest.param("SM" + "0123456789abcdef" * 2, "VOTO 3", id="an SMS"),
        pytest.param("MM" + "0123456789ABCDEF" * 2, "VOTO 3", id="an MMS"),
        pytest.param(message_sid(), "", id="an empty body"),
        pytest.param(message_sid(), "3" * 1600, id="a body of exactly 1,600 characters"),
        pytest.param(message_sid(), "Votación 3 ¡sí! 🗳", id="a body beyond GSM-7"),
    ],
)
def test_a_valid_inbound_webhook_becomes_the_message_it_carries(sid: str, body: str) -> None:
    form = inbound_form(ANA, body, sid=sid, To="0212-555.00.00", FromCountry="VE")
    assert twilio.parse_inbound(form, RECEIVED, "VE") == InboundMessage(
        provider="twilio",
        external_id=sid,
        sender=ANA,
        recipient="+582125550000",
        body=body,
        received_at=RECEIVED,
        channel="sms",
    )


# -- parse_status and status_rank -------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "parsed"),
    [
        *[
            pytest.param(
                {"MessageSid": "SM1", "MessageStatus": theirs},
                ("SM1", ours, None),
                id=f"{theirs} is {ours}",
            )
            for theirs, ours in twilio.STATUS_MAPPING.items()
        ],
        pytest.param(
            {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"},
            ("SM1", "undelivered", "30003"),
            id="an error code is kept",
        ),
        pytest.param(
            {"MessageSid": "SM1", "MessageStatus": "delivered", "ErrorCode": ""},
            ("SM1", "delivered", None),
            id="an empty error code is none",
        ),
    ],
)
def test_a_status_callback_gives_the_sid_our_status_and_the_error(
    form: dict[str, str], parsed: tuple[str, str, str | None]
) -> None:
    assert twilio.parse_status(form) == parsed


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"MessageStatus": "delivered"}, id="no MessageSid"),
        pytest.param({"MessageSid": "", "MessageStatus": "delivered"}, id="an empty MessageSid"),
        pytest.param({"MessageSid": "SM1"}, id="no MessageStatus"),
        pytest.param(
            {"MessageSid": "SM1", "MessageStatus": "teleported"},
            id="a MessageStatus Twilio does not send",
        ),
        pytest.param(
            {"MessageSid": "SM1", "MessageStatus": "Delivered"},
            id="a MessageStatus in the wrong case",
        ),
    ],
)
def test_a_status_callback_without_a_sid_or_a_known_status_is_a_bad_request(
    form: dict[str, str],
) -> None:
    with pytest.raises(BadRequestError):
        twilio.parse_status(form)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        pytest.param("queued", "sending", id="sending comes after queued"),
        pytest.param("queued", "unknown", id="unknown comes after queued"),
        pytest.param("sending", "sent", id="sent comes after sending"),
        pytest.param("unknown", "sent", id="sent comes after unknown"),
        pytest.param("sent", "delivered", id="delivered comes after sent"),
        pytest.param("sent", "undelivered", id="undelivered comes after sent"),
        pytest.param("sent", "failed", id="failed comes after sent"),
    ],
)
def test_a_reply_status_ranks_below_every_status_that_can_follow_it(
    earlier: str, later: str
) -> None:
    assert twilio.status_rank(earlier) < twilio.status_rank(later)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        pytest.param("sending", "unknown", id="sending and unknown are both in flight"),
        pytest.param("delivered", "undelivered", id="delivered and undelivered are both final"),
        pytest.param("delivered", "failed", id="delivered and failed are both final"),
        pytest.param("failed", "opted_out", id="failed and opted out are both final"),
        pytest.param("delivered", "outbox", id="delivered and outbox are both final"),
    ],
)
def test_statuses_that_cannot_follow_each_other_rank_the_same(one: str, other: str) -> None:
    assert twilio.status_rank(one) == twilio.status_rank(other)


@pytest.mark.parametrize("callback_status", sorted(set(twilio.STATUS_MAPPING.values())))
def test_no_status_a_callback_brings_ranks_below_sent(callback_status: str) -> None:
    assert twilio.status_rank(callback_status) >= twilio.status_rank("sent")


# -- verify -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    signed_url: str = URL
    checked_url: str = URL
    checked_token: str = TOKEN  # the token verify() is given; Twilio signed with TOKEN
    signed_form: Any = field(
        default_factory=lambda: inbound_form(ANA, "VOTO 3", sid="SM" + "a" * 32)
    )
    checked_form: Any = None  # the same form unless given
    header: str | None = "computed"  # "computed": the signature of what was signed


def tampered() -> dict[str, str]:
    return inbound_form(ANA, "VOTO 4", sid="SM" + "a" * 32)


@pytest.mark.parametrize(
    ("case", "valid"),
    [
        pytest.param(Signed(), True, id="the right token over the public URL is valid"),
        pytest.param(Signed(checked_token="another-token"), False, id="another token is refused"),
        pytest.param(Signed(header=None), False, id="a missing header is refused"),
        pytest.param(Signed(header=""), False, id="an empty header is refused"),
        pytest.param(
            Signed(header="bm90IGEgc2lnbmF0dXJl"), False, id="a made-up header is refused"
        ),
        pytest.param(Signed(checked_form=tampered()), False, id="a changed parameter is refused"),
        pytest.param(Signed(checked_form={}), False, id="dropped parameters are refused"),
        pytest.param(
            Signed(signed_url="https://consulta.example.org:443/sms/twilio"),
            True,
            id="signed with the default port, checked without it",
        ),
        pytest.param(
            Signed(checked_url="https://consulta.example.org:443/sms/twilio"),
            True,
            id="signed without the default port, checked with it",
        ),
        pytest.param(
            Signed(signed_url="https://consulta.example.org:8443/sms/twilio"),
            False,
            id="another port is part of what was signed",
        ),
        pytest.param(
            Signed(signed_url="http://localhost:8000/sms/twilio"),
            False,
            id="the internal URL behind a proxy is not the one Twilio signed",
        ),
        pytest.param(
            Signed(signed_url=URL + "?source=main", checked_url=URL + "?source=main"),
            True,
            id="the query string is part of what was signed",
        ),
        pytest.param(
            Signed(signed_url=URL + "?source=main"),
            False,
            id="a signature over a query does not fit the URL without it",
        ),
        pytest.param(
            Signed(signed_url=URL + "?source=main", checked_url=URL + "?source=other"),
            False,
            id="a signature over one query does not fit another",
        ),
        pytest.param(
            Signed(signed_form=MultiDict([("Body", "1"), ("Body", "2")])),
            True,
            id="repeated keys signed and checked together are valid",
        ),
        pytest.param(
            Signed(
                signed_form=MultiDict([("Body", "1"), ("Body", "2")]),
                checked_form=MultiDict([("Body", "1")]),
            ),
            False,
            id="a repeated key that lost a value is refused",
        ),
    ],
)
def test_only_a_signature_over_exactly_what_twilio_sent_is_valid(case: Signed, valid: bool) -> None:
    header = case.header
    if header == "computed":
        header = signature(TOKEN, case.signed_url, case.signed_form)
    form = case.signed_form if case.checked_form is None else case.checked_form
    assert twilio.verify(case.checked_token, case.checked_url, form, header) is valid


# -- send -------------------------------------------------------------------------------------


@pytest.fixture
def through_fake(fake_twilio: FakeTwilio) -> Iterator[Settings]:
    """Settings that send through the fake, on connections opened afresh for this test."""
    keepalive.close_connections()
    yield settings_with_twilio(Settings(), fake_twilio)
    keepalive.close_connections()


@dataclass(frozen=True)
class Answer:
    label: str
    outcome: SendOutcome
    error_code: str | None
    plan: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, object] = field(default_factory=dict)
    network: str | None = None  # "unresolved" or "connect-timeout": what DNS or TCP does


ANSWERS = [
    Answer("an accepted create is sent with its SID", SendOutcome.SENT, None),
    Answer("a 429 is safe to retry", SendOutcome.RETRY, "20429", {"status": 429}),
    Answer("a 429 as an RFC 9457 problem is safe to retry", SendOutcome.RETRY, "20429",
           {"status": 429, "problem": True}),
    Answer("a 21610 means the recipient opted out", SendOutcome.OPTED_OUT, "21610",
           {"status": 400, "code": 21610}),
    Answer("a 21610 as an RFC 9457 problem means the recipient opted out", SendOutcome.OPTED_OUT,
           "21610", {"status": 400, "code": 21610, "problem": True}),
    Answer("a 400 with another code fails for good", SendOutcome.FAILED, "21211",
           {"status": 400, "code": 21211}),
    Answer("wrong credentials fail for good", SendOutcome.FAILED, "20003",
           changes={"twilio_auth_token": "not-the-token"}),
    Answer("a 500 may have created the message", SendOutcome.UNKNOWN, "20500", {"status": 500}),
    Answer("a 502 without a Twilio code is known by its status", SendOutcome.UNKNOWN, "502",
           {"status": 502}),
    Answer("a proxy's HTML error page is known by its status", SendOutcome.UNKNOWN, "503",
           {"status": 503, "raw": "<html><body>Service Unavailable</body></html>"}),
    Answer("a 4xx that is not JSON fails for good", SendOutcome.FAILED, "400",
           {"status": 400, "raw": "Bad Request"}),
    Answer("a 2xx that is not JSON may have created a message", SendOutcome.UNKNOWN,
           "unreadable", {"status": 201, "raw": "<Response/>"}),
    Answer("a 2xx without a SID may have created a message", SendOutcome.UNKNOWN, "unreadable",
           {"status": 201, "raw": '{"status": "queued"}'}),
    Answer("a refused connection sent nothing", SendOutcome.RETRY, "conn",
           changes={"twilio_api_base_url": closed_port_url()}),
    Answer("a name that did not resolve sent nothing", SendOutcome.RETRY, "conn",
           changes={"twilio_api_base_url": "https://api.twilio.test"}, network="unresolved"),
    Answer("a connect timeout sent nothing", SendOutcome.RETRY, "ConnectTimeout",
           changes={"twilio_api_base_url": "https://api.twilio.test"}, network="connect-timeout"),
    Answer("a TLS handshake that failed sent nothing", SendOutcome.RETRY, "SSLError",
           changes={"twilio_api_base_url": "tls-to-the-fake"}),
    Answer("a connection that broke after the request may have created it",
           SendOutcome.UNKNOWN, "conn", {"status": "drop"}),
    Answer("a read timeout may have created the message", SendOutcome.UNKNOWN, "ReadTimeout",
           {"status": "hang", "seconds": 5}),
]  # fmt: skip


@pytest.mark.parametrize("case", ANSWERS, ids=[case.label for case in ANSWERS])
def test_twilios_answer_to_a_create_decides_whether_a_resend_is_safe(
    fake_twilio: FakeTwilio,
    through_fake: Settings,
    monkeypatch: pytest.MonkeyPatch,
    case: Answer,
) -> None:
    monkeypatch.setattr(twilio, "TIMEOUT", (2.0, 0.3))  # a hanging Twilio, briefly
    if case.plan:
        fake_twilio.plan(**case.plan)
    changes = dict(case.changes)
    if changes.get("twilio_api_base_url") == "tls-to-the-fake":  # it speaks plain HTTP
        changes["twilio_api_base_url"] = fake_twilio.url.replace("http://", "https://")
    if case.network == "unresolved":
        monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    if case.network == "connect-timeout":
        monkeypatch.setattr(socket, "create_connection", never_answers)
    result = twilio.send(through_fake.with_(**changes), ANA, "Hola")
    assert (result.outcome, result.error_code) == (case.outcome, case.error_code)
    sent = case.outcome is SendOutcome.SENT
    assert result.provider_sid == (fake_twilio.created[0] if sent else None)
    reached = case.changes.get("twilio_api_base_url") is None
    assert len(fake_twilio.requests) == (1 if reached else 0)


def no_such_name(*args: object, **kwargs: object) -> NoReturn:
    """DNS, answering that the name does not exist."""
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def never_answers(*args: object, **kwargs: object) -> NoReturn:
    """TCP to a host that never answers the SYN: the connect waits out its timeout."""
    raise TimeoutError("timed out")


@pytest.mark.parametrize(
    ("changes", "sent"),
    [
        pytest.param(
            {},
            {"To": ANA, "Body": "Hola", "From": TWILIO_FROM},
            id="from our number, without a callback when the public URL is unknown",
        ),
        pytest.param(
            {"twilio_messaging_service_sid": "MG1", "public_url": "https://x.org/"},
            {"To": ANA, "Body": "Hola", "MessagingServiceSid": "MG1",
             "StatusCallback": "https://x.org/sms/twilio/status"},
            id="through a messaging service, with a callback to the public URL",
        ),
        pytest.param(
            {"twilio_messaging_service_sid": "MG1"},
            {"To": ANA, "Body": "Hola", "MessagingServiceSid": "MG1"},
            id="the messaging service wins over a number",
        ),
    ],
)  # fmt: skip
def test_a_create_names_one_sender_and_the_callback_only_when_there_is_one(
    fake_twilio: FakeTwilio, through_fake: Settings, changes: dict[str, str], sent: dict[str, str]
) -> None:
    twilio.send(through_fake.with_(**changes), ANA, "Hola")
    [seen] = fake_twilio.requests
    assert (seen.method, seen.username, seen.password) == (
        "POST",
        fake_twilio.account_sid,
        fake_twilio.auth_token,
    )
    assert seen.form == sent


@pytest.mark.parametrize(
    ("changes", "url"),
    [
        pytest.param({}, "https://api.twilio.com", id="Twilio's API by default"),
        pytest.param(
            {"twilio_region": "ie1"}, "https://api.ie1.twilio.com", id="a processing region"
        ),
        pytest.param(
            {"twilio_edge": "dublin", "twilio_region": "ie1"},
            "https://api.dublin.ie1.twilio.com",
            id="an edge location and a region",
        ),
        pytest.param(
            {"twilio_edge": "sydney"},
            "https://api.sydney.us1.twilio.com",
            id="an edge alone is in the default region, as the SDK has it",
        ),
        pytest.param(
            {"twilio_api_base_url": "http://127.0.0.1:9000/", "twilio_region": "ie1"},
            "http://127.0.0.1:9000",
            id="a base URL wins over the region",
        ),
    ],
)
def test_the_messages_url_follows_the_edge_and_region(changes: dict[str, str], url: str) -> None:
    settings = Settings(twilio_account_sid=ACCOUNT_SID).with_(**changes)
    assert twilio.messages_url(settings) == f"{url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
