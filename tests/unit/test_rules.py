"""The voting rules: the window, who is voting, their age, a second vote, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from voting.model import Ballot, Consultation, Participation, Person, RevotePolicy
from voting.rules import (
    Accepted,
    Reason,
    Rejected,
    Verdict,
    age_allowed,
    age_on,
    consultation_for,
    identify,
    judge,
    second_vote,
    window_reason,
)

CARACAS = ZoneInfo("America/Caracas")
TOKYO = ZoneInfo("Asia/Tokyo")
OPENS = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # 08:00 in Caracas
CLOSES = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 22:00 on 30 November in Caracas
MINUTE = timedelta(minutes=1)


def consultation(**changes: object) -> Consultation:
    base = Consultation(
        id=1, slug="cpn-2026", name="Consulta de prueba", opens_at=OPENS, closes_at=CLOSES
    )
    return replace(base, **changes)  # type: ignore[arg-type]


ANA = Person(id=1, national_id="V11111111", circuit_id=10, birth_date=date(1990, 5, 1))
BETO = Person(id=2, national_id="V22222222", circuit_id=10, birth_date=date(1985, 2, 3))
NINO = Person(id=3, national_id="V33333333", circuit_id=10, birth_date=date(2015, 1, 1))
ELSEWHERE = Person(id=4, national_id="V44444444", circuit_id=99, birth_date=date(1990, 1, 1))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(OPENS - MINUTE, Reason.NOT_OPEN, id="a minute before the open is not open"),
        pytest.param(OPENS, None, id="the opening instant is open"),
        pytest.param(CLOSES - MINUTE, None, id="a minute before the close is open"),
        pytest.param(CLOSES, Reason.CLOSED, id="the closing instant is closed"),
        pytest.param(CLOSES + MINUTE, Reason.CLOSED, id="a minute after the close is closed"),
        pytest.param(
            datetime(2026, 11, 30, 8, 0, tzinfo=CARACAS), None, id="the open in caracas is open"
        ),
        pytest.param(
            datetime(2026, 11, 30, 7, 59, tzinfo=CARACAS),
            Reason.NOT_OPEN,
            id="a minute before the open in caracas is not open",
        ),
        pytest.param(
            datetime(2026, 12, 1, 11, 0, tzinfo=TOKYO),
            Reason.CLOSED,
            id="the close seen from tokyo is closed",
        ),
        pytest.param(
            datetime(2026, 12, 1, 10, 59, tzinfo=TOKYO),
            None,
            id="a minute before the close seen from tokyo is open",
        ),
    ],
)
def test_window_reason(at: datetime, expected: Reason | None) -> None:
    assert window_reason(consultation(), at) == expected


def test_a_window_given_in_caracas_time_is_the_same_window() -> None:
    local = consultation(opens_at=OPENS.astimezone(CARACAS), closes_at=CLOSES.astimezone(CARACAS))
    assert window_reason(local, OPENS) is None
    assert window_reason(local, CLOSES) is Reason.CLOSED


@pytest.mark.parametrize(
    ("people", "national_id", "require_id", "expected"),
    [
        pytest.param(
            [], None, False, Reason.NOT_REGISTERED, id="an unknown phone is not registered"
        ),
        pytest.param(
            [],
            "V11111111",
            False,
            Reason.NOT_REGISTERED,
            id="an unknown phone with an ID is not registered",
        ),
        pytest.param([ANA], None, False, ANA, id="the only person on a phone needs no ID"),
        pytest.param([ANA], None, True, Reason.ID_NEEDED, id="a consultation may require the ID"),
        pytest.param([ANA], "V11111111", True, ANA, id="a required ID that matches is that person"),
        pytest.param([ANA, BETO], None, False, Reason.ID_NEEDED, id="a shared phone needs the ID"),
        pytest.param([ANA, BETO], "V22222222", False, BETO, id="an ID picks one on a shared phone"),
        pytest.param(
            [ANA],
            "V22222222",
            False,
            Reason.NOT_REGISTERED,
            id="an ID not on the phone is not registered",
        ),
        pytest.param(
            [ANA, BETO],
            "V99999999",
            True,
            Reason.NOT_REGISTERED,
            id="an unknown ID on a shared phone is not registered",
        ),
    ],
)
def test_identify(
    people: list[Person], national_id: str | None, require_id: bool, expected: Person | Reason
) -> None:
    assert identify(people, national_id, require_id) == expected


def test_an_id_not_on_the_phone_gets_the_same_answer_as_an_unknown_number() -> None:
    # Otherwise the reply would tell a stranger whether an ID is in the registry.
    someone_elses_id = identify([ANA], "V22222222", require_id=False)
    unknown_phone = identify([], None, require_id=False)
    unknown_phone_with_id = identify([], "V22222222", require_id=False)
    assert someone_elses_id == unknown_phone == unknown_phone_with_id == Reason.NOT_REGISTERED


@pytest.mark.parametrize(
    ("birth", "day", "age"),
    [
        pytest.param(date(2011, 11, 30), date(2026, 11, 30), 15, id="a birthday counts that day"),
        pytest.param(date(2011, 12, 1), date(2026, 11, 30), 14, id="the day before is a year less"),
        pytest.param(date(2011, 1, 1), date(2026, 12, 31), 15, id="the last day of a year"),
        pytest.param(date(2008, 2, 29), date(2024, 2, 29), 16, id="a leap day birthday"),
        pytest.param(date(2008, 2, 29), date(2023, 2, 28), 14, id="a leap day waits for march"),
        pytest.param(date(2008, 2, 29), date(2023, 3, 1), 15, id="a leap day is of age on march 1"),
    ],
)
def test_age_on(birth: date, day: date, age: int) -> None:
    assert age_on(birth, day) == age


def test_the_close_date_is_taken_in_the_consultations_time_zone() -> None:
    assert consultation().close_date() == date(2026, 11, 30)
    assert consultation(timezone="UTC").close_date() == date(2026, 12, 1)


YOUTH = {"min_age": 15, "max_age": 35}


@pytest.mark.parametrize(
    ("changes", "birth", "allowed"),
    [
        pytest.param({}, date(2011, 11, 30), True, id="fifteen on the close date may vote"),
        pytest.param(
            {},
            date(2011, 12, 1),
            False,
            id="fifteen on the utc close date but not in caracas may not vote",
        ),
        pytest.param(
            {"timezone": "UTC"},
            date(2011, 12, 1),
            True,
            id="fifteen on the close date of a utc consultation may vote",
        ),
        pytest.param({}, date(1930, 1, 1), True, id="there is no upper age by default"),
        pytest.param({"min_age": 18}, date(2009, 1, 1), False, id="a higher minimum age holds"),
        pytest.param(YOUTH, date(1991, 11, 30), True, id="thirty five may vote in a youth round"),
        pytest.param(
            YOUTH, date(1990, 11, 30), False, id="thirty six may not vote in a youth round"
        ),
        pytest.param(
            YOUTH,
            date(1990, 12, 1),
            True,
            id="thirty six the day after the close may still vote in a youth round",
        ),
        pytest.param(YOUTH, date(2011, 12, 1), False, id="fourteen may not vote in a youth round"),
    ],
)
def test_age_allowed(changes: dict[str, object], birth: date, allowed: bool) -> None:
    assert age_allowed(consultation(**changes), birth) is allowed


STANDING = Participation(person_id=1, receipt="K7Q-2M9-XAB", voted_at=OPENS + timedelta(hours=1))


@pytest.mark.parametrize(
    ("policy", "at", "expected"),
    [
        pytest.param(
            RevotePolicy.FIRST,
            STANDING.voted_at + MINUTE,
            Reason.ALREADY_VOTED,
            id="under first a later vote is refused",
        ),
        pytest.param(
            RevotePolicy.FIRST,
            STANDING.voted_at - MINUTE,
            Reason.ALREADY_VOTED,
            id="under first an earlier received vote is refused",
        ),
        pytest.param(
            RevotePolicy.LAST,
            STANDING.voted_at + MINUTE,
            STANDING,
            id="under last a later vote replaces the standing one",
        ),
        pytest.param(
            RevotePolicy.LAST,
            STANDING.voted_at,
            Reason.ALREADY_VOTED,
            id="under last a vote received at the same instant is refused",
        ),
        pytest.param(
            RevotePolicy.LAST,
            STANDING.voted_at - MINUTE,
            Reason.ALREADY_VOTED,
            id="under last an earlier received vote processed late is refused",
        ),
    ],
)
def test_second_vote(policy: RevotePolicy, at: datetime, expected: Participation | Reason) -> None:
    assert second_vote(policy, STANDING, at) == expected


@dataclass(frozen=True)
class Scene:
    """One vote message and everything the verdict on it depends on."""

    at: datetime = OPENS + timedelta(hours=2)
    option: int = 3
    national_id: str | None = None
    people: tuple[Person, ...] = (ANA,)
    ballots: dict[int, Ballot] = field(
        default_factory=lambda: {10: Ballot(10, {n: f"Proyecto {n}" for n in range(1, 6)})}
    )
    standing: dict[int, Participation] = field(default_factory=dict)
    revote: RevotePolicy = RevotePolicy.FIRST


LATE = CLOSES + MINUTE
EARLY = OPENS - MINUTE
VOTED = {ANA.id: STANDING}


@pytest.mark.parametrize(
    ("scene", "expected"),
    [
        pytest.param(Scene(), Accepted(ANA, 3), id="a registered voter on an open day is counted"),
        pytest.param(
            Scene(at=LATE, people=()),
            Rejected(Reason.CLOSED),
            id="a closed window is said before an unknown phone",
        ),
        pytest.param(
            Scene(at=EARLY, people=(NINO,)),
            Rejected(Reason.NOT_OPEN),
            id="a window not yet open is said before the age",
        ),
        pytest.param(
            Scene(people=(), option=42),
            Rejected(Reason.NOT_REGISTERED),
            id="an unknown phone is said before a bad option",
        ),
        pytest.param(
            Scene(people=(ANA, BETO), option=42),
            Rejected(Reason.ID_NEEDED),
            id="a missing ID is said before a bad option",
        ),
        pytest.param(
            Scene(people=(NINO,), option=42),
            Rejected(Reason.AGE, NINO),
            id="the age is said before a bad option",
        ),
        pytest.param(
            Scene(option=42, standing=VOTED),
            Rejected(Reason.NO_SUCH_OPTION, ANA),
            id="a bad option is said before an earlier vote",
        ),
        pytest.param(
            Scene(people=(ELSEWHERE,)),
            Rejected(Reason.NO_SUCH_OPTION, ELSEWHERE),
            id="a circuit without a ballot has no such option",
        ),
        pytest.param(
            Scene(standing=VOTED),
            Rejected(Reason.ALREADY_VOTED, ANA, STANDING),
            id="a second vote under first is refused with the vote that stands",
        ),
        pytest.param(
            Scene(standing=VOTED, revote=RevotePolicy.LAST),
            Accepted(ANA, 3, replaces=STANDING),
            id="a later vote under last replaces the standing one",
        ),
        pytest.param(
            Scene(people=(ANA, BETO), national_id="V22222222"),
            Accepted(BETO, 3),
            id="an ID on a shared phone votes for that person",
        ),
    ],
)
def test_judge(scene: Scene, expected: Verdict) -> None:
    verdict = judge(
        consultation(revote=scene.revote),
        scene.at,
        scene.option,
        scene.national_id,
        scene.people,
        scene.ballots,
        scene.standing,
    )
    assert verdict == expected


def _round(slug: str, month: int) -> Consultation:
    opens = datetime(2026, month, 10, 12, tzinfo=UTC)
    return consultation(slug=slug, opens_at=opens, closes_at=opens + timedelta(hours=10))


MARCH, JUNE, SEPTEMBER = _round("march", 3), _round("june", 6), _round("september", 9)
ROUNDS = [JUNE, SEPTEMBER, MARCH]  # in no particular order, as a query might return them


@pytest.mark.parametrize(
    ("consultations", "at", "expected"),
    [
        pytest.param(ROUNDS, JUNE.opens_at, "june", id="the round open at that moment wins"),
        pytest.param(
            ROUNDS, JUNE.closes_at - MINUTE, "june", id="the open round wins until its close"
        ),
        pytest.param(
            ROUNDS, JUNE.closes_at, "june", id="at its close a round is the most recently closed"
        ),
        pytest.param(
            ROUNDS,
            datetime(2026, 8, 1, tzinfo=UTC),
            "june",
            id="between rounds the most recently closed wins over the next",
        ),
        pytest.param(
            ROUNDS, datetime(2026, 12, 1, tzinfo=UTC), "september", id="after all rounds the last"
        ),
        pytest.param(
            ROUNDS, datetime(2026, 1, 1, tzinfo=UTC), "march", id="before all rounds the next one"
        ),
        pytest.param(
            [SEPTEMBER, JUNE],
            datetime(2026, 1, 1, tzinfo=UTC),
            "june",
            id="before all rounds the nearest upcoming one",
        ),
        pytest.param([], datetime(2026, 6, 10, tzinfo=UTC), None, id="no rounds at all is none"),
    ],
)
def test_consultation_for(
    consultations: list[Consultation], at: datetime, expected: str | None
) -> None:
    found = consultation_for(consultations, at)
    assert (found.slug if found else None) == expected
