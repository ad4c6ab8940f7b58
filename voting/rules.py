"""Who may vote, when, on what, and what happens to a second vote.

Each rule is a small function of plain values; `judge` strings them together in the order a
voter would want the reasons: is the consultation open, who are you, may you vote, is that an
option on your ballot, have you voted already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from voting.model import Ballot, Consultation, Participation, Person, RevotePolicy


class Reason(StrEnum):
    NOT_OPEN = "not_open"
    CLOSED = "closed"
    NOT_REGISTERED = "not_registered"  # also "this ID is not on this phone": the same words
    ID_NEEDED = "id_needed"
    AGE = "age"
    NO_SUCH_OPTION = "no_such_option"
    ALREADY_VOTED = "already_voted"


@dataclass(frozen=True)
class Rejected:
    reason: Reason
    person: Person | None = None
    standing: Participation | None = None  # the vote that stands, for ALREADY_VOTED


@dataclass(frozen=True)
class Accepted:
    person: Person
    option: int
    replaces: Participation | None = None  # the earlier vote this one replaces (policy LAST)


Verdict = Accepted | Rejected


def window_reason(consultation: Consultation, at: datetime) -> Reason | None:
    """Voting is open from `opens_at` (inclusive) to `closes_at` (exclusive), while the
    operators have it open: a draft has not opened, and a closed one stays closed."""
    if consultation.status == "draft":
        return Reason.NOT_OPEN
    if closed_by_operators(consultation, at):
        return Reason.CLOSED
    if at < consultation.opens_at:
        return Reason.NOT_OPEN
    if at >= consultation.closes_at:
        return Reason.CLOSED
    return None


def closed_by_operators(consultation: Consultation, at: datetime) -> bool:
    """Closed (or certified) by the time the message was received: judged on receipt time, so
    a vote still queued when the operator pressed close counts."""
    if consultation.status not in {"closed", "certified"}:
        return False
    return consultation.closed_at is None or at >= consultation.closed_at


def identify(
    people_on_phone: Sequence[Person], national_id: str | None, require_id: bool
) -> Person | Reason:
    """The one registered person this message speaks for.

    A phone shared by several people, or a consultation that requires it, needs the ID. An ID
    that is not on this phone gets the same answer as an unknown number, so that nobody can
    learn from the reply whether an ID is in the registry.
    """
    if national_id is not None:
        matches = [p for p in people_on_phone if p.national_id == national_id]
        return matches[0] if matches else Reason.NOT_REGISTERED
    if not people_on_phone:
        return Reason.NOT_REGISTERED
    if require_id or len(people_on_phone) > 1:
        return Reason.ID_NEEDED
    return people_on_phone[0]


def age_on(birth: date, day: date) -> int:
    before_birthday = (day.month, day.day) < (birth.month, birth.day)
    return day.year - birth.year - int(before_birthday)


def age_allowed(consultation: Consultation, birth: date) -> bool:
    """The age band holds on the consultation's close date, in its own time zone."""
    age = age_on(birth, consultation.close_date())
    return age >= consultation.min_age and (
        consultation.max_age is None or age <= consultation.max_age
    )


def second_vote(
    policy: RevotePolicy, standing: Participation, at: datetime
) -> Participation | Reason:
    """Under LAST a later message replaces the standing vote; otherwise it stands.

    Messages can be processed out of order, so "later" is the provider's receive time, not the
    order we happen to see them in.
    """
    if policy is RevotePolicy.LAST and at > standing.voted_at:
        return standing
    return Reason.ALREADY_VOTED


def judge(  # noqa: PLR0913 - each argument is one independent fact the verdict depends on
    consultation: Consultation,
    at: datetime,
    option: int,
    national_id: str | None,
    people_on_phone: Sequence[Person],
    ballots: dict[int, Ballot],
    standing_votes: dict[int, Participation],
) -> Verdict:
    """The verdict on one vote message, received at `at`."""
    if reason := window_reason(consultation, at):
        return Rejected(reason)
    person = identify(people_on_phone, national_id, consultation.require_id)
    if isinstance(person, Reason):
        return Rejected(person)
    if not age_allowed(consultation, person.birth_date):
        return Rejected(Reason.AGE, person)
    ballot = ballots.get(person.circuit_id)
    if ballot is None or not ballot.has(option):
        return Rejected(Reason.NO_SUCH_OPTION, person)
    standing = standing_votes.get(person.id)
    if standing is None:
        return Accepted(person, option)
    replaced = second_vote(consultation.revote, standing, at)
    if isinstance(replaced, Reason):
        return Rejected(replaced, person, standing)
    return Accepted(person, option, replaces=replaced)


def consultation_for(consultations: Sequence[Consultation], at: datetime) -> Consultation | None:
    """The consultation a message received at `at` speaks to.

    The one open at that moment; if none is, the one that closed most recently (so the voter
    hears "closed"), else the next to open (so they hear when). Rounds recur and are kept side
    by side, but only one is open at a time in a country.
    """
    open_now = [c for c in consultations if window_reason(c, at) is None]
    if open_now:
        return max(open_now, key=lambda c: c.opens_at)
    closed = [c for c in consultations if c.closes_at <= at or closed_by_operators(c, at)]
    if closed:
        return max(closed, key=lambda c: c.closes_at)
    upcoming = [c for c in consultations if c.opens_at > at]
    return min(upcoming, key=lambda c: c.opens_at) if upcoming else None
