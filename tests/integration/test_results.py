"""Results: counted votes per option, the eligible count on the close date, turnout, renderings."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import make_engine, make_sessionmaker
from gateway.models import VoteRow
from gateway.results import (
    CSV_HEADER,
    UnknownConsultation,
    as_csv,
    as_json,
    as_table,
    eligible_births,
    results,
)
from tests.support.factories import Seeded, seed
from voting.model import Consultation
from voting.rules import age_allowed

SLUG = "cpn-2026"
CLOSES = datetime(2026, 3, 9, 2, 0, tzinfo=UTC)  # 22:00 on 8 March in Caracas
OPENS = CLOSES - timedelta(hours=15)
ADULT = date(1990, 1, 1)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    # Our own engine rather than `rt`: counting needs no Redis, and the run flushes none.
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def consultation(
    sessions: sessionmaker[Session],
    people: list[tuple[str, str, date]],
    ballots: dict[str, int] | None = None,
    min_age: int = 15,
    max_age: int | None = None,
) -> Seeded:
    """A closed consultation with these (national ID, circuit, birth date) people, no phones."""
    no_phones: list[str] = []
    return seed(
        sessions,
        slug=SLUG,
        opens=OPENS,
        closes=CLOSES,
        min_age=min_age,
        max_age=max_age,
        ballots=ballots or {"C1": 3, "C2": 2},
        people=[(national_id, code, born, no_phones) for national_id, code, born in people],
    )


def cast(sessions: sessionmaker[Session], seeded: Seeded, *votes: tuple[str, int, bool]) -> None:
    """Store votes as (circuit code, option, replaced since)."""
    with sessions() as session, session.begin():
        for n, (code, option, replaced) in enumerate(votes):
            session.add(
                VoteRow(
                    consultation_id=seeded.consultation_id,
                    circuit_id=seeded.circuits[code],
                    option=option,
                    receipt=f"R{seeded.consultation_id}-{n}",
                    cast_at=OPENS + timedelta(minutes=n),
                    replaced_at=OPENS + timedelta(hours=1) if replaced else None,
                )
            )


def everyone(count: int, code: str = "C1", first: int = 1_000_000) -> list[tuple[str, str, date]]:
    return [(f"V{first + n}", code, ADULT) for n in range(count)]


def test_the_json_has_exactly_the_documented_shape(sessions: sessionmaker[Session]) -> None:
    seeded = consultation(sessions, everyone(4) + everyone(1, "C2", 2_000_000))
    cast(sessions, seeded, ("C1", 2, False), ("C1", 2, False), ("C1", 3, False))
    document = json.loads(as_json(results(sessions, SLUG)))
    generated = datetime.fromisoformat(document.pop("generated_at"))
    assert generated.tzinfo is not None
    assert document == {
        "consultation": SLUG,
        "name": "Consulta de prueba",
        "circuits": [
            {
                "code": "C1",
                "name": "Circuito C1",
                "eligible": 4,
                "votes": 3,
                "turnout": 0.75,
                "options": [
                    {"option": 1, "title": "Proyecto C1-1", "votes": 0},
                    {"option": 2, "title": "Proyecto C1-2", "votes": 2},
                    {"option": 3, "title": "Proyecto C1-3", "votes": 1},
                ],
            },
            {
                "code": "C2",
                "name": "Circuito C2",
                "eligible": 1,
                "votes": 0,
                "turnout": 0.0,
                "options": [
                    {"option": 1, "title": "Proyecto C2-1", "votes": 0},
                    {"option": 2, "title": "Proyecto C2-2", "votes": 0},
                ],
            },
        ],
    }


@pytest.mark.parametrize(
    ("min_age", "max_age", "born", "eligible"),
    [
        (15, None, date(2011, 3, 8), 1),
        (15, None, date(2011, 3, 9), 0),
        (15, None, date(1926, 3, 8), 1),
        (15, 35, date(1990, 3, 9), 1),
        (15, 35, date(1990, 3, 8), 0),
        (18, None, date(2009, 3, 8), 0),
    ],
    ids=[
        "someone who turns fifteen on the close date is eligible",
        "someone who turns fifteen the next day, in Caracas, is not",
        "a centenarian is eligible when there is no upper age",
        "a youth round takes someone still thirty-five on the close date",
        "a youth round leaves out someone who turns thirty-six on the close date",
        "a higher minimum age leaves out a seventeen-year-old",
    ],
)
def test_the_eligible_count_respects_the_age_band_on_the_close_date(
    sessions: sessionmaker[Session], min_age: int, max_age: int | None, born: date, eligible: int
) -> None:
    people = [("V1000001", "C1", born), ("V1000002", "C2", ADULT)]
    consultation(sessions, people, min_age=min_age, max_age=max_age)
    [c1, _] = results(sessions, SLUG).circuits
    assert c1.eligible == eligible


@pytest.mark.parametrize(
    ("closes", "band"),
    [
        (datetime(2026, 3, 9, 2, 0, tzinfo=UTC), (15, None)),
        (datetime(2028, 3, 1, 3, 0, tzinfo=UTC), (15, 35)),
        (datetime(2028, 2, 29, 12, 0, tzinfo=UTC), (15, 35)),
        (datetime(2027, 1, 1, 3, 0, tzinfo=UTC), (16, 16)),
    ],
    ids=[
        "an ordinary close date agrees with the voting rules",
        "a close the evening of 29 February in Caracas agrees with the voting rules",
        "a close on 29 February agrees with the voting rules",
        "a one-year band on New Year's Eve agrees with the voting rules",
    ],
)
def test_the_birth_date_bounds_agree_with_age_allowed_day_by_day(
    closes: datetime, band: tuple[int, int | None]
) -> None:
    opens = closes - timedelta(hours=10)
    rules = Consultation(1, SLUG, "c", opens, closes, min_age=band[0], max_age=band[1])
    born_after, born_by = eligible_births(rules)
    close = rules.close_date()
    start = date(close.year - 40, 1, 1)
    for day in (start + timedelta(days=n) for n in range(41 * 366)):
        inside = day <= born_by and (born_after is None or day > born_after)
        assert inside == age_allowed(rules, day), day


def test_a_replaced_vote_is_not_counted(sessions: sessionmaker[Session]) -> None:
    seeded = consultation(sessions, everyone(3))
    cast(sessions, seeded, ("C1", 1, True), ("C1", 2, False), ("C1", 1, False), ("C1", 3, True))
    [c1, _] = results(sessions, SLUG).circuits
    assert [o.votes for o in c1.options] == [1, 1, 0]
    assert c1.votes == 2


@pytest.mark.parametrize(
    ("eligible", "votes", "turnout"),
    [(4, 1, 0.25), (3, 2, 0.6667), (3, 3, 1.0), (0, 0, 0.0)],
    ids=[
        "one vote among four eligible is a quarter",
        "two among three is rounded to four places",
        "everyone voting is a turnout of one",
        "nobody eligible is a turnout of zero, not a division by zero",
    ],
)
def test_turnout_is_counted_votes_over_the_eligible(
    sessions: sessionmaker[Session], eligible: int, votes: int, turnout: float
) -> None:
    seeded = consultation(sessions, everyone(eligible))
    cast(sessions, seeded, *[("C1", 1, False)] * votes, ("C1", 2, True))
    [c1, _] = results(sessions, SLUG).circuits
    assert (c1.eligible, c1.votes, c1.turnout) == (eligible, votes, turnout)


def test_another_consultation_s_votes_and_people_are_not_counted(
    sessions: sessionmaker[Session],
) -> None:
    other = seed(sessions, slug="otra", people=[("V9", "C1", ADULT, [])])
    cast(sessions, other, ("C1", 1, False))
    consultation(sessions, everyone(2))
    [c1, _] = results(sessions, SLUG).circuits
    assert (c1.eligible, c1.votes) == (2, 0)


def test_an_unknown_consultation_has_no_results(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(UnknownConsultation, match="no consultation 'nope'"):
        results(sessions, "nope")


def test_the_csv_has_one_row_per_circuit_and_option(sessions: sessionmaker[Session]) -> None:
    seeded = consultation(sessions, everyone(3), ballots={"C1": 2, "B7": 2})
    cast(sessions, seeded, ("C1", 2, False), ("C1", 2, False))
    rows = list(csv.reader(io.StringIO(as_csv(results(sessions, SLUG)))))
    assert rows == [
        list(CSV_HEADER),
        ["B7", "Circuito B7", "0", "0", "0.0", "1", "Proyecto B7-1", "0"],
        ["B7", "Circuito B7", "0", "0", "0.0", "2", "Proyecto B7-2", "0"],
        ["C1", "Circuito C1", "3", "2", "0.6667", "1", "Proyecto C1-1", "0"],
        ["C1", "Circuito C1", "3", "2", "0.6667", "2", "Proyecto C1-2", "2"],
    ]


def test_the_table_aligns_its_columns_and_shows_turnout_as_a_percentage(
    sessions: sessionmaker[Session],
) -> None:
    seeded = consultation(sessions, everyone(3), ballots={"C1": 2, "C22": 2})
    cast(sessions, seeded, ("C1", 2, False), ("C1", 2, False))
    lines = as_table(results(sessions, SLUG)).splitlines()
    assert lines[0] == f"Consulta de prueba ({SLUG})"
    header, c1, c22 = lines[2], lines[3], lines[6]
    assert c1.split() == ["C1", "Circuito", "C1", "3", "2", "66.67%"]
    assert c22.split()[-1] == "0.00%"
    assert len({len(header), len(c1), len(c22)}) == 1  # right-aligned numbers end together
