"""Winners per circuit: plurality, the three tie-break rules, and the quorum flag."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from voting.winners import (
    CircuitOutcome,
    Tie,
    TieBreak,
    WinnerRules,
    lot_key,
    outcome,
    quorum_met,
    tie_to_settle,
)

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
SEED = "semilla-publica"
EARLIEST, LOT, RUNOFF = TieBreak.EARLIEST, TieBreak.LOT, TieBreak.RUNOFF


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass(frozen=True)
class Case:
    counts: dict[int, int]
    winners: tuple[int, ...]
    places: int = 1
    rule: TieBreak = EARLIEST
    eligible: int = 100
    quorum: float = 0.10
    reached: dict[int, datetime] = field(default_factory=dict)
    circuit: str = "C1"
    tied: tuple[int, ...] = ()
    runoff: tuple[int, ...] = ()  # the options left for a runoff
    quorum_met: bool = True


CASES = [
    pytest.param(Case({1: 15, 2: 9, 3: 1}, (1,)), id="a clear leader wins the only place"),
    pytest.param(
        Case({1: 2, 2: 15, 3: 9}, (2, 3), places=2),
        id="the two leaders win when two places are awarded, the first first",
    ),
    pytest.param(
        Case({1: 12, 2: 12, 3: 1}, (1, 2), places=2),
        id="two options level for first both win when two places are awarded, with no tie",
    ),
    pytest.param(
        Case({1: 14, 2: 0, 3: 0}, (1,), places=2),
        id="options with no votes never take the second place",
    ),
    pytest.param(
        Case({1: 8, 2: 8, 3: 1}, (2,), reached={1: at(30), 2: at(5)}, tied=(1, 2)),
        id="a tie for first goes to the option that reached the count first under earliest",
    ),
    pytest.param(
        Case({1: 8, 2: 8, 3: 1}, (2,), rule=LOT, tied=(1, 2)),
        id="a tie for first goes to the smaller digest under lot, here option 2",
    ),
    pytest.param(
        Case({1: 8, 2: 8, 3: 1}, (1,), rule=LOT, circuit="C2", tied=(1, 2)),
        id="the same tie in another circuit is a separate draw, here option 1",
    ),
    pytest.param(
        Case({1: 8, 2: 8, 3: 1}, (), rule=RUNOFF, tied=(1, 2), runoff=(1, 2)),
        id="a tie for first awards nobody and flags a runoff under runoff",
    ),
    pytest.param(
        Case({1: 20, 2: 7, 3: 7, 4: 1}, (1, 3), 2, reached={2: at(50), 3: at(40)}, tied=(2, 3)),
        id="a tie for second place under top-2 settles only the second place under earliest",
    ),
    pytest.param(
        Case({1: 20, 2: 7, 3: 7, 4: 1}, (1, 2), 2, LOT, tied=(2, 3)),
        id="a tie for second place under top-2 is drawn by lot between the tied only",
    ),
    pytest.param(
        Case({1: 20, 2: 7, 3: 7, 4: 1}, (1,), 2, RUNOFF, tied=(2, 3), runoff=(2, 3)),
        id="a tie for second place under runoff keeps the leader and flags the second place",
    ),
    pytest.param(
        Case(
            {1: 20, 2: 7, 3: 7, 4: 7},
            (1, 4),
            2,
            reached={2: at(9), 3: at(8), 4: at(7)},
            tied=(2, 3, 4),
        ),
        id="three options level for second place under top-2 go to the earliest of them",
    ),
    pytest.param(
        Case({1: 6, 2: 6, 3: 6}, (3,), reached={1: at(3), 2: at(2), 3: at(1)}, tied=(1, 2, 3)),
        id="a three-way tie for one place under earliest goes to the first to get there",
    ),
    pytest.param(
        Case({1: 6, 2: 6, 3: 6}, (2, 1), 2, LOT, tied=(1, 2, 3)),
        id="a three-way tie for two places under lot awards the two smallest digests",
    ),
    pytest.param(
        Case({1: 6, 2: 6, 3: 6}, (), 2, RUNOFF, tied=(1, 2, 3), runoff=(1, 2, 3)),
        id="a three-way tie for two places under runoff awards neither place",
    ),
    pytest.param(
        Case({1: 8, 2: 8}, (), reached={1: at(4), 2: at(4)}, tied=(1, 2), runoff=(1, 2)),
        id="options that reached the count at the very same moment go to a runoff under earliest",
    ),
    pytest.param(
        Case(
            {1: 6, 2: 6, 3: 6},
            (1,),
            2,
            reached={1: at(1), 2: at(5), 3: at(5)},
            tied=(1, 2, 3),
            runoff=(2, 3),
        ),
        id="earliest awards what it can separate and leaves the rest of the tie to a runoff",
    ),
    pytest.param(
        Case({1: 9}, (), quorum_met=False),
        id="a clear leader one vote short of the quorum is not awarded",
    ),
    pytest.param(
        Case({1: 4, 2: 4}, (), rule=RUNOFF, quorum_met=False),
        id="a tie below the quorum is neither settled nor sent to a runoff",
    ),
    pytest.param(Case({1: 6, 2: 4}, (1,)), id="exactly the quorum share of the eligible is enough"),
    pytest.param(
        Case({1: 7}, (1,), quorum=0.07),
        id="seven of a hundred meets a seven percent quorum despite floating point",
    ),
    pytest.param(
        Case({1: 1}, (1,), eligible=1000, quorum=0.0),
        id="a quorum of zero switches the rule off",
    ),
    pytest.param(Case({1: 0, 2: 0}, (), quorum_met=False), id="zero votes is below any quorum"),
    pytest.param(
        Case({1: 0, 2: 0}, (), quorum=0.0),
        id="zero votes has no winner even with the quorum switched off",
    ),
    pytest.param(
        Case({}, (), eligible=0, quorum_met=False),
        id="a circuit where nobody is eligible does not meet the quorum",
    ),
    pytest.param(
        Case({1: 3}, (), eligible=0, quorum_met=False),
        id="votes where nobody is eligible never meet the quorum or win",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_the_outcome_of_a_circuit(case: Case) -> None:
    rules = WinnerRules(case.places, case.rule, case.quorum, SEED)
    result = outcome(case.circuit, case.counts, case.eligible, rules, case.reached)
    assert result.winners == case.winners
    assert result.quorum_met == case.quorum_met
    assert result.tied == case.tied
    assert result.runoff == bool(case.runoff)
    assert (result.settlement.runoff_options if result.settlement else ()) == case.runoff


def test_a_runoff_says_how_many_places_it_is_for() -> None:
    rules = WinnerRules(2, EARLIEST, 0.1)
    reached = {1: at(1), 2: at(5), 3: at(5)}
    result = outcome("C1", {1: 6, 2: 6, 3: 6}, 100, rules, reached)
    assert result.tie == Tie((1, 2, 3), votes=6, places=2)
    assert result.settlement is not None
    assert result.settlement.runoff_places == 1


def test_earliest_publishes_the_time_each_tied_option_reached_the_count() -> None:
    rules = WinnerRules(1, EARLIEST, 0.1)
    result = outcome("C1", {1: 8, 2: 8}, 100, rules, {1: at(30), 2: at(5)})
    assert result.settlement is not None
    assert result.settlement.ranking == (
        (2, "2026-03-08T12:05:00.000000+00:00"),
        (1, "2026-03-08T12:30:00.000000+00:00"),
    )


def test_the_lot_ranking_is_the_documented_sha256_of_seed_circuit_and_option() -> None:
    result = outcome("C1", {1: 6, 2: 6, 3: 6}, 100, WinnerRules(2, LOT, 0.1, SEED))
    assert result.settlement is not None
    digests = {o: hashlib.sha256(f"{SEED}:C1:{o}".encode()).hexdigest() for o in (1, 2, 3)}
    assert result.settlement.ranking == tuple(sorted(digests.items(), key=lambda kv: kv[1]))


def test_the_lot_key_matches_sha256sum_in_a_shell() -> None:
    done = subprocess.run(
        ["sha256sum"], input=f"{SEED}:C1:2", capture_output=True, text=True, check=True
    )
    assert done.stdout.split()[0] == lot_key(SEED, "C1", 2)


def test_the_lot_draw_does_not_depend_on_the_order_the_counts_come_in() -> None:
    rules = WinnerRules(1, LOT, 0.1, SEED)
    forward = outcome("C9", {1: 5, 2: 5, 3: 5}, 100, rules)
    backward = outcome("C9", {3: 5, 2: 5, 1: 5}, 100, rules)
    assert forward == backward


def test_another_seed_is_another_draw() -> None:
    winners = {
        outcome("C1", {1: 5, 2: 5}, 100, WinnerRules(1, LOT, 0.1, f"seed-{n}")).winners
        for n in range(20)
    }
    assert winners == {(1,), (2,)}


@pytest.mark.parametrize(
    ("rules", "reached", "message"),
    [
        (WinnerRules(1, LOT, 0.1), {}, "needs the published seed"),
        (WinnerRules(1, EARLIEST, 0.1), {1: T0}, r"reached it: \[2\]"),
    ],
    ids=[
        "a draw by lot without a seed is refused rather than invented",
        "earliest without the time of every tied option is refused",
    ],
)
def test_a_tie_break_missing_its_evidence_is_an_error(
    rules: WinnerRules, reached: dict[int, datetime], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        outcome("C1", {1: 5, 2: 5}, 100, rules, reached)


@pytest.mark.parametrize(
    ("winners", "quorum"),
    [(0, 0.1), (1, -0.1), (1, 1.5)],
    ids=[
        "no winning places is refused",
        "a negative quorum is refused",
        "a quorum above one is refused",
    ],
)
def test_impossible_rules_are_refused(winners: int, quorum: float) -> None:
    with pytest.raises(ValueError, match="winning place|quorum"):
        WinnerRules(winners, EARLIEST, quorum)


@pytest.mark.parametrize(
    ("counts", "eligible", "expected"),
    [
        ({1: 8, 2: 8}, 100, Tie((1, 2), 8, 1)),
        ({1: 8, 2: 7}, 100, None),
        ({1: 4, 2: 4}, 100, None),
    ],
    ids=[
        "a tie for the place is the one to settle",
        "a clear leader leaves nothing to settle",
        "a tie below the quorum leaves nothing to settle",
    ],
)
def test_the_tie_to_settle_is_known_before_any_evidence_is_fetched(
    counts: dict[int, int], eligible: int, expected: Tie | None
) -> None:
    assert tie_to_settle(counts, eligible, WinnerRules(1, EARLIEST, 0.1)) == expected


@pytest.mark.parametrize(
    ("votes", "eligible", "quorum", "met"),
    [
        (10, 100, 0.10, True),
        (9, 100, 0.10, False),
        (1, 3, 1 / 3, True),
        (2, 13, 0.15, True),
        (1, 7, 0.15, False),
        (0, 0, 0.0, True),
    ],
    ids=[
        "ten of a hundred meets ten percent",
        "nine of a hundred does not",
        "one of three meets a third given as a float",
        "two of thirteen meets fifteen percent",
        "one of seven does not",
        "a zero quorum is met even by an empty circuit",
    ],
)
def test_quorum_met(votes: int, eligible: int, quorum: float, met: bool) -> None:
    assert quorum_met(votes, eligible, quorum) is met


def test_an_outcome_without_a_tie_has_nothing_tied_and_no_runoff() -> None:
    assert CircuitOutcome((1,), quorum_met=True).tied == ()
    assert not CircuitOutcome((1,), quorum_met=True).runoff
