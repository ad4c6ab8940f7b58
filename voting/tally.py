"""Counting: votes per option, turnout against the eligible count."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptionCount:
    option: int
    title: str
    votes: int


@dataclass(frozen=True)
class CircuitResult:
    code: str
    name: str
    eligible: int
    options: tuple[OptionCount, ...]

    @property
    def votes(self) -> int:
        return sum(o.votes for o in self.options)

    @property
    def turnout(self) -> float:
        """The share of eligible people who voted, 0.0 when nobody is eligible."""
        return round(self.votes / self.eligible, 4) if self.eligible else 0.0


def circuit_result(
    code: str, name: str, eligible: int, titles: dict[int, str], counts: dict[int, int]
) -> CircuitResult:
    """Every option on the ballot appears, with zero votes if nobody chose it."""
    options = tuple(
        OptionCount(number, titles[number], counts.get(number, 0)) for number in sorted(titles)
    )
    return CircuitResult(code, name, eligible, options)
