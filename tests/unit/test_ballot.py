"""A ballot listed by SMS: one segment when it fits, numbered parts when not, USSD when long."""

from __future__ import annotations

import pytest

from messages.ballot import MAX_PARTS, ballot_texts
from messages.gsm import measure
from messages.voice import Voice

SHORT = {n: f"Proyecto {n}" for n in range(1, 6)}
LONG = {n: f"Rehabilitación integral de las aguas, sector {n}" for n in range(1, 8)}
HUGE = dict.fromkeys(range(1, 10), "Construcción de la nueva sede del consejo comunal y biblioteca")


def fits_one_gsm7_segment(text: str) -> bool:
    cost = measure(text)
    return cost.encoding == "GSM-7" and cost.segments == 1


@pytest.mark.parametrize("locale", ["es", "en"])
def test_a_short_ballot_is_one_message_with_every_option(locale: str) -> None:
    [text] = ballot_texts(Voice(locale), "Demo", SHORT, ussd_code=None)
    assert fits_one_gsm7_segment(text)
    assert all(f"{n} Proyecto {n}" in text for n in SHORT)


def test_a_long_ballot_is_split_into_numbered_parts_each_one_segment() -> None:
    parts = ballot_texts(Voice("es"), "Demo", LONG, ussd_code=None)
    assert 1 < len(parts) <= MAX_PARTS
    assert all(fits_one_gsm7_segment(part) for part in parts)
    assert [part.splitlines()[0] for part in parts] == [
        f"({i}/{len(parts)})" for i in range(1, len(parts) + 1)
    ]
    joined = "\n".join(parts)
    assert all(f"{n} Rehabilitacion integral" in joined for n in LONG)  # accents transliterated


def test_a_ballot_needing_too_many_parts_points_to_ussd_when_there_is_one() -> None:
    [text] = ballot_texts(Voice("es"), "Demo", HUGE, ussd_code="*123#")
    assert "*123#" in text
    assert fits_one_gsm7_segment(text)


def test_without_ussd_a_huge_ballot_is_still_sent_in_one_segment_parts() -> None:
    parts = ballot_texts(Voice("es"), "Demo", HUGE, ussd_code=None)
    assert len(parts) > MAX_PARTS
    assert all(fits_one_gsm7_segment(part) for part in parts)


def test_with_ucs2_allowed_titles_keep_their_accents() -> None:
    parts = ballot_texts(Voice("es", allow_ucs2=True), "Demo", {1: "Votación", 2: "Peña"}, None)
    assert "Votación" in "\n".join(parts)
    assert measure(parts[0]).encoding == "UCS-2"
