"""Receipt codes: unguessable, unambiguous to read aloud, and forgiving when typed back."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from voting.receipts import ALPHABET, LENGTH, new_receipt, normalise_receipt, symbols

CONFUSABLE = "0O1ILU"
SHAPE = re.compile(rf"[{ALPHABET}]{{3}}-[{ALPHABET}]{{3}}-[{ALPHABET}]{{3}}")


def test_a_new_receipt_is_three_groups_of_three_from_the_alphabet() -> None:
    for _ in range(200):
        assert SHAPE.fullmatch(new_receipt())


def test_the_alphabet_has_no_confusable_characters() -> None:
    assert not set(CONFUSABLE) & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET)
    assert ALPHABET.isupper()


def test_a_receipt_carries_at_least_forty_bits_of_entropy() -> None:
    assert len(ALPHABET) ** LENGTH >= 2**40


def test_every_byte_value_maps_evenly_onto_the_alphabet_or_onto_nothing() -> None:
    # All 256 byte values once: each symbol must come out equally often, the rest be dropped.
    counts = Counter(symbols(bytes(range(256))))
    assert set(counts) == set(ALPHABET)
    assert set(counts.values()) == {256 // len(ALPHABET)}


def test_ten_thousand_receipts_are_all_distinct() -> None:
    receipts = {new_receipt() for _ in range(10_000)}
    assert len(receipts) == 10_000


def test_a_new_receipt_reads_back_as_itself() -> None:
    receipt = new_receipt()
    assert normalise_receipt(receipt) == receipt


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        pytest.param("K7Q-2M9-XAB", "K7Q-2M9-XAB", id="the printed form is kept"),
        pytest.param("k7q-2m9-xab", "K7Q-2M9-XAB", id="lower case is accepted"),
        pytest.param("K7Q2M9XAB", "K7Q-2M9-XAB", id="no dashes is accepted"),
        pytest.param("k7q 2m9 xab", "K7Q-2M9-XAB", id="spaces instead of dashes are accepted"),
        pytest.param(" K7Q-2M9-XAB\n", "K7Q-2M9-XAB", id="spaces around the code are ignored"),
        pytest.param("K7Q-2M9-XA", None, id="a code one short is refused"),
        pytest.param("K7Q-2M9-XABC", None, id="a code one long is refused"),
        pytest.param("", None, id="an empty code is refused"),
        pytest.param("K7Q-2M9-XA0", None, id="a zero is refused"),
        pytest.param("K7Q-2M9-XAO", None, id="an O is refused"),
        pytest.param("K7Q-2M9-XA1", None, id="a one is refused"),
        pytest.param("K7Q-2M9-XAI", None, id="an I is refused"),
        pytest.param("K7Q-2M9-XAL", None, id="an L is refused"),
        pytest.param("K7Q-2M9-XAU", None, id="a U is refused"),
        pytest.param("K7Q-2M9-XAÑ", None, id="a letter outside the alphabet is refused"),
    ],
)
def test_normalise_receipt(typed: str, expected: str | None) -> None:
    assert normalise_receipt(typed) == expected
