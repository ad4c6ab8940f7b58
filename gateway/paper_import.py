"""Paper tallies (actas) and the list of who voted on paper: checked whole, then written whole.

Both files are read in one transaction. A bad row in either, a paper voter who already voted,
or a table whose acta counts more votes than it has signatures refuses the whole import, and
nothing is written: an inconsistency is reported for an operator to resolve, never merged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.ballot_box import consultation_from_row
from gateway.db import transaction
from gateway.imports.chunking import chunks
from gateway.imports.consultations import circuit_ids, find_consultation
from gateway.imports.reading import Errors, ImportRefused, RowError, changed, records
from gateway.models import ActaRow, OptionRow, ParticipationRow, utcnow
from gateway.paper import PAPER_CHANNEL, PAPER_RECEIPT
from gateway.paper_check import (
    ACTAS_HEADER,
    VOTERS_HEADER,
    Acta,
    Ballots,
    PaperRefused,
    TableKey,
    Voter,
    VoterCheck,
    parse_acta,
    parse_voter,
    registered,
    table_errors,
)
from gateway.sql import insert_ignoring_conflicts


@dataclass(frozen=True)
class PaperReport:
    """What an actas import wrote."""

    tables: int
    actas: int  # rows: one per table and option
    votes: int
    voters: int


@dataclass
class _Actas:
    """The actas file, checked; small enough to hold: one row per table and option."""

    rows: list[Acta] = field(default_factory=list)
    lines: dict[tuple[int, str, int], int] = field(default_factory=dict)  # (table, option)
    totals: dict[TableKey, int] = field(default_factory=dict)
    first_line: dict[TableKey, int] = field(default_factory=dict)
    errors: Errors = field(default_factory=list)

    def add(self, line: int, acta: Acta) -> None:
        """Keep one good row; RowError if its table already has this option."""
        key = (acta.circuit_id, acta.table, acta.option)
        if key in self.lines:
            raise RowError(f"this table and option are already on line {self.lines[key]}")
        self.lines[key] = line
        self.first_line.setdefault(acta.table_key, line)
        self.totals[acta.table_key] = self.totals.get(acta.table_key, 0) + acta.votes
        self.rows.append(acta)


def _loaded_tables(session: Session, consultation_id: int) -> set[TableKey]:
    rows = session.execute(
        select(ActaRow.circuit_id, ActaRow.table_code)
        .where(ActaRow.consultation_id == consultation_id)
        .distinct()
    )
    return {(circuit_id, table) for circuit_id, table in rows}


def _check_actas(session: Session, ballots: Ballots, path: Path) -> _Actas:
    actas = _Actas()
    try:
        for line, cells in records(path, ACTAS_HEADER):
            try:
                actas.add(line, parse_acta(cells, ballots))
            except RowError as bad:
                actas.errors.append((line, str(bad)))
    except ImportRefused as refused:  # the header, the encoding or the CSV itself
        actas.errors += refused.errors
    # Loading a table twice would count its paper votes twice.
    for table in set(actas.first_line) & _loaded_tables(session, ballots.row.id):
        where = f"table {table[1]} of circuit {ballots.code_of(table[0])}"
        actas.errors.append((actas.first_line[table], f"the acta of {where} is already loaded"))
    return actas


def _check_voters(check: VoterCheck, path: Path) -> VoterCheck:
    try:
        for line, cells in records(path, VOTERS_HEADER):
            check.row(line, cells)
        check.look_up()
    except ImportRefused as refused:
        check.errors += refused.errors
        check.spoilt = True
    return check


def _voters(path: Path, ballots: Ballots) -> Iterator[Voter]:
    """The voters file again, for writing; a row that no longer parses means it was edited."""
    for line, cells in records(path, VOTERS_HEADER):
        try:
            yield parse_voter(line, cells, ballots)
        except RowError:
            raise changed(line) from None


def _write_actas(session: Session, consultation_id: int, actas: list[Acta]) -> None:
    rows = [
        {
            "consultation_id": consultation_id,
            "circuit_id": a.circuit_id,
            "table_code": a.table,
            "option": a.option,
            "votes": a.votes,
        }
        for a in actas
    ]
    try:
        for batch in chunks(rows):
            session.execute(insert(ActaRow), batch)
    except IntegrityError:
        # The check found these tables unloaded: another import loaded them since.
        why = "another import loaded some of these actas meanwhile; nothing was written"
        raise ImportRefused([(0, why)]) from None


def _paper_rows(
    session: Session, ballots: Ballots, batch: list[Voter], voted_at: datetime
) -> list[dict[str, object]]:
    people = registered(session, ballots.row.id, [v.national_id for v in batch])
    rows: list[dict[str, object]] = []
    for voter in batch:
        if voter.national_id not in people:
            raise changed(voter.line)
        rows.append(
            {
                "consultation_id": ballots.row.id,
                "person_id": people[voter.national_id][0],
                "receipt": PAPER_RECEIPT,
                "voted_at": voted_at,
                "channel": PAPER_CHANNEL,
                "table_code": voter.table,
            }
        )
    return rows


def write_voters(session: Session, ballots: Ballots, voters: Iterator[Voter]) -> Errors:
    """Record each paper voter's participation; the lines of those someone else recorded first.

    The unique constraint is the judge, as for a digital vote: a voter whose SMS was counted
    after the check is not overwritten, and the caller refuses the import.
    """
    # Filed no earlier than the close, so that under the "last" re-vote policy no SMS or USSD
    # vote can ever count as later than the paper ballot and replace it.
    voted_at = max(utcnow(), ballots.row.closes_at)
    statement = insert_ignoring_conflicts(session, ParticipationRow).returning(
        ParticipationRow.person_id
    )
    conflicts: Errors = []
    for batch in chunks(voters):
        rows = _paper_rows(session, ballots, batch, voted_at)
        written = set(session.scalars(statement, rows))
        conflicts += [
            (voter.line, "voted by SMS or USSD during the import: a digital voter on the list")
            for voter, row in zip(batch, rows, strict=True)
            if row["person_id"] not in written
        ]
    return conflicts


def load_ballots(session: Session, slug: str) -> Ballots:
    """The consultation `slug` with its circuits and their options, to check rows against."""
    consultation = find_consultation(session, slug)
    circuits = circuit_ids(session, consultation.id)
    options: dict[int, set[int]] = {}
    for circuit_id, number in session.execute(
        select(OptionRow.circuit_id, OptionRow.number).where(
            OptionRow.circuit_id.in_(circuits.values())
        )
    ):
        options.setdefault(circuit_id, set()).add(number)
    return Ballots(consultation, consultation_from_row(consultation), circuits, options)


def _refuse_any_problem(
    ballots: Ballots, actas: _Actas, check: VoterCheck, names: tuple[str, str]
) -> None:
    """Refuse the import if any row or any table's sums are wrong, listing every problem."""
    tables: tuple[Errors, Errors] = ([], [])
    # A bad row skews a table's sums, so the sums are compared only once every row parses.
    if not actas.errors and not check.spoilt:
        tables = table_errors(
            ballots, actas.totals, actas.first_line, check.signatures, check.first_line
        )
    if actas.errors or check.errors or tables[0] or tables[1]:
        raise PaperRefused(actas.errors + tables[0], check.errors + tables[1], names)


def import_actas(
    sessions: sessionmaker[Session], slug: str, actas_path: Path, voters_path: Path
) -> PaperReport:
    """Load paper tallies and the paper voters of `slug`, all or nothing."""
    names = (Path(actas_path).name, Path(voters_path).name)
    with transaction(sessions) as session:
        ballots = load_ballots(session, slug)
        actas = _check_actas(session, ballots, Path(actas_path))
        check = _check_voters(VoterCheck(session, ballots), Path(voters_path))
        _refuse_any_problem(ballots, actas, check, names)
        _write_actas(session, ballots.row.id, actas.rows)
        conflicts = write_voters(session, ballots, _voters(Path(voters_path), ballots))
        if conflicts:
            raise PaperRefused([], conflicts, names)
    return PaperReport(
        tables=len(actas.totals),
        actas=len(actas.rows),
        votes=sum(actas.totals.values()),
        voters=check.rows,
    )
