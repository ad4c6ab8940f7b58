"""Winners per circuit: plurality for 1 or 2 places, the published tie-break, and the quorum.

The order of the checks is the order an electoral commission would follow:

1. **Quorum.** At least `quorum` of the circuit's eligible people must have voted (10% by
   default). A circuit below it gets no winner at all, and says so; a circuit where nobody is
   eligible cannot reach a positive share. A quorum of 0 switches the rule off.
2. **Plurality.** Options are ranked by counted votes. Only an option with at least one vote can
   win, so a circuit with no votes has no winner and a lone voted option takes one place only.
3. **Ties.** If options are level on votes across the last winning place (more of them than
   places left), the consultation's rule, chosen and published before voting, settles it:

   - ``earliest``: the option that reached the tied count N first wins, that is the one whose
     N-th counted vote was cast earliest. Among counted votes that is each option's latest
     ``cast_at``. Options whose N-th vote carries the very same time cannot be told apart:
     they go to a runoff rather than be split by anything arbitrary.
   - ``lot``: a seeded draw anyone can repeat. For each tied option, take the SHA-256 of the
     UTF-8 text ``"{seed}:{circuit_code}:{option}"`` (for example ``"9f0c...:C1:3"``) as
     lowercase hex; the options with the smallest digests win the places at stake. In a shell:
     ``printf '%s' '9f0c...:C1:3' | sha256sum``.
   - ``runoff``: nobody takes the contested places; the circuit is flagged for a runoff.

Options level with each other but all inside the winning places (two options tied for first
when two win) are not a tie for a winning place: both win, and nothing needs settling. With
ranked counts only one group of level options can straddle the last place, so a circuit has at
most one tie to settle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from fractions import Fraction


class TieBreak(StrEnum):
    EARLIEST = "earliest"
    LOT = "lot"
    RUNOFF = "runoff"


@dataclass(frozen=True)
class WinnerRules:
    """A consultation's rules for awarding places, all fixed before voting."""

    winners: int = 1  # places per circuit
    tie_break: TieBreak = TieBreak.EARLIEST
    quorum: float = 0.10  # the minimum share of the eligible who must vote
    lot_seed: str | None = None  # required when tie_break is LOT

    def __post_init__(self) -> None:
        if self.winners < 1:
            raise ValueError("a circuit needs at least one winning place")
        if not 0 <= self.quorum <= 1:
            raise ValueError("the quorum is a share between 0 and 1")


@dataclass(frozen=True)
class Tie:
    """Options level on votes across the last winning place: more of them than places left."""

    options: tuple[int, ...]  # ascending
    votes: int  # the count they share
    places: int  # the winning places they contend for


@dataclass(frozen=True)
class Settlement:
    """What the rule made of a tie: the order it gave, and who is left for a runoff."""

    rule: TieBreak
    # (option, key) in the order the rule ranks them: an ISO time for earliest, a SHA-256
    # digest for lot; empty for runoff, which ranks nobody.
    ranking: tuple[tuple[int, str], ...]
    runoff_options: tuple[int, ...]  # ascending; empty when the rule filled every place
    runoff_places: int


@dataclass(frozen=True)
class CircuitOutcome:
    """The places a circuit awards, and every flag a reader needs to trust them."""

    winners: tuple[int, ...]  # by votes, then in the tie-break's order
    quorum_met: bool
    tie: Tie | None = None
    settlement: Settlement | None = None

    @property
    def tied(self) -> tuple[int, ...]:
        return self.tie.options if self.tie else ()

    @property
    def runoff(self) -> bool:
        return bool(self.settlement and self.settlement.runoff_options)


def quorum_met(votes: int, eligible: int, quorum: float) -> bool:
    """At least `quorum` of the eligible voted; nobody eligible cannot reach a positive share."""
    # The decimal the operator typed, not its binary approximation: 7 of 100 meets 0.07,
    # though 0.07 * 100 is 7.000000000000001 in floating point.
    share = Fraction(repr(quorum))
    if share == 0:
        return True
    return eligible > 0 and votes * share.denominator >= share.numerator * eligible


def standing(counts: Mapping[int, int], places: int) -> tuple[tuple[int, ...], Tie | None]:
    """The options clearly inside the winning places, and the tie across the last one, if any."""
    ranked = sorted((o for o, n in counts.items() if n > 0), key=lambda o: (-counts[o], o))
    if len(ranked) <= places or counts[ranked[places]] != counts[ranked[places - 1]]:
        return tuple(ranked[:places]), None
    cut = counts[ranked[places - 1]]
    clear = tuple(o for o in ranked if counts[o] > cut)
    level = tuple(sorted(o for o in ranked if counts[o] == cut))
    return clear, Tie(level, cut, places - len(clear))


def tie_to_settle(counts: Mapping[int, int], eligible: int, rules: WinnerRules) -> Tie | None:
    """The tie the rule must settle, so a caller can fetch what `earliest` needs for it only."""
    if not quorum_met(sum(counts.values()), eligible, rules.quorum):
        return None
    return standing(counts, rules.winners)[1]


def lot_key(seed: str, circuit_code: str, option: int) -> str:
    """An option's ticket in the draw: smaller wins. See the module docstring."""
    return hashlib.sha256(f"{seed}:{circuit_code}:{option}".encode()).hexdigest()


def reached_key(moment: datetime) -> str:
    """A time as a fixed-width UTC string, so that text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _keys(
    tie: Tie, rules: WinnerRules, circuit_code: str, reached_at: Mapping[int, datetime]
) -> dict[int, str]:
    if rules.tie_break is TieBreak.LOT:
        if rules.lot_seed is None:
            raise ValueError("a draw by lot needs the published seed")
        return {o: lot_key(rules.lot_seed, circuit_code, o) for o in tie.options}
    missing = sorted(set(tie.options) - set(reached_at))
    if missing:
        raise ValueError(f"earliest needs the time each tied option reached it: {missing}")
    return {o: reached_key(reached_at[o]) for o in tie.options}


def _separate(tie: Tie, keys: Mapping[int, str]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(won, still level): the first places by key, unless keys are level across the cut."""
    ordered = sorted(tie.options, key=lambda o: (keys[o], o))
    cut = keys[ordered[tie.places - 1]]
    if keys[ordered[tie.places]] != cut:
        return tuple(ordered[: tie.places]), ()
    won = tuple(o for o in ordered if keys[o] < cut)
    return won, tuple(sorted(o for o in ordered if keys[o] == cut))


def settle(
    tie: Tie, rules: WinnerRules, circuit_code: str, reached_at: Mapping[int, datetime]
) -> tuple[tuple[int, ...], Settlement]:
    """The options the rule awards places to, and how it got there."""
    if rules.tie_break is TieBreak.RUNOFF:
        return (), Settlement(TieBreak.RUNOFF, (), tie.options, tie.places)
    keys = _keys(tie, rules, circuit_code, reached_at)
    won, level = _separate(tie, keys)
    ranking = tuple(sorted(keys.items(), key=lambda item: (item[1], item[0])))
    return won, Settlement(rules.tie_break, ranking, level, tie.places - len(won))


def outcome(
    circuit_code: str,
    counts: Mapping[int, int],
    eligible: int,
    rules: WinnerRules,
    reached_at: Mapping[int, datetime] | None = None,
) -> CircuitOutcome:
    """Who wins in one circuit. `reached_at` maps each tied option to the time it reached the
    tied count; only `earliest` reads it, and only for the options in `tie_to_settle`."""
    if not quorum_met(sum(counts.values()), eligible, rules.quorum):
        return CircuitOutcome((), quorum_met=False)
    clear, tie = standing(counts, rules.winners)
    if tie is None:
        return CircuitOutcome(clear, quorum_met=True)
    won, settlement = settle(tie, rules, circuit_code, reached_at or {})
    return CircuitOutcome(clear + won, True, tie, settlement)
