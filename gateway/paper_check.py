"""The rows of an actas import, checked: actas, paper voters, and how each table adds up.

Reasons never repeat a national ID: the line number says which row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.imports import chunking
from gateway.imports.reading import SHOWN_ERRORS, Errors, ImportRefused, RowError, columns, text
from gateway.imports.seen_ids import SeenIds
from gateway.models import ConsultationRow, ParticipationRow, PersonRow
from gateway.paper import PAPER_CHANNEL
from voting.identity import normalise_national_id
from voting.model import Consultation
from voting.rules import age_allowed

ACTAS_HEADER = ("circuit_code", "table", "option", "votes")
VOTERS_HEADER = ("national_id", "circuit_code", "table")

TableKey = tuple[int, str]  # (circuit id, table code)


class PaperRefused(ImportRefused):
    """The import was refused and nothing was written; each problem under the file it is in."""

    def __init__(self, actas: Errors, voters: Errors, names: tuple[str, str]) -> None:
        super().__init__([*actas, *voters])
        self.actas, self.voters, self.names = sorted(actas), sorted(voters), names

    def __str__(self) -> str:
        found = [
            f"{name} line {n}: {why}" if n else f"{name}: {why}"
            for name, errors in zip(self.names, (self.actas, self.voters), strict=True)
            for n, why in errors
        ]
        hidden = len(found) - SHOWN_ERRORS
        more = [f"... and {hidden} more"] if hidden > 0 else []
        total = f"import refused, nothing was written ({len(found)} problem(s)):"
        return "\n".join([total, *found[:SHOWN_ERRORS], *more])


@dataclass(frozen=True)
class Ballots:
    """What the rows are checked against: the consultation, its circuits and their options."""

    row: ConsultationRow
    consultation: Consultation
    circuits: dict[str, int]  # code -> id
    options: dict[int, set[int]]  # circuit id -> option numbers

    def circuit(self, code: str) -> int:
        """The id of circuit `code`; RowError if the consultation has none."""
        found = self.circuits.get(code)
        if found is None:
            # Not echoed if it looks like an ID or a phone (swapped columns).
            shown = "" if sum(ch.isdigit() for ch in code) >= 5 else f" {code!r}"
            raise RowError(f"circuit_code{shown} is not on this consultation's ballots")
        return found

    def code_of(self, circuit_id: int) -> str:
        """The code of a circuit, for a reason an operator reads."""
        return next(code for code, cid in self.circuits.items() if cid == circuit_id)


@dataclass(frozen=True)
class Voter:
    """One row of the paper voters file, parsed."""

    line: int
    national_id: str
    circuit_id: int
    table: str


def _count(value: str, label: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise RowError(f"{label} must be a whole number of 0 or more, found {value!r}")
    return int(value)


@dataclass(frozen=True)
class Acta:
    """One row of the actas file, parsed: the votes of one option at one table."""

    circuit_id: int
    table: str
    option: int
    votes: int

    @property
    def table_key(self) -> TableKey:
        return self.circuit_id, self.table


def parse_acta(cells: list[str], ballots: Ballots) -> Acta:
    """One acta row; RowError says why it is bad."""
    code, table, option, votes = columns(cells, len(ACTAS_HEADER))
    circuit_id = ballots.circuit(code)
    number = _count(option, "option")
    if number not in ballots.options.get(circuit_id, set()):
        raise RowError(f"option {number} is not on the ballot of circuit {code}")
    return Acta(circuit_id, text(table, "table", 32), number, _count(votes, "votes"))


def parse_voter(line: int, cells: list[str], ballots: Ballots) -> Voter:
    """One paper voter row; RowError says why it is bad."""
    raw_id, code, table = columns(cells, len(VOTERS_HEADER))
    national_id = normalise_national_id(raw_id)
    if national_id is None:
        raise RowError("national_id is not a cédula number such as V12345678")
    return Voter(line, national_id, ballots.circuit(code), text(table, "table", 32))


@dataclass
class VoterCheck:
    """The first pass over the paper voters: every bad row, and the signatures per table."""

    session: Session
    ballots: Ballots
    seen: SeenIds = field(default_factory=SeenIds)
    errors: Errors = field(default_factory=list)
    pending: list[Voter] = field(default_factory=list)  # still to look up in the registry
    signatures: dict[TableKey, int] = field(default_factory=dict)
    first_line: dict[TableKey, int] = field(default_factory=dict)
    rows: int = 0
    spoilt: bool = False  # a row that does not parse: the signature counts are not to be trusted

    def row(self, line: int, cells: list[str]) -> None:
        """Check one row, keeping its reason if it is bad."""
        self.rows += 1
        try:
            voter = parse_voter(line, cells, self.ballots)
        except RowError as bad:
            self.errors.append((line, str(bad)))
            self.spoilt = True
            return
        if not self.seen.add(voter.national_id):
            self.errors.append((line, "national_id appears earlier in the file"))
            return
        table = (voter.circuit_id, voter.table)
        self.first_line.setdefault(table, line)
        self.signatures[table] = self.signatures.get(table, 0) + 1
        self.pending.append(voter)
        # Read through the module, not imported by name, so the chunk size has one home.
        if len(self.pending) >= chunking.CHUNK_ROWS:
            self.look_up()

    def look_up(self) -> None:
        """Judge the pending voters against the registry and who already voted, in two queries."""
        if not self.pending:
            return
        people = registered(
            self.session, self.ballots.row.id, [v.national_id for v in self.pending]
        )
        voted = _participations(self.session, self.ballots.row.id, [p[0] for p in people.values()])
        for voter in self.pending:
            why = _voter_problem(voter, people.get(voter.national_id), voted, self.ballots)
            if why:
                self.errors.append((voter.line, why))
        self.pending = []


def registered(
    session: Session, consultation_id: int, national_ids: list[str]
) -> dict[str, tuple[int, int, date]]:
    """national ID -> (person id, circuit id, birth date) for those in the registry."""
    rows = session.execute(
        select(
            PersonRow.national_id_clear, PersonRow.id, PersonRow.circuit_id, PersonRow.birth_date
        )
        .where(PersonRow.consultation_id == consultation_id)
        .where(PersonRow.national_id.in_(national_ids))
    )
    return {nid: (pid, circuit_id, born) for nid, pid, circuit_id, born in rows}


def _participations(
    session: Session, consultation_id: int, person_ids: list[int]
) -> dict[int, tuple[str, str | None]]:
    """person id -> (channel, table) of those who already voted."""
    rows = session.execute(
        select(ParticipationRow.person_id, ParticipationRow.channel, ParticipationRow.table_code)
        .where(ParticipationRow.consultation_id == consultation_id)
        .where(ParticipationRow.person_id.in_(person_ids))
    )
    return {pid: (channel, table) for pid, channel, table in rows}


def _voter_problem(
    voter: Voter,
    person: tuple[int, int, date] | None,
    voted: dict[int, tuple[str, str | None]],
    ballots: Ballots,
) -> str | None:
    """Why this paper voter cannot be loaded, or None."""
    if person is None:
        return "national_id is not in this consultation's registry"
    person_id, circuit_id, born = person
    if circuit_id != voter.circuit_id:
        return f"national_id is not registered in circuit {ballots.code_of(voter.circuit_id)}"
    if not age_allowed(ballots.consultation, born):
        return "national_id is not of the age allowed in this consultation"
    if person_id not in voted:
        return None
    channel, table = voted[person_id]
    if channel == PAPER_CHANNEL:
        return f"already voted on paper at table {table}: this list is already loaded"
    return f"already voted by {channel.upper()}: a digital voter is on the paper list"


def table_errors(
    ballots: Ballots,
    totals: dict[TableKey, int],
    acta_lines: dict[TableKey, int],
    signatures: dict[TableKey, int],
    voter_lines: dict[TableKey, int],
) -> tuple[Errors, Errors]:
    """(actas problems, voters problems): tables with more votes than signatures, or no acta."""
    actas: Errors = []
    for table, votes in totals.items():
        signed = signatures.get(table, 0)
        if votes > signed:
            where = f"table {table[1]} of circuit {ballots.code_of(table[0])}"
            why = f"{where}: the acta counts {votes} votes but only {signed} voters signed"
            actas.append((acta_lines[table], why))
    voters: Errors = []
    for table in signatures.keys() - totals.keys():
        where = f"table {table[1]} of circuit {ballots.code_of(table[0])}"
        voters.append((voter_lines[table], f"{where} has paper voters but no acta"))
    return actas, voters
