"""Results per circuit: votes per option, the eligible count and turnout, and their renderings."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.ballot_box import consultation_from_row
from gateway.models import CircuitRow, ConsultationRow, OptionRow, PersonRow, VoteRow
from voting.model import Consultation
from voting.tally import CircuitResult, circuit_result

CSV_HEADER = (
    "circuit_code",
    "circuit_name",
    "eligible",
    "circuit_votes",
    "turnout",
    "option",
    "title",
    "votes",
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


def _ballots(session: Session, consultation_id: int) -> dict[int, tuple[str, str, dict[int, str]]]:
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


def _eligible(session: Session, consultation: Consultation) -> dict[int, int]:
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


def results(sessions: sessionmaker[Session], slug: str) -> ResultsReport:
    """Count a consultation: a few GROUP BY queries, however many circuits it has."""
    with sessions() as session:
        _one_snapshot(session)
        row = session.scalar(select(ConsultationRow).where(ConsultationRow.slug == slug))
        if row is None:
            raise UnknownConsultation(f"there is no consultation {slug!r}")
        consultation = consultation_from_row(row)
        ballots = _ballots(session, row.id)
        votes = _votes(session, row.id)
        eligible = _eligible(session, consultation)
    circuits = [
        circuit_result(code, name, eligible.get(cid, 0), titles, votes.get(cid, {}))
        for cid, (code, name, titles) in ballots.items()
    ]
    # Sorted here, not in SQL, so the order is the same whatever the database's collation.
    circuits.sort(key=lambda c: c.code)
    return ResultsReport(row.slug, row.name, datetime.now(UTC), tuple(circuits))


# --- renderings ----------------------------------------------------------------------------


def _circuit_json(circuit: CircuitResult) -> dict[str, Any]:
    return {
        "code": circuit.code,
        "name": circuit.name,
        "eligible": circuit.eligible,
        "votes": circuit.votes,
        "turnout": circuit.turnout,
        "options": [
            {"option": o.option, "title": o.title, "votes": o.votes} for o in circuit.options
        ],
    }


def as_json(report: ResultsReport) -> str:
    """The stable published shape: keys may be added, never renamed or removed."""
    document = {
        "consultation": report.slug,
        "name": report.name,
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "circuits": [_circuit_json(c) for c in report.circuits],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def as_csv(report: ResultsReport) -> str:
    """One row per circuit and option, the circuit's figures repeated on each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for c in report.circuits:
        for o in c.options:
            writer.writerow(
                [c.code, c.name, c.eligible, c.votes, c.turnout, o.option, o.title, o.votes]
            )
    return out.getvalue()


def _table_rows(report: ResultsReport) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("circuit", "name", "eligible", "votes", "turnout")]
    for c in report.circuits:
        rows.append((c.code, c.name, str(c.eligible), str(c.votes), f"{c.turnout:.2%}"))
        rows.extend(("", f"  {o.option}. {o.title}", "", str(o.votes), "") for o in c.options)
    return rows


def as_table(report: ResultsReport) -> str:
    """For a terminal: a title line, then aligned columns, numbers to the right."""
    rows = _table_rows(report)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"{report.name} ({report.slug})", ""]
    for row in rows:
        text, numbers = row[:2], row[2:]
        cells = [cell.ljust(w) for cell, w in zip(text, widths[:2], strict=True)]
        cells += [cell.rjust(w) for cell, w in zip(numbers, widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
