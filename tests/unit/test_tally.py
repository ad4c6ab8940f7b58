"""Counting a circuit: every option, and turnout against the eligible count."""

from __future__ import annotations

import pytest

from voting.tally import OptionCount, circuit_result

TITLES = {2: "Dotacion del ambulatorio", 1: "Cancha deportiva", 3: "Tuberias de agua"}


def test_every_option_on_the_ballot_appears_in_order_even_with_no_votes() -> None:
    result = circuit_result("CC-0101", "Catia", 100, TITLES, {2: 7})
    assert result.options == (
        OptionCount(1, "Cancha deportiva", 0),
        OptionCount(2, "Dotacion del ambulatorio", 7),
        OptionCount(3, "Tuberias de agua", 0),
    )
    assert result.votes == 7


def test_a_circuit_with_no_votes_lists_every_option_at_zero() -> None:
    result = circuit_result("CC-0101", "Catia", 100, TITLES, {})
    assert [o.votes for o in result.options] == [0, 0, 0]
    assert result.votes == 0
    assert result.turnout == 0.0


@pytest.mark.parametrize(
    ("eligible", "counts", "turnout"),
    [
        pytest.param(3, {1: 1}, 0.3333, id="a third rounds to four decimals"),
        pytest.param(3, {1: 2}, 0.6667, id="two thirds rounds up"),
        pytest.param(8, {1: 1}, 0.125, id="an exact share is kept"),
        pytest.param(100, {1: 10, 2: 15, 3: 20}, 0.45, id="the share sums every option"),
        pytest.param(4, {1: 2, 2: 2}, 1.0, id="everyone voting is a turnout of one"),
        pytest.param(0, {}, 0.0, id="zero eligible is a turnout of zero"),
        pytest.param(0, {1: 3}, 0.0, id="zero eligible with votes is still zero, not an error"),
    ],
)
def test_turnout(eligible: int, counts: dict[int, int], turnout: float) -> None:
    assert circuit_result("CC-0101", "Catia", eligible, TITLES, counts).turnout == turnout
