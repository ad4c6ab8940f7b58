"""Results: counted votes per option, the eligible count on the close date, turnout, winners
under the published tie-break and quorum, and the renderings."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import make_engine, make_sessionmaker
from gateway.models import ConsultationRow, VoteRow
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
        "status": "open",
        "winners_per_circuit": 1,
        "tie_break": "earliest",
        "quorum": 0.1,
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
                "quorum_met": True,
                "winners": [2],
                "tie": False,
                "tied_options": [],
                "runoff": False,
                "tie_settlement": None,
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
                "quorum_met": False,
                "winners": [],
                "tie": False,
                "tied_options": [],
                "runoff": False,
                "tie_settlement": None,
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
    no, yes = "false", "true"
    assert rows == [
        list(CSV_HEADER),
        ["B7", "Circuito B7", "0", "0", "0.0", "1", "Proyecto B7-1", "0", no, no, no, no],
        ["B7", "Circuito B7", "0", "0", "0.0", "2", "Proyecto B7-2", "0", no, no, no, no],
        ["C1", "Circuito C1", "3", "2", "0.6667", "1", "Proyecto C1-1", "0", no, no, no, yes],
        ["C1", "Circuito C1", "3", "2", "0.6667", "2", "Proyecto C1-2", "2", yes, no, no, yes],
    ]


def test_the_table_aligns_its_columns_and_shows_turnout_as_a_percentage(
    sessions: sessionmaker[Session],
) -> None:
    seeded = consultation(sessions, everyone(3), ballots={"C1": 2, "C22": 2})
    cast(sessions, seeded, ("C1", 2, False), ("C1", 2, False))
    lines = as_table(results(sessions, SLUG)).splitlines()
    assert lines[0] == f"Consulta de prueba ({SLUG})"
    header, c1, c22 = lines[3], lines[4], lines[7]
    assert c1.split() == ["C1", "Circuito", "C1", "3", "2", "66.67%"]
    assert c22.split()[-5:] == ["0.00%", "below", "quorum:", "no", "winner"]
    # right-aligned numbers end together, under the end of the turnout heading
    end = header.index("turnout") + len("turnout")
    assert c1[end - 6 : end] == "66.67%"
    assert c22[end - 5 : end] == "0.00%"


# --- winners, ties and the quorum --------------------------------------------------------------

SEED = "semilla-publica"  # under this seed, C1 draws 2 before 1 before 3, and C2 draws 1 before 2


def rules(sessions: sessionmaker[Session], **values: Any) -> None:
    """Set the consultation's award rules, as `consultation create` would have."""
    if not values:
        return
    with sessions() as session, session.begin():
        session.execute(update(ConsultationRow).values(**values))


def votes(sequence: dict[str, str]) -> list[tuple[str, int, bool]]:
    """{"C1": "1 2 2x"} -> votes in that order, a minute apart; "x" marks a replaced vote."""
    return [
        (code, int(vote.rstrip("x")), vote.endswith("x"))
        for code, text in sequence.items()
        for vote in text.split()
    ]


@dataclass(frozen=True)
class Expect:
    winners: list[int]
    tied: list[int] = field(default_factory=list)
    runoff: bool = False
    quorum_met: bool = True


@dataclass(frozen=True)
class Case:
    cast: dict[str, str]
    expect: dict[str, Expect]
    eligible: dict[str, int] = field(default_factory=lambda: {"C1": 20, "C2": 20})
    rules: dict[str, Any] = field(default_factory=dict)


TOP_2 = {"winners": 2}
LOT = {"tie_break": "lot", "lot_seed": SEED}
RUNOFF = {"tie_break": "runoff"}

CASES = [
    pytest.param(Case({"C1": "1 2 2"}, {"C1": Expect([2])}), id="a clear leader wins"),
    pytest.param(
        Case({"C1": "3 1 3 1 3 2"}, {"C1": Expect([3, 1])}, rules=TOP_2),
        id="top-2 awards the two leaders, the first first",
    ),
    pytest.param(
        Case({"C1": "1 2 2 1"}, {"C1": Expect([2], tied=[1, 2])}),
        id="a tie for first goes to the option whose last counted vote came first",
    ),
    pytest.param(
        Case({"C1": "1 2 1 2x 2"}, {"C1": Expect([1], tied=[1, 2])}),
        id="earliest counts only the votes that still count, not a replaced one",
    ),
    pytest.param(
        Case(
            {"C1": "1 2 2 1", "C2": "1 2"}, {"C1": Expect([2], [1, 2]), "C2": Expect([1], [1, 2])}
        ),
        id="earliest settles each circuit with its own votes",
    ),
    pytest.param(
        Case({"C1": "1 2 2 1"}, {"C1": Expect([2], tied=[1, 2])}, rules=LOT),
        id="a tie for first is drawn by lot with the published seed",
    ),
    pytest.param(
        Case({"C1": "1 2 2 1"}, {"C1": Expect([], tied=[1, 2], runoff=True)}, rules=RUNOFF),
        id="a tie for first under runoff awards nobody and flags the circuit",
    ),
    pytest.param(
        Case({"C1": "1 1 1 2 3 3 2"}, {"C1": Expect([1, 3], tied=[2, 3])}, rules=TOP_2),
        id="a tie for second place under top-2 settles only the second place",
    ),
    pytest.param(
        Case({"C1": "1 1 1 2 3 3 2"}, {"C1": Expect([1], [2, 3], True)}, rules=TOP_2 | RUNOFF),
        id="a tie for second place under top-2 and runoff keeps the leader and flags the rest",
    ),
    pytest.param(
        Case({"C1": "3 1 2 1 2 3"}, {"C1": Expect([2, 1], tied=[1, 2, 3])}, rules=TOP_2 | LOT),
        id="a three-way tie for two places under lot awards the two first drawn",
    ),
    pytest.param(
        Case({"C1": "3 1 2 1 2 3"}, {"C1": Expect([1], tied=[1, 2, 3])}),
        id="a three-way tie for one place under earliest goes to the first to get there",
    ),
    pytest.param(
        Case({"C1": "1 1 2 2"}, {"C1": Expect([1, 2])}, rules=TOP_2),
        id="two options level for first under top-2 both win with no tie to settle",
    ),
    pytest.param(
        Case({"C1": "1 1 1"}, {"C1": Expect([], quorum_met=False)}, {"C1": 40, "C2": 0}),
        id="a circuit below the quorum is flagged and awards nobody",
    ),
    pytest.param(
        Case({"C1": "1 1 2"}, {"C1": Expect([1])}, {"C1": 30, "C2": 0}),
        id="a circuit exactly at the quorum awards its winner",
    ),
    pytest.param(
        Case(
            {"C1": "1 1 2"},
            {"C1": Expect([], quorum_met=False)},
            {"C1": 30, "C2": 0},
            {"quorum": 0.15},
        ),
        id="a higher quorum chosen at creation is the one applied",
    ),
    pytest.param(
        Case({}, {"C1": Expect([], quorum_met=False)}), id="a circuit with no votes has no winner"
    ),
    pytest.param(
        Case({}, {"C2": Expect([], quorum_met=False)}, {"C1": 20, "C2": 0}),
        id="a circuit where nobody is eligible does not meet the quorum",
    ),
]


def people(eligible: dict[str, int]) -> list[tuple[str, str, date]]:
    return [
        p
        for n, (code, count) in enumerate(eligible.items())
        for p in everyone(count, code, (n + 1) * 1_000_000)
    ]


@pytest.mark.parametrize("case", CASES)
def test_winners_ties_and_quorum_flags_per_circuit(
    sessions: sessionmaker[Session], case: Case
) -> None:
    seeded = consultation(sessions, people(case.eligible), ballots={"C1": 3, "C2": 3})
    rules(sessions, **case.rules)
    cast(sessions, seeded, *votes(case.cast))
    document = json.loads(as_json(results(sessions, SLUG)))
    found = {
        c["code"]: Expect(c["winners"], c["tied_options"], c["runoff"], c["quorum_met"])
        for c in document["circuits"]
    }
    assert {code: found[code] for code in case.expect} == case.expect
    for circuit in document["circuits"]:
        assert circuit["tie"] == bool(circuit["tied_options"])


def test_the_rules_are_published_with_the_results_and_the_seed_when_drawn_by_lot(
    sessions: sessionmaker[Session],
) -> None:
    seeded = consultation(sessions, everyone(20))
    rules(sessions, status="certified", winners=2, quorum=0.25, **LOT)
    cast(sessions, seeded, *votes({"C1": "3 1 2 1 2 3"}))
    document = json.loads(as_json(results(sessions, SLUG)))
    published = ("status", "winners_per_circuit", "tie_break", "lot_seed", "quorum")
    assert [document[key] for key in published] == ["certified", 2, "lot", SEED, 0.25]
    settlement = document["circuits"][0]["tie_settlement"]
    digests = {o: hashlib.sha256(f"{SEED}:C1:{o}".encode()).hexdigest() for o in (1, 2, 3)}
    assert settlement == {
        "rule": "lot",
        "votes": 2,
        "places": 2,
        "ranking": [{"option": o, "key": digests[o]} for o in (2, 1, 3)],
        "runoff_options": [],
        "runoff_places": 0,
    }


def test_earliest_publishes_when_each_tied_option_reached_the_count(
    sessions: sessionmaker[Session],
) -> None:
    seeded = consultation(sessions, everyone(20))
    cast(sessions, seeded, *votes({"C1": "1 2 2 1 3"}))
    document = json.loads(as_json(results(sessions, SLUG)))
    assert "lot_seed" not in document
    settlement = document["circuits"][0]["tie_settlement"]
    assert settlement["ranking"] == [
        {"option": 2, "key": (OPENS + timedelta(minutes=2)).isoformat(timespec="microseconds")},
        {"option": 1, "key": (OPENS + timedelta(minutes=3)).isoformat(timespec="microseconds")},
    ]


def test_the_table_marks_winners_and_flags_ties_runoffs_and_the_quorum(
    sessions: sessionmaker[Session],
) -> None:
    eligible = {"C1": 20, "C2": 20, "C3": 40}
    seeded = consultation(sessions, people(eligible), ballots={"C1": 3, "C2": 3, "C3": 2})
    rules(sessions, winners=2, **RUNOFF)
    cast(sessions, seeded, *votes({"C1": "1 1 2 3", "C2": "1 2 1 3 3", "C3": "1"}))
    lines = as_table(results(sessions, SLUG)).splitlines()
    assert lines[1] == "open; 2 winners per circuit, marked *; tie-break runoff; quorum 10%"
    text = "\n".join(lines)
    assert "tie for 1 place between 2, 3: runoff between 2, 3 for 1" in text
    assert "below quorum: no winner" in text
    marked = [line.split()[1] for line in lines if line.lstrip().startswith("*")]
    assert marked == ["1.", "1.", "3."]


def test_the_csv_marks_winners_ties_and_runoffs_per_option(sessions: sessionmaker[Session]) -> None:
    seeded = consultation(sessions, everyone(20), ballots={"C1": 3})
    rules(sessions, winners=2, **RUNOFF)
    cast(sessions, seeded, *votes({"C1": "1 1 2 3"}))
    rows = list(csv.DictReader(io.StringIO(as_csv(results(sessions, SLUG)))))
    flags = [(r["option"], r["winner"], r["tied"], r["runoff"], r["quorum_met"]) for r in rows]
    assert flags == [
        ("1", "true", "false", "false", "true"),
        ("2", "false", "true", "true", "true"),
        ("3", "false", "true", "true", "true"),
    ]


def count_queries(sessions: sessionmaker[Session]) -> list[str]:
    """The statements one count sends to the database."""
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", seen)
    try:
        results(sessions, SLUG)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return statements


def test_counting_takes_the_same_few_queries_however_many_circuits_are_tied(
    sessions: sessionmaker[Session],
) -> None:
    codes = [f"C{n:03}" for n in range(60)]
    seeded = consultation(sessions, everyone(10, "C000"), ballots=dict.fromkeys(codes, 2))
    cast(sessions, seeded, *votes(dict.fromkeys(codes, "1 2")))
    one_tie = count_queries(sessions)  # only C000 has anyone eligible, so only it meets quorum
    rules(sessions, quorum=0.0)
    report = results(sessions, SLUG)
    assert all(report.outcome(c).tied == (1, 2) for c in report.circuits)
    assert len(count_queries(sessions)) == len(one_tie) <= 6
