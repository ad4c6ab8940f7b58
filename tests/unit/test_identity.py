"""National IDs: one spelling per person, whatever the voter typed."""

from __future__ import annotations

import pytest

from voting.identity import normalise_national_id


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        pytest.param("V-12.345.678", "V12345678", id="the printed cedula is compacted"),
        pytest.param("V12345678", "V12345678", id="the compact form is kept"),
        pytest.param("v12345678", "V12345678", id="a lower case v is upper cased"),
        pytest.param("12345678", "V12345678", id="a bare number is venezuelan"),
        pytest.param("12.345.678", "V12345678", id="a bare dotted number is venezuelan"),
        pytest.param("V 12 345 678", "V12345678", id="spaces inside are ignored"),
        pytest.param("  V-12.345.678  ", "V12345678", id="spaces around are ignored"),
        pytest.param("E-81234567", "E81234567", id="a foreigners E is kept"),
        pytest.param("e81.234.567", "E81234567", id="a lower case e is upper cased"),
        pytest.param("V-9.876.543", "V9876543", id="a seven digit cedula is accepted"),
        pytest.param("V-012345678", "V12345678", id="a leading zero does not make another ID"),
        pytest.param("12345", "V12345", id="five digits is the shortest ID"),
        pytest.param("1234567890", "V1234567890", id="ten digits is the longest ID"),
        pytest.param("1234", None, id="four digits is too short"),
        pytest.param("12345678901", None, id="eleven digits is too long"),
        pytest.param("J-12345678", None, id="a company RIF is not a cedula"),
        pytest.param("VE12345678", None, id="two nationality letters are refused"),
        pytest.param("V-12A45678", None, id="a letter among the digits is refused"),
        pytest.param("", None, id="an empty ID is refused"),
        pytest.param("V", None, id="a letter alone is refused"),
    ],
)
def test_normalise_national_id(typed: str, expected: str | None) -> None:
    assert normalise_national_id(typed) == expected
