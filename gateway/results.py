"""Results per circuit: votes per option, eligible and turnout, winners, and their renderings."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from gateway.ballot_box import consultation_from_row
from gateway.models import CircuitRow, ConsultationRow, OptionRow, PersonRow, VoteRow
from voting.model import Consultation
from voting.tally import CircuitResult, circuit_result
from voting.winners import CircuitOutcome, Settlement, TieBreak, WinnerRules, outcome, tie_to_settle

CSV_HEADER = (
    "circuit_code",
    "circuit_name",
    "eligible",
    "circuit_votes",
    "turnout",
    "option",
    "title",
    "votes",
    "winner",
    "tied",
    "runoff",
    "quorum_met",
)


class UnknownConsultation(LookupError):  # noqa: N818 - reads better than ...Error at call sites
    """No consultation has this slug."""


@dataclass(frozen=True)
class ResultsReport:
    """One consultation's results, circuit by circuit in code order."""

    slug: str
    name: str
    generated_at: datetime
    circuits: tuple[CircuitResult, ...]
    status: str = "open"
    rules: WinnerRules = WinnerRules()
    outcomes: Mapping[str, CircuitOutcome] = field(default_factory=dict)  # by circuit code

    def outcome(self, circuit: CircuitResult) -> CircuitOutcome:
        return self.outcomes[circuit.code]


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier; 29 February falls back to the 28th."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def eligible_births(consultation: Consultation) -> tuple[date | None, date]:
    """(born after, born on or before): the birth dates `age_allowed` accepts, as SQL bounds.

    Someone is `min_age` on the close date if born on or before that day `min_age` years
    earlier; they are past `max_age` once they reach `max_age + 1`.
    """
    close = consultation.close_date()
    latest = years_before(close, consultation.min_age)
    if consultation.max_age is None:
        return None, latest
    return years_before(close, consultation.max_age + 1), latest


def circuit_ballots(
    session: Session, consultation_id: int
) -> dict[int, tuple[str, str, dict[int, str]]]:
    """circuit id -> (code, name, option titles by number)."""
    rows = session.execute(
        select(CircuitRow.id, CircuitRow.code, CircuitRow.name, OptionRow.number, OptionRow.title)
        .outerjoin(OptionRow, OptionRow.circuit_id == CircuitRow.id)
        .where(CircuitRow.consultation_id == consultation_id)
    )
    ballots: dict[int, tuple[str, str, dict[int, str]]] = {}
    for circuit_id, code, name, number, title in rows:
        titles = ballots.setdefault(circuit_id, (code, name, {}))[2]
        if number is not None:
            titles[number] = title
    return ballots


def _votes(session: Session, consultation_id: int) -> dict[int, dict[int, int]]:
    """circuit id -> option -> counted votes; a replaced vote no longer counts."""
    rows = session.execute(
        select(VoteRow.circuit_id, VoteRow.option, func.count())
        .where(VoteRow.consultation_id == consultation_id, VoteRow.replaced_at.is_(None))
        .group_by(VoteRow.circuit_id, VoteRow.option)
    )
    votes: dict[int, dict[int, int]] = defaultdict(dict)
    for circuit_id, option, count in rows:
        votes[circuit_id][option] = count
    return votes


def eligible_counts(session: Session, consultation: Consultation) -> dict[int, int]:
    """circuit id -> people registered there and inside the age band on the close date."""
    born_after, born_by = eligible_births(consultation)
    query = (
        select(PersonRow.circuit_id, func.count())
        .where(PersonRow.consultation_id == consultation.id, PersonRow.birth_date <= born_by)
        .group_by(PersonRow.circuit_id)
    )
    if born_after is not None:
        query = query.where(PersonRow.birth_date > born_after)
    return dict(session.execute(query).all())


def _one_snapshot(session: Session) -> None:
    # Votes keep arriving while we count: on PostgreSQL the three queries must see one
    # snapshot. SQLite's BEGIN IMMEDIATE already holds every writer off until we finish.
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        session.execute(_COUNT_BY_HASHING)


# Each count is a GROUP BY over every vote (or person) of the consultation into at most a few
# tens of thousands of groups: a hash table of a few MB. A planner whose statistics predate the
# vote (the table analysed while it held few rows) expects a handful of rows and sorts instead;
# over 1,000,000 votes that sort spilled to disk and took 0.7 to 1.6 s of the count, against 0.3
# to 0.6 s hashed (docs/performance.md; tests/integration/test_plans.py). For this transaction.
_COUNT_BY_HASHING = text("SET LOCAL enable_sort = off")


def rules_from_row(row: ConsultationRow) -> WinnerRules:
    return WinnerRules(row.winners, TieBreak(row.tie_break), row.quorum, row.lot_seed)


Ties = dict[int, tuple[int, ...]]  # circuit id -> the options tied for a winning place


def _ties(
    ballots: Mapping[int, tuple[str, str, dict[int, str]]],
    votes: Mapping[int, dict[int, int]],
    eligible: Mapping[int, int],
    rules: WinnerRules,
) -> Ties:
    """The circuits whose tie the rule must settle, found from the counts alone."""
    ties: Ties = {}
    for cid in ballots:
        tie = tie_to_settle(votes.get(cid, {}), eligible.get(cid, 0), rules)
        if tie is not None:
            ties[cid] = tie.options
    return ties


def _reached(session: Session, consultation_id: int, ties: Ties) -> dict[int, dict[int, datetime]]:
    """circuit id -> tied option -> when it reached its count, for `earliest`.

    An option with N counted votes reached N with its N-th, the latest of them: one GROUP BY,
    and only over the tied circuits, however many circuits there are.
    """
    if not ties:
        return {}
    rows = session.execute(
        select(VoteRow.circuit_id, VoteRow.option, func.max(VoteRow.cast_at))
        .where(
            VoteRow.consultation_id == consultation_id,
            VoteRow.replaced_at.is_(None),
            VoteRow.circuit_id.in_(list(ties)),
        )
        .group_by(VoteRow.circuit_id, VoteRow.option)
    )
    reached: dict[int, dict[int, datetime]] = defaultdict(dict)
    for circuit_id, option, moment in rows:
        if option in ties[circuit_id]:
            reached[circuit_id][option] = moment
    return reached


def results(sessions: sessionmaker[Session], slug: str) -> ResultsReport:
    """Count a consultation: a few GROUP BY queries, however many circuits it has."""
    with sessions() as session:
        _one_snapshot(session)
        row = session.scalar(select(ConsultationRow).where(ConsultationRow.slug == slug))
        if row is None:
            raise UnknownConsultation(f"there is no consultation {slug!r}")
        consultation, rules = consultation_from_row(row), rules_from_row(row)
        ballots = circuit_ballots(session, row.id)
        votes = _votes(session, row.id)
        eligible = eligible_counts(session, consultation)
        ties = _ties(ballots, votes, eligible, rules)
        reached = _reached(session, row.id, ties) if rules.tie_break is TieBreak.EARLIEST else {}
    circuits: list[CircuitResult] = []
    outcomes: dict[str, CircuitOutcome] = {}
    for cid, (code, name, titles) in ballots.items():
        counts, voters = votes.get(cid, {}), eligible.get(cid, 0)
        circuits.append(circuit_result(code, name, voters, titles, counts))
        outcomes[code] = outcome(code, counts, voters, rules, reached.get(cid))
    # Sorted here, not in SQL, so the order is the same whatever the database's collation.
    circuits.sort(key=lambda c: c.code)
    return ResultsReport(
        row.slug, row.name, datetime.now(UTC), tuple(circuits), row.status, rules, outcomes
    )


# --- renderings ----------------------------------------------------------------------------


def _settlement_json(outcome: CircuitOutcome) -> dict[str, Any] | None:
    settled, tie = outcome.settlement, outcome.tie
    if settled is None or tie is None:
        return None
    return {
        "rule": settled.rule.value,
        "votes": tie.votes,
        "places": tie.places,
        "ranking": [{"option": option, "key": key} for option, key in settled.ranking],
        "runoff_options": list(settled.runoff_options),
        "runoff_places": settled.runoff_places,
    }


def _circuit_json(circuit: CircuitResult, outcome: CircuitOutcome) -> dict[str, Any]:
    return {
        "code": circuit.code,
        "name": circuit.name,
        "eligible": circuit.eligible,
        "votes": circuit.votes,
        "turnout": circuit.turnout,
        "options": [
            {"option": o.option, "title": o.title, "votes": o.votes} for o in circuit.options
        ],
        "quorum_met": outcome.quorum_met,
        "winners": list(outcome.winners),
        "tie": bool(outcome.tied),
        "tied_options": list(outcome.tied),
        "runoff": outcome.runoff,
        "tie_settlement": _settlement_json(outcome),
    }


def _rules_json(report: ResultsReport) -> dict[str, Any]:
    rules = report.rules
    published: dict[str, Any] = {
        "status": report.status,
        "winners_per_circuit": rules.winners,
        "tie_break": rules.tie_break.value,
        "quorum": rules.quorum,
    }
    if rules.tie_break is TieBreak.LOT:
        published["lot_seed"] = rules.lot_seed
    return published


def as_json(report: ResultsReport) -> str:
    """The stable published shape: keys may be added, never renamed or removed."""
    document = {
        "consultation": report.slug,
        "name": report.name,
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        **_rules_json(report),
        "circuits": [_circuit_json(c, report.outcome(c)) for c in report.circuits],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def as_csv(report: ResultsReport) -> str:
    """One row per circuit and option, the circuit's figures repeated on each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for c in report.circuits:
        won = report.outcome(c)
        runoff = won.settlement.runoff_options if won.settlement else ()
        for o in c.options:
            writer.writerow(
                [c.code, c.name, c.eligible, c.votes, c.turnout, o.option, o.title, o.votes]
                + [_flag(o.option in won.winners), _flag(o.option in won.tied)]
                + [_flag(o.option in runoff), _flag(won.quorum_met)]
            )
    return out.getvalue()


def _listed(options: Iterable[int]) -> str:
    return ", ".join(str(o) for o in options)


def _settled_note(tie_options: tuple[int, ...], places: int, settled: Settlement) -> str:
    tie = f"tie for {places} place{'s' if places > 1 else ''} between {_listed(tie_options)}"
    if not settled.runoff_options:
        return f"{tie}, settled by {settled.rule.value}"
    left = f"runoff between {_listed(settled.runoff_options)}"
    return f"{tie}: {left} for {settled.runoff_places}"


def _note(outcome: CircuitOutcome) -> str:
    """What a reader must know before trusting the marked winners."""
    if not outcome.quorum_met:
        return "below quorum: no winner"
    if outcome.tie is None or outcome.settlement is None:
        return ""
    return _settled_note(outcome.tie.options, outcome.tie.places, outcome.settlement)


def _table_rows(report: ResultsReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("circuit", "name", "eligible", "votes", "turnout", "note")]
    for c in report.circuits:
        won = report.outcome(c)
        turnout = f"{c.turnout:.2%}"
        rows.append((c.code, c.name, str(c.eligible), str(c.votes), turnout, _note(won)))
        rows.extend(
            ("", f"{'*' if o.option in won.winners else ' '} {o.option}. {o.title}")
            + ("", str(o.votes), "", "")
            for o in c.options
        )
    return rows


def _rules_line(report: ResultsReport) -> str:
    rules = report.rules
    tie_break = rules.tie_break.value
    if rules.tie_break is TieBreak.LOT:
        tie_break += f" (seed {rules.lot_seed})"
    places = f"{rules.winners} winner{'s' if rules.winners > 1 else ''} per circuit, marked *"
    quorum = f"quorum {rules.quorum * 100:g}%"
    return f"{report.status}; {places}; tie-break {tie_break}; {quorum}"


def as_table(report: ResultsReport) -> str:
    """For a terminal: a title and rules line, then aligned columns, numbers to the right."""
    rows = _table_rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"{report.name} ({report.slug})", _rules_line(report), ""]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:2], widths[:2], strict=True)]
        cells += [cell.rjust(w) for cell, w in zip(row[2:5], widths[2:5], strict=True)]
        lines.append("  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines) + "\n"
