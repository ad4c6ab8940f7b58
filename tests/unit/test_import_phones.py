"""The registry's phone shortcuts give exactly what the full parser gives, or step aside."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.imports.e164 import PhoneReader
from gateway.phones import to_e164

VE = PhoneReader("VE")

# (as written, E.164 or None, whether the shortcut answers it)
NUMBERS = [
    ("+584141234567", "+584141234567", True),
    ("+58 414 123 4567", "+584141234567", True),
    ("+58-414-123.45.67", "+584141234567", True),
    ("  +584141234567  ", "+584141234567", True),
    ("584141234567", "+584141234567", True),
    ("58 414 1234567", "+584141234567", True),
    ("0414-123.45.67", "+584141234567", True),
    ("0414 1234567", "+584141234567", True),
    ("04141234567", "+584141234567", True),
    ("0212-555.66.77", "+582125556677", True),
    ("+5804141234567", "+584141234567", False),  # a trunk 0 after the code, which parse drops
    ("+58414123456", None, False),  # nine digits: not a Venezuelan length
    ("+5841412345678", None, False),  # eleven
    ("+581234567", "+581234567", False),  # seven: possible locally only, still a phone
    ("0041412345678", "+41412345678", False),  # 00 dials abroad: Switzerland
    ("00584141234567", "+584141234567", False),  # dialled abroad, to Venezuela
    ("4141234567", "+584141234567", False),  # no trunk prefix, ten digits
    ("414-123-4567", None, False),  # long and without a 0: read as +41 41…, too short there
    ("+1 212 555 0100", "+12125550100", False),  # another country
    ("(0414) 123-4567", "+584141234567", False),  # brackets are left to the parser
    ("0414-1234567 ext. 12", "+584141234567", False),  # an extension is dropped by the parser
    ("٠٤١٤١٢٣٤٥٦٧", None, False),  # Arabic-Indic digits, read as international
    ("0414123456", "+580414123456", False),  # too short without its 0, so the 0 is kept
    ("0414-123-456-", "+580414123456", False),  # the same, and a trailing separator
    ("0800-FLOWERS", "+588003569377", False),  # letters on the keypad
    ("abc", None, False),
    ("+", None, False),
    ("0", None, False),
    ("", None, False),
]


@pytest.mark.parametrize(
    ("written", "expected", "shortcut"), NUMBERS, ids=[repr(n[0]) for n in NUMBERS]
)
def test_a_number_reads_the_same_with_or_without_the_shortcut(
    written: str, expected: str | None, shortcut: bool
) -> None:
    assert to_e164(written, "VE") == expected
    assert VE(written) == expected
    taken = bool(written.strip()) and VE._fast(written.strip()) is not None
    assert taken == shortcut


REGIONS = ["VE", "US", "CO", "GH", "KE", "DE", "IN", "IT", "MX", "NG", "FR", "GB", "AR", "BR"]


def spellings(rng: random.Random, code: str) -> str:
    """A number as people write them: a prefix, 1 to 16 digits, perhaps separators."""
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 16)))
    prefix = rng.choice(["+" + code, code, "0", "00", "1", "+", ""])
    text = prefix + digits
    if rng.random() < 0.5:
        text = "".join(c + (rng.choice(" -.") if rng.random() < 0.2 else "") for c in text)
    return text


@pytest.mark.parametrize("region", REGIONS)
def test_five_thousand_numbers_read_the_same_both_ways(region: str) -> None:
    reader, rng = PhoneReader(region), random.Random(f"phones-{region}")
    code = str(reader.country)
    numbers = [spellings(rng, code) for _ in range(5_000)]
    disagree = [n for n in numbers if reader(n) != to_e164(n, region)]
    assert disagree == []


def test_the_shortcut_answers_every_usual_spelling_of_a_venezuelan_mobile() -> None:
    rng = random.Random("shortcut")
    for _ in range(500):
        mobile = f"{rng.choice(['412', '414', '416', '424', '426'])}{rng.randrange(10**7):07d}"
        usual = [f"+58{mobile}", f"58{mobile}", f"0{mobile[:3]}-{mobile[3:]}", f"0{mobile}"]
        assert [VE._fast(w) for w in usual] == [f"+58{mobile}"] * 4


def test_a_region_whose_plan_rewrites_numbers_takes_no_shortcut() -> None:
    # Argentina's trunk prefix is a pattern with a rewriting rule: only the parser reads it.
    assert not PhoneReader("AR").enabled
    assert not PhoneReader("XX").enabled  # and an unknown region has no plan at all


@settings(max_examples=500, deadline=None, database=None)
@given(
    region=st.sampled_from(REGIONS),
    written=st.text(alphabet="0123456789+-. ()x٣", max_size=24),
)
def test_any_text_reads_the_same_both_ways(region: str, written: str) -> None:
    assert PhoneReader(region)(written) == to_e164(written, region)
