"""Combined results: per circuit and option the digital count, the paper actas and their total."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.ballot_box import consultation_from_row
from gateway.models import (
    ActaRow,
    ConsultationRow,
    ParticipationRow,
    PersonRow,
    VoteRow,
)
from gateway.results import UnknownConsultation, circuit_ballots, eligible_counts

CSV_HEADER = (
    "circuit_code",
    "circuit_name",
    "eligible",
    "turnout",
    "option",
    "title",
    "digital",
    "paper",
    "total",
)
Counts = dict[int, dict[int, int]]  # circuit id -> option -> votes


@dataclass(frozen=True)
class CombinedOption:
    """One option of a circuit: its digital count, its paper votes and their sum."""

    option: int
    title: str
    digital: int
    paper: int

    @property
    def total(self) -> int:
        return self.digital + self.paper


@dataclass(frozen=True)
class CombinedCircuit:
    """One circuit across channels, with its options in ballot order."""

    code: str
    name: str
    eligible: int
    voters: int  # people who voted, digitally or on paper: each once
    options: tuple[CombinedOption, ...]

    @property
    def turnout(self) -> float:
        """The share of eligible people who voted by any channel, 0.0 when nobody is eligible."""
        return round(self.voters / self.eligible, 4) if self.eligible else 0.0


@dataclass(frozen=True)
class CombinedReport:
    """One consultation's combined results, circuit by circuit in code order."""

    slug: str
    name: str
    generated_at: datetime
    circuits: tuple[CombinedCircuit, ...]


def _grouped(session: Session, query: Any) -> Counts:
    """(circuit id, option, votes) rows as nested dicts."""
    counts: Counts = defaultdict(dict)
    for circuit_id, option, votes in session.execute(query):
        counts[circuit_id][option] = int(votes)
    return counts


def _digital(session: Session, consultation_id: int) -> Counts:
    """Counted digital votes; a replaced vote no longer counts."""
    return _grouped(
        session,
        select(VoteRow.circuit_id, VoteRow.option, func.count())
        .where(VoteRow.consultation_id == consultation_id, VoteRow.replaced_at.is_(None))
        .group_by(VoteRow.circuit_id, VoteRow.option),
    )


def _paper(session: Session, consultation_id: int) -> Counts:
    """The actas' votes, summed over every table of the circuit."""
    return _grouped(
        session,
        select(ActaRow.circuit_id, ActaRow.option, func.sum(ActaRow.votes))
        .where(ActaRow.consultation_id == consultation_id)
        .group_by(ActaRow.circuit_id, ActaRow.option),
    )


def _voters(session: Session, consultation_id: int) -> dict[int, int]:
    """circuit id -> people with a participation, whichever channel: one row per person."""
    rows = session.execute(
        select(PersonRow.circuit_id, func.count())
        .join(ParticipationRow, ParticipationRow.person_id == PersonRow.id)
        .where(ParticipationRow.consultation_id == consultation_id)
        .group_by(PersonRow.circuit_id)
    )
    return {circuit_id: int(n) for circuit_id, n in rows}


def _circuit(
    ballot: tuple[str, str, dict[int, str]],
    eligible: int,
    voters: int,
    digital: dict[int, int],
    paper: dict[int, int],
) -> CombinedCircuit:
    code, name, titles = ballot
    options = tuple(
        CombinedOption(n, titles[n], digital.get(n, 0), paper.get(n, 0)) for n in sorted(titles)
    )
    return CombinedCircuit(code, name, eligible, voters, options)


def combined_results(sessions: sessionmaker[Session], slug: str) -> CombinedReport:
    """Count a consultation across channels: a few GROUP BY queries, one snapshot."""
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            # Votes keep arriving while we count: every query must see the same moment.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        row = session.scalar(select(ConsultationRow).where(ConsultationRow.slug == slug))
        if row is None:
            raise UnknownConsultation(f"there is no consultation {slug!r}")
        ballots = circuit_ballots(session, row.id)
        eligible = eligible_counts(session, consultation_from_row(row))
        digital, paper = _digital(session, row.id), _paper(session, row.id)
        voters = _voters(session, row.id)
    circuits = [
        _circuit(ballot, eligible.get(cid, 0), voters.get(cid, 0), digital[cid], paper[cid])
        for cid, ballot in ballots.items()
    ]
    circuits.sort(key=lambda c: c.code)  # here, not in SQL: the same under every collation
    return CombinedReport(row.slug, row.name, datetime.now(UTC), tuple(circuits))


# --- renderings ----------------------------------------------------------------------------


def as_json(report: CombinedReport) -> str:
    """{"consultation", "circuits": [{"code", "name", "eligible", "turnout", "options"}]}."""
    document = {
        "consultation": report.slug,
        "name": report.name,
        "generated_at": report.generated_at.isoformat(timespec="seconds"),
        "circuits": [
            {
                "code": c.code,
                "name": c.name,
                "eligible": c.eligible,
                "turnout": c.turnout,
                "options": [
                    {
                        "option": o.option,
                        "title": o.title,
                        "digital": o.digital,
                        "paper": o.paper,
                        "total": o.total,
                    }
                    for o in c.options
                ],  # fmt: skip
            }
            for c in report.circuits
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def as_csv(report: CombinedReport) -> str:
    """One row per circuit and option, the circuit's figures repeated on each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(
        (c.code, c.name, c.eligible, c.turnout, o.option, o.title, o.digital, o.paper, o.total)
        for c in report.circuits
        for o in c.options
    )
    return out.getvalue()


def as_table(report: CombinedReport) -> str:
    """For a terminal: a title line, then aligned columns, numbers to the right."""
    rows: list[tuple[str, ...]] = [("circuit", "name", "eligible", "turnout", "digital", "paper",
                                    "total")]  # fmt: skip
    for c in report.circuits:
        rows.append((c.code, c.name, str(c.eligible), f"{c.turnout:.2%}", "", "", ""))
        rows.extend(
            ("", f"  {o.option}. {o.title}", "", "", str(o.digital), str(o.paper), str(o.total))
            for o in c.options
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"{report.name} ({report.slug})", ""]
    for row in rows:
        cells = [cell.ljust(w) for cell, w in zip(row[:2], widths[:2], strict=True)]
        cells += [cell.rjust(w) for cell, w in zip(row[2:], widths[2:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"
