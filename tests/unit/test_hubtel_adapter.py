"""The Hubtel adapter on its own: each JSON callback becomes one hop, each screen one JSON reply."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.providers import hubtel
from gateway.providers.base import BadRequestError, Screen, UssdHop

SESSION = "3c8b6f8a2a4d4f0e9b1c7d5e6f708192"
KOFI = "+233244123456"


@dataclass(frozen=True)
class Refused:
    """The payload is a BadRequestError whose text contains this."""

    complaint: str


def payload(kind: Any = "Initiation", message: Any = "*713*21#", **changes: Any) -> dict[str, Any]:
    """A callback as Hubtel's USSD API posts it."""
    body: dict[str, Any] = {
        "Mobile": "233244123456",
        "SessionId": SESSION,
        "ServiceCode": "713",
        "Type": kind,
        "Message": message,
        "Operator": "mtn",
        "Sequence": 1 if kind == "Initiation" else 2,
        "ClientState": "",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


def hop(*inputs: str, starts: bool = False, ends: bool = False, code: str = "713") -> UssdHop:
    return UssdHop(
        provider="hubtel",
        session_id=SESSION,
        phone=KOFI,
        service_code=code,
        inputs=inputs,
        whole_path=False,
        starts=starts,
        ends=ends,
    )


@dataclass(frozen=True)
class Case:
    label: str
    payload: dict[str, Any]
    expected: UssdHop | Refused


CASES = [
    Case("a dialled code starts the session with no input", payload(), hop(starts=True)),
    Case("a response carries only the latest input", payload("Response", "3"), hop("3")),
    Case("an empty response is an empty input, not none", payload("Response", ""), hop("")),
    Case("a national ID typed as input is kept whole", payload("Response", "V12345678"),
         hop("V12345678")),
    Case("a release ends the session", payload("Release", ""), hop(ends=True)),
    Case("a timeout ends the session", payload("Timeout", ""), hop(ends=True)),
    Case("a release without a Message still ends it", payload("Release", ...), hop(ends=True)),
    Case("the Programmable Services API's lower-case types are understood",
         payload("initiation"), hop(starts=True)),
    Case("its lower-case serviceCode is understood",
         payload(ServiceCode=..., serviceCode="713"), hop(starts=True)),
    Case("no service code is an empty one", payload(ServiceCode=...), hop(starts=True, code="")),
    Case("a number already in E.164 stays as it is", payload(Mobile=KOFI), hop(starts=True)),
    Case("a national-format number is read as Ghanaian", payload(Mobile="0244123456"),
         hop(starts=True)),
    Case("no Sequence is accepted", payload(Sequence=...), hop(starts=True)),
    Case("fields Hubtel adds later are accepted", payload(Platform="USSD"), hop(starts=True)),
    Case("an input of exactly 200 characters is accepted", payload("Response", "1" * 200),
         hop("1" * 200)),
    Case("no Type is a bad request", payload(Type=...), Refused("missing field: Type")),
    Case("an unknown Type is a bad request", payload("AddToCart"), Refused("unknown Type")),
    Case("no SessionId is a bad request", payload(SessionId=...),
         Refused("missing field: SessionId")),
    Case("an empty SessionId is a bad request", payload(SessionId=""),
         Refused("missing field: SessionId")),
    Case("a numeric SessionId is a bad request", payload(SessionId=12345),
         Refused("SessionId not a string")),
    Case("no Mobile is a bad request", payload(Mobile=...), Refused("missing field: Mobile")),
    Case("a Mobile sent as a number is a bad request", payload(Mobile=233244123456),
         Refused("Mobile not a string")),
    Case("a response without its Message is a bad request", payload("Response", ...),
         Refused("missing field: Message")),
    Case("a Message that is not text is a bad request", payload("Response", ["3"]),
         Refused("Message not a string")),
    Case("a null Type is a bad request", payload(Type=None), Refused("missing field: Type")),
    Case("a Type that is not text is a bad request", payload(Type=1), Refused("Type not a string")),
    Case("a Sequence that is not a number is a bad request", payload(Sequence="2"),
         Refused("Sequence not an integer")),
    Case("a Sequence of true is a bad request", payload(Sequence=True),
         Refused("Sequence not an integer")),
    Case("an input over 200 characters is a bad request", payload("Response", "1" * 201),
         Refused("Message longer than 200")),
    Case("a session ID over 128 characters is a bad request", payload(SessionId="S" * 129),
         Refused("SessionId longer than 128")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.label for case in CASES])
def test_a_hubtel_callback(case: Case) -> None:
    if isinstance(case.expected, Refused):
        with pytest.raises(BadRequestError, match=case.expected.complaint):
            hubtel.parse_ussd(case.payload)
    else:
        assert hubtel.parse_ussd(case.payload) == case.expected


def test_a_configured_region_reads_national_numbers_as_its_own() -> None:
    assert hubtel.parse_ussd(payload(Mobile="0711234567"), region="KE").phone == "+254711234567"


@pytest.mark.parametrize(
    ("screen", "reply"),
    [
        pytest.param(Screen("1. Votar\n2. Estado", end=False),
                     {"Type": "Response", "Message": "1. Votar\n2. Estado"},
                     id="a screen that waits for input is a Response"),
        pytest.param(Screen("Voto registrado.", end=True),
                     {"Type": "Release", "Message": "Voto registrado."},
                     id="a closing screen is a Release"),
        pytest.param(Screen("Votación ¡sí!", end=True),
                     {"Type": "Release", "Message": "Votación ¡sí!"},
                     id="accented text survives the JSON"),
    ],
)  # fmt: skip
def test_a_screen_is_the_json_hubtel_expects(screen: Screen, reply: dict[str, str]) -> None:
    body, content_type = hubtel.render_ussd(screen)
    assert (json.loads(body), content_type) == (reply, "application/json")
