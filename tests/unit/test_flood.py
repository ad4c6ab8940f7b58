"""The flood settings as the environment gives them, and which numbers a reply may go to."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.settings import Settings
from workers import reply_limits
from workers.reply_limits import in_regions


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param(
            {},
            {
                "flood_per_sender_per_minute": 10,
                "flood_per_sender_per_hour": 60,
                "flood_ussd_hops_per_minute": 30,
                "flood_ussd_hops_per_hour": 300,
                "flood_overall_per_second": 3000,
                "reply_cap_per_hour": 8,
                "allowed_countries": (),
            },
            id="defaults that never bother a voter",
        ),
        pytest.param(
            {
                "FLOOD_PER_SENDER_PER_MINUTE": "5",
                "FLOOD_PER_SENDER_PER_HOUR": "0",
                "FLOOD_USSD_HOPS_PER_MINUTE": "40",
                "FLOOD_USSD_HOPS_PER_HOUR": "400",
                "FLOOD_OVERALL_PER_SECOND": "500",
                "REPLY_CAP_PER_HOUR": "3",
                "ALLOWED_COUNTRIES": " ve, co ,,",
            },
            {
                "flood_per_sender_per_minute": 5,
                "flood_per_sender_per_hour": 0,
                "flood_ussd_hops_per_minute": 40,
                "flood_ussd_hops_per_hour": 400,
                "flood_overall_per_second": 500,
                "reply_cap_per_hour": 3,
                "allowed_countries": ("VE", "CO"),
            },
            id="each one set, 0 being off",
        ),
    ],
)
def test_the_flood_settings_come_from_the_environment(
    env: dict[str, str], expected: dict[str, object]
) -> None:
    settings = Settings.from_env(env)
    assert {name: getattr(settings, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("settings", "regions"),
    [
        pytest.param(Settings(), frozenset({"VE"}), id="the default region when none is listed"),
        pytest.param(Settings(default_region="KE"), frozenset({"KE"}), id="whatever that is"),
        pytest.param(
            Settings(allowed_countries=("VE", "CO")), frozenset({"VE", "CO"}), id="a list"
        ),
        pytest.param(Settings(allowed_countries=("*",)), None, id="a star for anywhere"),
    ],
)
def test_replies_may_go_to_the_listed_regions(
    settings: Settings, regions: frozenset[str] | None
) -> None:
    assert settings.reply_regions == regions


@pytest.mark.parametrize(
    ("recipient", "regions", "allowed"),
    [
        pytest.param("+584141234567", frozenset({"VE"}), True, id="a Venezuelan mobile in VE"),
        pytest.param("+582125550000", frozenset({"VE"}), True, id="a Caracas landline in VE"),
        pytest.param("+12125551234", frozenset({"VE"}), False, id="a New York number is not"),
        pytest.param("+254711234567", frozenset({"VE", "KE"}), True, id="a Kenyan one in VE,KE"),
        pytest.param("+12125551234", None, True, id="anything with a star"),
        pytest.param("20880", None, False, id="but never a short code"),
        pytest.param("+12345", None, False, id="nor a number too short to be one"),
        pytest.param("Consulta", None, False, id="nor a sender name"),
        pytest.param("", None, False, id="nor nothing"),
    ],
)
def test_a_reply_goes_only_to_a_phone_number_in_an_allowed_region(
    recipient: str, regions: frozenset[str] | None, allowed: bool
) -> None:
    assert in_regions(recipient, regions) is allowed


LONE_AND_SHARED = [frozenset({"VE"}), frozenset({"VE", "KE"}), frozenset({"US"}), frozenset({"GB"})]
CALLING_CODES = ["+58", "+254", "+1", "+44", "+5", "+580", "+7", ""]


@hypothesis.settings(max_examples=3000, deadline=None)
@hypothesis.example(code="+58", rest="4141234567", regions=frozenset({"VE"}))  # a mobile
@hypothesis.example(code="+58", rest="0414123456", regions=frozenset({"VE"}))  # a trunk 0
@hypothesis.example(code="+58", rest="2125550", regions=frozenset({"VE"}))  # local only
@hypothesis.example(code="+58", rest="414123456", regions=frozenset({"VE"}))  # a digit short
@hypothesis.example(code="+58", rest="４１４１２３４５６７", regions=frozenset({"VE"}))  # not ASCII
@given(
    code=st.sampled_from(CALLING_CODES),
    rest=st.text(alphabet="0123456789", max_size=14) | st.text(max_size=14),
    regions=st.sampled_from(LONE_AND_SHARED),
)
def test_the_quick_region_check_agrees_with_the_full_parse(
    code: str, rest: str, regions: frozenset[str]
) -> None:
    recipient = code + rest
    assert in_regions(recipient, regions) is reply_limits._parsed_in(recipient, regions)
