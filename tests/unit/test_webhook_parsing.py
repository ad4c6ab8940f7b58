"""The webhook's own form parser and signature text agree with the libraries they replace.

`gateway.sms.form_pairs` stands in for `urllib.parse.parse_qsl` (strict, blanks kept), and
`twilio.signed_text` for the text the SDK's `RequestValidator.compute_signature` signs. Both
were rewritten for speed, so they are checked against the originals on generated input.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from gateway.providers import twilio
from gateway.sms import form_pairs

TOKEN = "12345678901234567890123456789012"
URL = "https://consulta.example.org/sms/twilio"
FORM_TEXT = st.text(alphabet="ab=&%+2F3CE9 ;é\x00", max_size=30).map(str.encode)
ENCODED_PAIRS = st.lists(st.tuples(st.text(max_size=6), st.text(max_size=6)), max_size=8)


def parsed_or_error(parse, raw: bytes):  # type: ignore[no-untyped-def]
    try:
        return parse(raw)
    except ValueError as error:  # UnicodeDecodeError is one
        return type(error)


def reference(raw: bytes) -> list[tuple[str, str]]:
    return parse_qsl(raw.decode("ascii"), keep_blank_values=True, errors="strict")


@settings(max_examples=500)
@given(st.binary(max_size=40) | FORM_TEXT | ENCODED_PAIRS.map(lambda p: urlencode(p).encode()))
def test_the_form_parser_reads_every_body_as_parse_qsl_does(raw: bytes) -> None:
    assert parsed_or_error(form_pairs, raw) == parsed_or_error(reference, raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Body=VOTO+3&From=%2B584141234567", [("Body", "VOTO 3"), ("From", "+584141234567")]),
        (b"Body=&NumMedia=0", [("Body", ""), ("NumMedia", "0")]),
        (b"Body", [("Body", "")]),
        (b"&&Body=1&&", [("Body", "1")]),
        (b"Body=%C3%B1", [("Body", "ñ")]),
    ],
    ids=["plus is a space", "blank kept", "no equals sign", "empty fields", "UTF-8 escape"],
)
def test_the_form_parser_reads_a_few_known_bodies(raw: bytes, expected: object) -> None:
    assert form_pairs(raw) == expected


@pytest.mark.parametrize("raw", [b"Body=\xc3\xb1", b"Body=%FF", b"Body=%C3"])
def test_a_body_that_is_not_utf8_form_data_is_refused(raw: bytes) -> None:
    with pytest.raises(UnicodeDecodeError):
        form_pairs(raw)


@settings(max_examples=300)
@given(ENCODED_PAIRS)
def test_the_signed_text_is_what_the_sdk_signs(pairs: list[tuple[str, str]]) -> None:
    form = MultiDict(pairs)
    sdk = RequestValidator(TOKEN).compute_signature(URL, form)
    assert twilio.verify(TOKEN, URL, form, sdk)
    assert twilio.verify(TOKEN, URL, form, sdk[:-2] + ("A=" if sdk[-2] != "A" else "B=")) is False
