"""GSM 03.38: what a text costs as an SMS, and how any text becomes GSM-7 or ASCII."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messages.gsm import GSM7_BASIC, GSM7_EXTENSION, Encoded, measure, to_ascii, to_gsm7

THUMBS_UP = "\U0001f44d"  # outside the Basic Multilingual Plane: a surrogate pair in UTF-16

# Realistic text, and any code point at all: st.text() never draws the lone surrogates a Python
# str can hold.
any_text = st.text() | st.lists(st.integers(0, 0x10FFFF).map(chr)).map("".join)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", Encoded("GSM-7", 0, 1), id="an empty text is one gsm7 segment"),
        pytest.param("a" * 160, Encoded("GSM-7", 160, 1), id="160 ascii characters fit one"),
        pytest.param("a" * 161, Encoded("GSM-7", 161, 2), id="161 need two of 153"),
        pytest.param("a" * 306, Encoded("GSM-7", 306, 2), id="306 fill two segments exactly"),
        pytest.param("a" * 307, Encoded("GSM-7", 307, 3), id="307 need a third"),
        pytest.param("[1|2]", Encoded("GSM-7", 8, 1), id="extension characters cost two"),
        pytest.param("10€", Encoded("GSM-7", 4, 1), id="the euro sign costs two"),
        pytest.param("€" * 80, Encoded("GSM-7", 160, 1), id="eighty euro signs fill one"),
        pytest.param("ñÑ¿¡éÉüÜ", Encoded("GSM-7", 8, 1), id="the spanish letters of gsm7 cost one"),
        pytest.param("Votacion", Encoded("GSM-7", 8, 1), id="votacion without accent is gsm7"),
        pytest.param("Votación", Encoded("UCS-2", 8, 1), id="votacion with an accent is ucs2"),
        pytest.param(
            "a" * 152 + "€" + "a" * 152,
            Encoded("GSM-7", 306, 3),
            id="a euro at septets 153 and 154 moves whole to the next segment",
        ),
        pytest.param(
            "a" * 153 + "€" + "a" * 151,
            Encoded("GSM-7", 306, 2),
            id="a euro that starts a segment stays there",
        ),
        pytest.param("ó" * 70, Encoded("UCS-2", 70, 1), id="70 ucs2 characters fit one"),
        pytest.param("ó" * 71, Encoded("UCS-2", 71, 2), id="71 need two of 67"),
        pytest.param("ó" * 134, Encoded("UCS-2", 134, 2), id="134 fill two segments exactly"),
        pytest.param("ó" * 135, Encoded("UCS-2", 135, 3), id="135 need a third"),
        pytest.param(THUMBS_UP, Encoded("UCS-2", 2, 1), id="an emoji costs two code units"),
        pytest.param(
            "ó" * 66 + THUMBS_UP + "ó" * 66,
            Encoded("UCS-2", 134, 3),
            id="an emoji across units 67 and 68 moves whole to the next segment",
        ),
    ],
)
def test_measure_counts_as_carriers_do(text: str, expected: Encoded) -> None:
    assert measure(text) == expected


def test_the_alphabet_tables_are_the_128_and_10_characters_of_gsm_03_38() -> None:
    # 128 positions, less ESC; the extension table's ten printable characters, form feed included.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert {"\n", "\r"} <= GSM7_BASIC
    assert "\x1b" not in GSM7_BASIC | GSM7_EXTENSION
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("áíóú", "aiou", id="acute vowels lose their accent"),
        pytest.param("ÁÍÓÚ", "AIOU", id="capital acute vowels lose their accent"),
        pytest.param("ç", "c", id="small c cedilla becomes c"),
        pytest.param("Ç", "Ç", id="capital c cedilla is gsm7 and stays"),
        pytest.param("1º 2ª", "1o 2a", id="ordinal indicators become letters"),
        pytest.param("‘sí’ “no”", "'si' \"no\"", id="curly quotes become straight"),
        pytest.param("«VOTO»", '"VOTO"', id="guillemets become double quotes"),
        pytest.param("1–2—3", "1-2-3", id="en and em dashes become hyphens"),
        pytest.param("espera…", "espera...", id="an ellipsis becomes three dots"),
        pytest.param("VOTO\u00a03", "VOTO 3", id="a non breaking space becomes a space"),
        pytest.param("ñÑ¿¡éÉüÜ", "ñÑ¿¡éÉüÜ", id="the spanish letters of gsm7 stay"),
        pytest.param("àèìòùÄÖäö", "àèìòùÄÖäö", id="the other accented gsm7 letters stay"),
        pytest.param("øØåÅæÆß", "øØåÅæÆß", id="the nordic letters of gsm7 stay"),
        pytest.param("ΔΦΓΛΩΠΨΣΘΞ", "ΔΦΓΛΩΠΨΣΘΞ", id="the greek capitals of gsm7 stay"),
        pytest.param("£¥§¤@$_", "£¥§¤@$_", id="the gsm7 symbols stay"),
        pytest.param("{[~]}|\\^€", "{[~]}|\\^€", id="the extension characters stay"),
        pytest.param("a\r\nb", "a\r\nb", id="line breaks stay"),
        pytest.param("âêîôûÀÈÌÒÙ", "aeiouAEIOU", id="other accents fall back to the base letter"),
        pytest.param("n\u0303", "ñ", id="a decomposed n tilde is composed into gsm7"),
        pytest.param("e\u0301", "é", id="a decomposed e acute is composed into gsm7"),
        pytest.param("ΑΒΚ", "ABK", id="greek capitals that look latin become latin"),
        pytest.param("`a`", "'a'", id="a backtick becomes an apostrophe"),
        pytest.param("a\tb", "a b", id="a tab becomes a space"),
        pytest.param("a\u200bb\u00adc", "abc", id="invisible characters are dropped"),
        pytest.param(f"ok {THUMBS_UP}", "ok ?", id="an emoji becomes a question mark"),
        pytest.param("投票", "??", id="cjk becomes question marks"),
    ],
)
def test_to_gsm7_keeps_gsm7_and_replaces_the_rest(text: str, expected: str) -> None:
    assert to_gsm7(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("¿Año? ¡Sí!", "Ano? Si!", id="inverted marks go and accents fall"),
        pytest.param("Ñandú Ç", "Nandu C", id="gsm7 letters outside ascii lose accents too"),
        pytest.param("ß æ Ø", "ss ae O", id="letters without a base letter are spelled out"),
        pytest.param("10€", "10EUR", id="the euro sign is spelled out"),
        pytest.param("“1”–2…", '"1"-2...', id="punctuation becomes ascii"),
        pytest.param("1. Si\r\n2. No", "1. Si\n2. No", id="line breaks become plain newlines"),
        pytest.param(f"Δ {THUMBS_UP}", "? ?", id="anything else becomes a question mark"),
    ],
)
def test_to_ascii_makes_plain_ussd_text(text: str, expected: str) -> None:
    assert to_ascii(text) == expected


@given(any_text)
def test_to_gsm7_always_gives_gsm7(text: str) -> None:
    assert measure(to_gsm7(text)).encoding == "GSM-7"


@given(any_text)
def test_to_gsm7_is_idempotent(text: str) -> None:
    once = to_gsm7(text)
    assert to_gsm7(once) == once


@given(st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION))))
def test_to_gsm7_leaves_gsm7_text_alone(text: str) -> None:
    assert to_gsm7(text) == text


@given(any_text)
def test_measure_never_raises_and_counts_every_character(text: str) -> None:
    cost = measure(text)
    assert cost.segments >= 1
    assert cost.units >= len(text)


@given(any_text)
def test_to_ascii_always_gives_printable_ascii(text: str) -> None:
    result = to_ascii(text)
    assert all(ch == "\n" or " " <= ch <= "~" for ch in result)
    assert to_ascii(result) == result
