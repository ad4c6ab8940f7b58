"""The Africa's Talking adapter on its own: parsing its callbacks, rendering screens, sending.

No database. Sends go to a real local server that answers like AT's messaging API, so what is
tested is what `requests` really does with each answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.providers import africastalking
from gateway.providers.base import (
    BadRequestError,
    InboundMessage,
    Screen,
    SendOutcome,
    SendResult,
    UssdHop,
)
from gateway.providers.network import allowed_source
from gateway.settings import Settings
from tests.support.fake_africastalking import (  # noqa: F401 - fake_africastalking_fixture
    API_KEY,
    SHORT_CODE,
    USERNAME,
    FakeAfricasTalking,
    fake_africastalking_fixture,
    report_form,
    settings_with_africastalking,
    sms_form,
    ussd_form,
)
from tests.support.ports import closed_port_url

RECEIVED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WANJIKU = "+254711234567"
SESSION = "ATUid_" + "a" * 32


@dataclass(frozen=True)
class Refused:
    """The request is a BadRequestError whose text contains this."""

    complaint: str


def without(form: dict[str, str], name: str) -> dict[str, str]:
    return {key: value for key, value in form.items() if key != name}


# -- parse_inbound ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    label: str
    form: dict[str, str]
    expected: InboundMessage | Refused


def received(text: str, id_: str = "ATXid_1", sender: str = WANJIKU) -> InboundMessage:
    return InboundMessage("africastalking", id_, sender, SHORT_CODE, text, RECEIVED)


INBOUND = [
    Inbound("a vote becomes the message it carries", sms_form(WANJIKU, "VOTO 3", "ATXid_1"),
            received("VOTO 3")),
    Inbound("a premium message's linkId is accepted",
            sms_form(WANJIKU, "VOTO 3", "ATXid_1", linkId="SampleLinkId123"), received("VOTO 3")),
    Inbound("a field AT adds later is accepted",
            sms_form(WANJIKU, "VOTO 3", "ATXid_1", networkCode="63902"), received("VOTO 3")),
    Inbound("an empty text is a message: the worker answers with help",
            sms_form(WANJIKU, "", "ATXid_1"), received("")),
    Inbound("a text of exactly 1,600 characters is accepted",
            sms_form(WANJIKU, "3" * 1600, "ATXid_1"), received("3" * 1600)),
    Inbound("a text beyond GSM-7 is kept as it came",
            sms_form(WANJIKU, "Votación 3 ¡sí! 🗳", "ATXid_1"), received("Votación 3 ¡sí! 🗳")),
    Inbound("a sender without its plus is stored in E.164",
            sms_form("254711234567", "VOTO 3", "ATXid_1"), received("VOTO 3")),
    Inbound("an alphanumeric sender is kept as it came",
            sms_form("Safaricom", "x", "ATXid_1"), received("x", sender="Safaricom")),
    Inbound("an id of exactly 64 characters is accepted",
            sms_form(WANJIKU, "x", "A" * 64), received("x", id_="A" * 64)),
    Inbound("no id is a bad request", without(sms_form(WANJIKU, "x"), "id"),
            Refused("missing field: id")),
    Inbound("an empty id is a bad request", sms_form(WANJIKU, "x") | {"id": ""},
            Refused("missing field: id")),
    Inbound("no from is a bad request", without(sms_form(WANJIKU, "x"), "from"),
            Refused("missing field: from")),
    Inbound("no to is a bad request", without(sms_form(WANJIKU, "x"), "to"),
            Refused("missing field: to")),
    Inbound("no date is a bad request", without(sms_form(WANJIKU, "x"), "date"),
            Refused("missing field: date")),
    Inbound("no text is a bad request", without(sms_form(WANJIKU, "x"), "text"),
            Refused("missing field: text")),
    Inbound("several missing fields are all named", {"text": "x"},
            Refused("missing field: id, from, to, date")),
    Inbound("an id longer than the column is a bad request", sms_form(WANJIKU, "x", "A" * 65),
            Refused("id longer than 64")),
    Inbound("a text over 1,600 characters is a bad request", sms_form(WANJIKU, "3" * 1601),
            Refused("text longer than 1600")),
]  # fmt: skip


@pytest.mark.parametrize("case", INBOUND, ids=[case.label for case in INBOUND])
def test_an_inbound_sms_callback(case: Inbound) -> None:
    if isinstance(case.expected, Refused):
        with pytest.raises(BadRequestError, match=case.expected.complaint):
            africastalking.parse_inbound(case.form, RECEIVED, "VE")
    else:
        assert africastalking.parse_inbound(case.form, RECEIVED, "VE") == case.expected


# -- parse_ussd and render_ussd ---------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    label: str
    form: dict[str, str]
    expected: UssdHop | Refused


def hop(*inputs: str, phone: str = WANJIKU) -> UssdHop:
    return UssdHop(
        provider="africastalking",
        session_id=SESSION,
        phone=phone,
        service_code="*384*1234#",
        inputs=inputs,
        whole_path=True,
        starts=not inputs,
    )


HOPS = [
    Hop("the first hop has no input and starts the session", ussd_form(""), hop()),
    Hop("one input is a path of one", ussd_form("1"), hop("1")),
    Hop("inputs so far are joined by stars", ussd_form("1*3*2"), hop("1", "3", "2")),
    Hop("an empty input between stars is kept in its place", ussd_form("1**2"), hop("1", "", "2")),
    Hop("a back key the user pressed is part of the path", ussd_form("1*0*2"), hop("1", "0", "2")),
    Hop("a national ID typed as input is kept whole", ussd_form("1*V12345678"),
        hop("1", "V12345678")),
    Hop("a phone number without its plus is stored in E.164",
        ussd_form("", phoneNumber="254711234567"), hop()),
    Hop("a path of exactly 200 characters is accepted", ussd_form("1" * 200), hop("1" * 200)),
    Hop("no sessionId is a bad request", without(ussd_form(""), "sessionId"),
        Refused("missing field: sessionId")),
    Hop("no phoneNumber is a bad request", without(ussd_form(""), "phoneNumber"),
        Refused("missing field: phoneNumber")),
    Hop("no serviceCode is a bad request", without(ussd_form(""), "serviceCode"),
        Refused("missing field: serviceCode")),
    Hop("no text at all is a bad request, unlike an empty one", without(ussd_form(""), "text"),
        Refused("missing field: text")),
    Hop("a path over 200 characters is a bad request", ussd_form("1" * 201),
        Refused("text longer than 200")),
    Hop("a session ID over 128 characters is a bad request", ussd_form("", session_id="S" * 129),
        Refused("sessionId longer than 128")),
]  # fmt: skip


@pytest.mark.parametrize("case", HOPS, ids=[case.label for case in HOPS])
def test_a_ussd_hop(case: Hop) -> None:
    if isinstance(case.expected, Refused):
        with pytest.raises(BadRequestError, match=case.expected.complaint):
            africastalking.parse_ussd(case.form, "VE")
    else:
        assert africastalking.parse_ussd(case.form, "VE") == case.expected


@pytest.mark.parametrize(
    ("screen", "body"),
    [
        pytest.param(Screen("1. Votar\n2. Estado", end=False), "CON 1. Votar\n2. Estado",
                     id="a screen that waits for input starts with CON"),
        pytest.param(Screen("Voto registrado.", end=True), "END Voto registrado.",
                     id="a closing screen starts with END"),
        pytest.param(Screen("", end=True), "END ", id="an empty closing screen still says END"),
    ],
)  # fmt: skip
def test_a_ussd_screen_is_plain_text_that_says_whether_the_session_goes_on(
    screen: Screen, body: str
) -> None:
    assert africastalking.render_ussd(screen) == (body, "text/plain; charset=utf-8")


# -- parse_status -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "parsed"),
    [
        *[
            pytest.param(report_form("ATXid_1", theirs), ("ATXid_1", ours, None),
                         id=f"{theirs} is {ours}")
            for theirs, ours in africastalking.STATUS_MAPPING.items()
        ],
        pytest.param(report_form("ATXid_1", "Failed", "UserInBlackList"),
                     ("ATXid_1", "failed", "UserInBlackList"), id="a failure reason is kept"),
        pytest.param(report_form("ATXid_1", "Rejected", "UserAccountSuspended"),
                     ("ATXid_1", "failed", "UserAccountSuspe"),
                     id="a failure reason is cut to the column's width"),
        pytest.param(report_form("ATXid_1", "Success") | {"failureReason": ""},
                     ("ATXid_1", "delivered", None), id="an empty failure reason is none"),
    ],
)  # fmt: skip
def test_a_delivery_report_gives_the_message_id_our_status_and_the_reason(
    form: dict[str, str], parsed: tuple[str, str, str | None]
) -> None:
    assert africastalking.parse_status(form) == parsed


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"status": "Success"}, id="no id"),
        pytest.param({"id": "", "status": "Success"}, id="an empty id"),
        pytest.param({"id": "ATXid_1"}, id="no status"),
        pytest.param({"id": "ATXid_1", "status": "Teleported"}, id="a status AT does not send"),
        pytest.param({"id": "ATXid_1", "status": "success"}, id="a status in the wrong case"),
    ],
)
def test_a_delivery_report_without_an_id_or_a_known_status_is_a_bad_request(
    form: dict[str, str],
) -> None:
    with pytest.raises(BadRequestError):
        africastalking.parse_status(form)


# -- allowed_source ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote_addr", "networks", "allowed"),
    [
        pytest.param("203.0.113.9", (), True, id="an empty allow-list lets everyone in"),
        pytest.param(None, (), True, id="an empty allow-list lets an unknown address in"),
        pytest.param("196.201.214.10", ("196.201.214.0/24",), True, id="an address in the network"),
        pytest.param("196.201.215.10", ("196.201.214.0/24",), False,
                     id="an address outside the network"),
        pytest.param("10.0.0.1", ("196.201.214.0/24", "10.0.0.0/8"), True,
                     id="an address in any of several networks"),
        pytest.param("196.201.214.10", ("196.201.214.10",), True, id="a single address"),
        pytest.param("196.201.214.10", ("196.201.214.10/24",), True,
                     id="a network written with host bits set"),
        pytest.param("::ffff:196.201.214.10", ("196.201.214.0/24",), True,
                     id="an IPv4 caller seen through a dual-stack socket"),
        pytest.param("2001:db8::1", ("2001:db8::/32",), True, id="an IPv6 address in its network"),
        pytest.param("2001:db9::1", ("2001:db8::/32",), False, id="an IPv6 address outside it"),
        pytest.param(None, ("196.201.214.0/24",), False, id="an unknown address is refused"),
        pytest.param("not-an-address", ("196.201.214.0/24",), False,
                     id="a malformed address is refused"),
    ],
)  # fmt: skip
def test_only_callers_from_an_allowed_network_get_in(
    remote_addr: str | None, networks: tuple[str, ...], allowed: bool
) -> None:
    assert allowed_source(remote_addr, networks) is allowed


def test_a_malformed_network_in_the_allow_list_is_an_error_not_a_silent_opening() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 network"):
        allowed_source("196.201.214.10", ("196.201.214.0/33",))


# -- send -------------------------------------------------------------------------------------


@pytest.fixture
def through_fake(fake_africastalking: FakeAfricasTalking) -> Settings:
    return settings_with_africastalking(Settings(), fake_africastalking)


def test_a_send_posts_one_form_with_our_credentials_and_short_code(
    fake_africastalking: FakeAfricasTalking, through_fake: Settings
) -> None:
    result = africastalking.send(through_fake, WANJIKU, "Hola: voto registrado")
    [seen] = fake_africastalking.requests
    assert (seen.method, seen.path, seen.api_key, seen.accept) == (
        "POST",
        "/version1/messaging",
        API_KEY,
        "application/json",
    )
    assert seen.form == {
        "username": USERNAME,
        "to": WANJIKU,
        "message": "Hola: voto registrado",
        "from": SHORT_CODE,
    }
    assert result == SendResult(SendOutcome.SENT, provider_sid=fake_africastalking.created[0])


def test_without_a_short_code_the_send_leaves_from_out_and_at_picks_the_sender(
    fake_africastalking: FakeAfricasTalking, through_fake: Settings
) -> None:
    africastalking.send(through_fake.with_(africastalking_from=None), WANJIKU, "Hola")
    assert "from" not in fake_africastalking.requests[0].form


@pytest.mark.parametrize(
    ("username", "base", "url"),
    [
        pytest.param("consulta", None, "https://api.africastalking.com/version1/messaging",
                     id="a live app posts to the live API"),
        pytest.param("sandbox", None, "https://api.sandbox.africastalking.com/version1/messaging",
                     id="the sandbox app posts to the sandbox API"),
        pytest.param("sandbox", "http://127.0.0.1:9/", "http://127.0.0.1:9/version1/messaging",
                     id="a configured base URL wins, with or without its slash"),
    ],
)  # fmt: skip
def test_the_messaging_url_follows_the_app(username: str, base: str | None, url: str) -> None:
    settings = Settings(africastalking_username=username, africastalking_api_base_url=base)
    assert africastalking.messaging_url(settings) == url


@dataclass(frozen=True)
class Answer:
    label: str
    outcome: SendOutcome
    error_code: str | None
    plan: dict[str, Any] = field(default_factory=dict)
    changes: dict[str, object] = field(default_factory=dict)
    refused_connection: bool = False  # sent to a port nothing listens on


ANSWERS = [
    Answer("a recipient queued (102) was sent", SendOutcome.SENT, None,
           {"status": 201, "code": 102}),
    Answer("a recipient processed (100) was sent", SendOutcome.SENT, None,
           {"status": 201, "code": 100}),
    Answer("a 429 was not processed: send again later", SendOutcome.RETRY, "429", {"status": 429}),
    Answer("a refused connection sent nothing: send again later", SendOutcome.RETRY, "conn",
           refused_connection=True),
    Answer("a 500 may have sent it: never resend blindly", SendOutcome.UNKNOWN, "500",
           {"status": 500}),
    Answer("a 503 may have sent it: never resend blindly", SendOutcome.UNKNOWN, "503",
           {"status": 503}),
    Answer("a read timeout may have sent it: never resend blindly", SendOutcome.UNKNOWN,
           "ReadTimeout", {"status": "hang", "seconds": 5}),
    Answer("a blacklisted recipient (406) opted out", SendOutcome.OPTED_OUT, "406",
           {"status": 201, "code": 406}),
    Answer("an invalid number (403) is refused for good", SendOutcome.FAILED, "403",
           {"status": 201, "code": 403}),
    Answer("an empty balance (405) is refused for good", SendOutcome.FAILED, "405",
           {"status": 201, "code": 405}),
    Answer("a refusal before any recipient is refused for good", SendOutcome.FAILED,
           "InvalidSenderId", {"status": 201, "message": "InvalidSenderId"}),
    Answer("wrong credentials (401) are refused for good", SendOutcome.FAILED, "401",
           changes={"africastalking_api_key": "not-the-key"}),
    Answer("a key that cannot be a header is never resent blindly", SendOutcome.UNKNOWN,
           "ValueError", changes={"africastalking_api_key": "the-key\n"}),
]  # fmt: skip


@pytest.mark.parametrize("case", ANSWERS, ids=[case.label for case in ANSWERS])
def test_what_at_answers_decides_whether_a_reply_may_be_sent_again(
    fake_africastalking: FakeAfricasTalking,
    through_fake: Settings,
    monkeypatch: pytest.MonkeyPatch,
    case: Answer,
) -> None:
    monkeypatch.setattr(africastalking, "TIMEOUT", (2.0, 0.3))  # a hanging AT, briefly
    if case.plan:
        fake_africastalking.plan(**case.plan)
    changes = dict(case.changes)
    if case.refused_connection:
        changes["africastalking_api_base_url"] = closed_port_url()
    result = africastalking.send(through_fake.with_(**changes), WANJIKU, "Hola")
    assert (result.outcome, result.error_code) == (case.outcome, case.error_code)
    sent = case.outcome is SendOutcome.SENT
    assert result.provider_sid == (fake_africastalking.created[0] if sent else None)


@pytest.mark.parametrize(
    ("raw", "outcome", "error_code"),
    [
        pytest.param("not JSON", SendOutcome.UNKNOWN, "unreadable", id="not JSON"),
        pytest.param("{}", SendOutcome.UNKNOWN, "unreadable", id="no SMSMessageData"),
        pytest.param({"Recipients": [{"status": "Success"}]}, SendOutcome.UNKNOWN, "unreadable",
                     id="a recipient without a statusCode"),
        pytest.param({"Recipients": [WANJIKU]}, SendOutcome.UNKNOWN, "unreadable",
                     id="a recipient that is not an object"),
        pytest.param({"Recipients": [{"statusCode": 101, "messageId": "None"}]},
                     SendOutcome.UNKNOWN, "101", id="sent, but without a messageId to track"),
        pytest.param({"Recipients": [{"statusCode": "101", "messageId": "ATXid_1"}]},
                     SendOutcome.SENT, None, id="a statusCode written as text still counts"),
        pytest.param({"Message": "", "Recipients": []}, SendOutcome.FAILED, "no-recipient",
                     id="no recipients and no reason"),
        pytest.param({"Message": "InvalidPhoneNumberFormat", "Recipients": []},
                     SendOutcome.FAILED, "InvalidPhoneNumb", id="a long reason is cut to fit"),
    ],
)  # fmt: skip
def test_a_2xx_body_we_cannot_read_is_never_taken_for_a_sure_answer(
    fake_africastalking: FakeAfricasTalking,
    through_fake: Settings,
    raw: str | dict[str, Any],
    outcome: SendOutcome,
    error_code: str | None,
) -> None:
    body = raw if isinstance(raw, str) else json.dumps({"SMSMessageData": raw})
    fake_africastalking.plan(201, raw=body)
    result = africastalking.send(through_fake, WANJIKU, "Hola")
    assert (result.outcome, result.error_code) == (outcome, error_code)


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            "2026-11-30 11:55:00",
            datetime(2026, 11, 30, 11, 55, tzinfo=UTC),
            id="a retry minutes later keeps the provider's receive time",
        ),
        pytest.param(
            "2026-11-30T11:59:30+00:00",
            datetime(2026, 11, 30, 11, 59, 30, tzinfo=UTC),
            id="an ISO date with its offset is read",
        ),
        pytest.param(
            "2026-11-30 10:00:00", NOW, id="a date older than the retry span is not believed"
        ),
        pytest.param("2026-11-30 12:30:00", NOW, id="a date in the future is not believed"),
        pytest.param("yesterday", NOW, id="an unreadable date falls back to our clock"),
    ],
)
def test_the_providers_receive_time_is_used_when_plausible(raw: str, expected: datetime) -> None:
    assert africastalking.provider_time(raw, NOW) == expected
