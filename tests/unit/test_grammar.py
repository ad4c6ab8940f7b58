"""What real SMS bodies mean: a vote, a keyword, an ambiguity, or nothing we can read."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voting.grammar import Ambiguous, Command, Keyword, Parsed, Unrecognised, Vote, parse

STOP_WORDS = ["STOP", "UNSUBSCRIBE", "END", "QUIT", "STOPALL", "REVOKE", "OPTOUT", "CANCEL"]

CASES = [
    # The plain vote, as people actually type it.
    pytest.param("VOTO 3", Vote(3), id="the word VOTO and a number is a vote"),
    pytest.param("voto 3", Vote(3), id="lower case is the same vote"),
    pytest.param("Voto #3", Vote(3), id="a hash before the number is decoration"),
    pytest.param("Voto: 3", Vote(3), id="a colon after the vote word is decoration"),
    pytest.param("3", Vote(3), id="a bare number is a vote"),
    pytest.param(" 3 ", Vote(3), id="spaces around a bare number do not matter"),
    pytest.param("VOTE 3", Vote(3), id="the English vote word is accepted"),
    pytest.param("votar 3", Vote(3), id="the infinitive votar is accepted"),
    pytest.param("vota 3", Vote(3), id="the imperative vota is accepted"),
    pytest.param("V3", Vote(3), id="a V glued to the number is a vote"),
    pytest.param("voto3", Vote(3), id="the vote word glued to the number is a vote"),
    pytest.param("VOTA3", Vote(3), id="every vote word may be glued to the number"),
    pytest.param("Voto 12", Vote(12), id="a two digit option is read whole"),
    pytest.param("VOTO 03", Vote(3), id="a leading zero does not change the option"),
    pytest.param("３", Vote(3), id="a fullwidth digit is read as ascii"),
    pytest.param("٣", Vote(3), id="an arabic indic digit is read as ascii"),
    pytest.param("Vóto 3", Vote(3), id="an accent on the vote word does not matter"),
    pytest.param("VÓTAR 3", Vote(3), id="accents and upper case together do not matter"),
    pytest.param("Voto 3.", Vote(3), id="a full stop that ends the sentence is ignored"),
    pytest.param("Voto 3️⃣", Vote(3), id="a keycap emoji digit is read as its digit"),
    pytest.param("Voto\t3\n", Vote(3), id="tabs and newlines are spaces"),
    pytest.param("Voto por la 3 gracias", Vote(3), id="words around the option are ignored"),
    # A national ID that says who on a shared phone is voting.
    pytest.param("VOTO 3 V-12.345.678", Vote(3, "V12345678"), id="a dotted ID is normalised"),
    pytest.param("VOTO 3 V12345678", Vote(3, "V12345678"), id="a compact ID is kept"),
    pytest.param("VOTO 3 12345678", Vote(3, "V12345678"), id="a bare ID number is venezuelan"),
    pytest.param("voto 3 v-12.345.678", Vote(3, "V12345678"), id="a lower case ID is normalised"),
    pytest.param("VOTO 3 E-81234567", Vote(3, "E81234567"), id="a foreigners ID keeps its E"),
    pytest.param(
        "VOTO 3 E 81234567", Vote(3, "E81234567"), id="an E typed apart from the ID keeps it"
    ),
    pytest.param("3 V12345678", Vote(3, "V12345678"), id="an ID after a bare option is read"),
    pytest.param("V 12345678 3", Vote(3, "V12345678"), id="an ID before the option is read"),
    pytest.param(
        "VOTO 3 V-12.345.678 V-98.765.432",
        Unrecognised(),
        id="two IDs in one message are not a vote",
    ),
    pytest.param("VOTO 3 1.234", Unrecognised(), id="an ID too short to be one is not dropped"),
    pytest.param(
        "VOTO 3 12345678901", Unrecognised(), id="an ID too long to be one is not dropped"
    ),
    pytest.param(
        "VOTO 3 V-123.456.789.012",
        Unrecognised(),
        id="a dotted ID too long to be one is not dropped",
    ),
    # One choice per voter: several options are a question, not a vote.
    pytest.param("VOTO 3 5", Ambiguous((3, 5)), id="two different options are ambiguous"),
    pytest.param("Voto 3 y 5", Ambiguous((3, 5)), id="two options joined by y are ambiguous"),
    pytest.param("3,5", Ambiguous((3, 5)), id="two options joined by a comma are ambiguous"),
    pytest.param("VOTO 5 3 5", Ambiguous((5, 3)), id="ambiguous options keep their first order"),
    pytest.param("VOTO 3 3", Vote(3), id="the same option twice is one vote"),
    pytest.param("V3 V3", Vote(3), id="the same glued vote twice is one vote"),
    # Twilio's opt-out words, whole body, any case: never a vote.
    *[pytest.param(word, Keyword("stop"), id=f"{word} is an opt out") for word in STOP_WORDS],
    pytest.param("stop", Keyword("stop"), id="a lower case stop is an opt out"),
    pytest.param("Unsubscribe", Keyword("stop"), id="a capitalised unsubscribe is an opt out"),
    pytest.param(" Stop ", Keyword("stop"), id="spaces around stop still opt out"),
    pytest.param("ＳＴＯＰ", Keyword("stop"), id="a fullwidth stop is an opt out"),
    pytest.param("baja", Keyword("stop"), id="the spanish baja is an opt out"),
    pytest.param("STOP 3", Unrecognised(), id="stop with a number is neither opt out nor vote"),
    pytest.param("START", Keyword("start"), id="start opts back in"),
    pytest.param("yes", Keyword("start"), id="yes opts back in"),
    pytest.param("Unstop", Keyword("start"), id="unstop opts back in"),
    pytest.param("HELP", Keyword("help"), id="help asks for help"),
    pytest.param("info", Keyword("help"), id="info asks for help"),
    pytest.param("Ayuda", Keyword("help"), id="ayuda asks for help"),
    # Everything else we cannot read.
    pytest.param("", Unrecognised(), id="an empty body is unrecognised"),
    pytest.param("   ", Unrecognised(), id="a body of spaces is unrecognised"),
    pytest.param("👍", Unrecognised(), id="an emoji is unrecognised"),
    pytest.param("Hola", Unrecognised(), id="a greeting is unrecognised"),
    pytest.param("VOTO", Unrecognised(), id="the vote word alone is unrecognised"),
    pytest.param("VOTO tres", Vote(3), id="an option spelt in Spanish words is read"),
    pytest.param("vote three", Vote(3), id="an option spelt in English words is read"),
    pytest.param("Voto una", Vote(1), id="the feminine una is one"),
    pytest.param("tres", Unrecognised(), id="a number word without a vote word is not a vote"),
    pytest.param("voto tres cuatro", Ambiguous((3, 4)), id="two number words are ambiguous"),
    pytest.param("4 tres", Ambiguous((4, 3)), id="a digit then a number word is ambiguous"),
    pytest.param("4 VOTO TRES", Ambiguous((4, 3)), id="a number word after a vote word mid-text"),
    pytest.param("OPCIONES", Command("options"), id="OPCIONES asks for the ballot"),
    pytest.param("options", Command("options"), id="OPTIONS asks for the ballot in English"),
    pytest.param(
        "Opciones V-12.345.678",
        Command("options", national_id="V12345678"),
        id="OPCIONES with an ID asks for that person's ballot",
    ),
    pytest.param("Estado", Command("status"), id="ESTADO asks whether I voted"),
    pytest.param(
        "STATUS 12345678",
        Command("status", national_id="V12345678"),
        id="STATUS with an ID asks for that person",
    ),
    pytest.param("IDIOMA EN", Command("language", argument="EN"), id="IDIOMA EN picks a language"),
    pytest.param(
        "language español", Command("language", argument="ESPANOL"), id="LANGUAGE takes a word"
    ),
    pytest.param("idioma", Command("language"), id="IDIOMA alone asks which languages exist"),
    pytest.param("VOTO 123", Unrecognised(), id="a three digit option is unrecognised"),
    pytest.param("VOTO 3/5", Unrecognised(), id="digits we cannot read are unrecognised"),
    pytest.param("Quiero votar 3", Unrecognised(), id="a sentence that starts elsewhere is asked"),
    pytest.param("hola " * 400, Unrecognised(), id="a very long text is unrecognised"),
    pytest.param("VOTO 3 " + "x" * 1600, Vote(3), id="a very long text after a vote is a vote"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_reads_real_sms_bodies(text: str, expected: Parsed) -> None:
    assert parse(text) == expected


@given(st.text())
def test_parse_never_raises(text: str) -> None:
    # Any text reads as one of the grammar's results, commands and receipt checks included.
    assert isinstance(parse(text), Parsed)


_DIGITS = {"ascii": "0123456789", "fullwidth": "０１２３４５６７８９", "arabic": "٠١٢٣٤٥٦٧٨٩"}


def _spelt(number: int, script: str) -> str:
    return "".join(_DIGITS[script][int(d)] for d in str(number))


@given(
    prefix=st.text(),
    first=st.integers(min_value=0, max_value=99),
    second=st.integers(min_value=0, max_value=99),
    middle=st.text(),
    suffix=st.text(),
    script=st.sampled_from(sorted(_DIGITS)),
)
def test_two_different_options_are_never_a_vote(
    prefix: str, first: int, second: int, middle: str, suffix: str, script: str
) -> None:
    if first == second:
        second = (first + 1) % 100
    text = f"{prefix} {_spelt(first, script)} {middle} {_spelt(second, script)} {suffix}"
    assert not isinstance(parse(text), Vote)


@given(
    word=st.sampled_from(STOP_WORDS),
    case=st.sampled_from([str.upper, str.lower, str.title, str.swapcase]),
    before=st.sampled_from(["", " ", "\n", "\t "]),
    after=st.sampled_from(["", " ", "\r\n", " \t"]),
)
def test_a_stop_word_body_is_an_opt_out_and_never_a_vote(
    word: str, case: Callable[[str], str], before: str, after: str
) -> None:
    parsed = parse(f"{before}{case(word)}{after}")
    assert parsed == Keyword("stop")
    assert not isinstance(parsed, Vote)
