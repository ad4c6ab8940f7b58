"""The nouns of a consultation, as plain immutable values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo


class RevotePolicy(StrEnum):
    FIRST = "first"  # the first valid vote stands
    LAST = "last"  # a later vote replaces the earlier one until the close


@dataclass(frozen=True)
class Consultation:
    id: int
    slug: str
    name: str
    opens_at: datetime  # timezone-aware
    closes_at: datetime  # timezone-aware
    timezone: str = "America/Caracas"
    min_age: int = 15
    max_age: int | None = None
    winners: int = 1
    revote: RevotePolicy = RevotePolicy.FIRST
    require_id: bool = False
    status: str = "open"  # draft | open | closed | certified: only "open" takes votes
    closed_at: datetime | None = None  # when operators closed it, if they did

    def close_date(self) -> date:
        """The calendar date of the close, in the consultation's own time zone."""
        return self.closes_at.astimezone(ZoneInfo(self.timezone)).date()


@dataclass(frozen=True)
class Person:
    id: int
    national_id: str
    circuit_id: int
    birth_date: date
    language: str | None = None  # as the registry gives it, if it does


@dataclass(frozen=True)
class Ballot:
    circuit_id: int
    options: dict[int, str] = field(default_factory=dict)  # option number -> title

    def has(self, option: int) -> bool:
        return option in self.options


@dataclass(frozen=True)
class Participation:
    """That a person voted, when, and under which receipt: never what they chose."""

    person_id: int
    receipt: str
    voted_at: datetime
    revision: int = 0  # how many times the `last` policy has replaced it
