"""The ballots importer: every circuit's options, loaded once per consultation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import transaction
from gateway.imports.chunking import Progress, Ticks, chunks
from gateway.imports.consultations import circuit_ids, find_consultation
from gateway.imports.reading import (
    Errors,
    ImportRefused,
    ImportReport,
    RowError,
    changed,
    columns,
    records,
    text,
)
from gateway.models import CircuitRow, OptionRow

MIN_OPTIONS, MAX_OPTIONS = 2, 9  # a ballot has 2 to 9 options (docs/domain.md)
BALLOT_HEADER = ("circuit_code", "circuit_name", "option", "title")


@dataclass
class _Ballots:
    """What the first pass keeps: one entry per circuit, never per row."""

    names: dict[str, str] = field(default_factory=dict)  # code -> name, in file order
    first_line: dict[str, int] = field(default_factory=dict)
    options: dict[str, dict[int, int]] = field(default_factory=dict)  # code -> number -> line
    spoilt: set[str] = field(default_factory=set)  # circuits with a bad row: gaps are moot
    rows: int = 0


def _parse_ballot_row(cells: list[str]) -> tuple[str, str, int, str]:
    code, name, option, title = columns(cells, len(BALLOT_HEADER))
    if not option.isdecimal() or not 1 <= int(option) <= MAX_OPTIONS:
        raise RowError(f"option must be a number from 1 to {MAX_OPTIONS}, found {option!r}")
    return (
        text(code, "circuit_code", 32),
        text(name, "circuit_name", 200),
        int(option),
        text(title, "title", 200),
    )


def _note_ballot_row(state: _Ballots, line: int, cells: list[str]) -> None:
    code, name, option, _ = _parse_ballot_row(cells)
    known = state.names.setdefault(code, name)
    state.first_line.setdefault(code, line)
    if known != name:
        raise RowError(f"circuit {code} was named {known!r} on line {state.first_line[code]}")
    numbers = state.options.setdefault(code, {})
    if option in numbers:
        raise RowError(f"option {option} of circuit {code} is already on line {numbers[option]}")
    numbers[option] = line


def _ballot_gaps(state: _Ballots) -> Errors:
    """Options must run 1..n once the whole file is read: a gap is reported where it starts."""
    errors: Errors = []
    for code, numbers in state.options.items():
        if code in state.spoilt:
            continue
        line = state.first_line[code]
        if sorted(numbers) != list(range(1, len(numbers) + 1)):
            found = ", ".join(map(str, sorted(numbers)))
            errors.append((line, f"circuit {code} has options {found}: they must run 1..n"))
        elif len(numbers) < MIN_OPTIONS:
            errors.append((line, f"circuit {code} has one option: a ballot needs at least 2"))
    return errors


def _check_ballots(path: Path, ticks: Ticks) -> _Ballots:
    state, errors = _Ballots(), []
    for line, cells in records(path, BALLOT_HEADER):
        state.rows += 1
        ticks.add()
        try:
            _note_ballot_row(state, line, cells)
        except RowError as bad:
            errors.append((line, str(bad)))
            state.spoilt.add(cells[0].strip())
    ticks.report()
    errors += _ballot_gaps(state)
    if errors:
        raise ImportRefused(errors)
    return state


def _refuse_second_ballots(session: Session, consultation_id: int, slug: str) -> None:
    count = session.scalar(
        select(func.count())
        .select_from(CircuitRow)
        .where(CircuitRow.consultation_id == consultation_id)
    )
    if count:
        why = f"consultation {slug!r} already has ballots ({count} circuits); they load once"
        raise ImportRefused([(0, why)])


def _option_rows(path: Path, circuits: dict[str, int]) -> Iterator[dict[str, object]]:
    for line, cells in records(path, BALLOT_HEADER):
        try:
            code, _, number, title = _parse_ballot_row(cells)
            circuit_id = circuits[code]
        except (RowError, KeyError):
            raise changed(line) from None
        yield {"circuit_id": circuit_id, "number": number, "title": title}


def import_ballots(
    sessions: sessionmaker[Session], slug: str, path: Path, progress: Progress | None = None
) -> ImportReport:
    """Load every circuit's ballot; refused if the consultation already has ballots.

    Ballots load once per consultation: a second import, even of the same file, is refused
    rather than merged, because votes may already point at the options it would change.
    """
    path, ticks = Path(path), Ticks(progress)
    with transaction(sessions) as session:
        consultation = find_consultation(session, slug)
        _refuse_second_ballots(session, consultation.id, slug)
        state = _check_ballots(path, ticks)
        circuits = [
            {"consultation_id": consultation.id, "code": code, "name": name}
            for code, name in state.names.items()
        ]
        for batch in chunks(circuits):
            session.execute(insert(CircuitRow), batch)
        ids = circuit_ids(session, consultation.id)
        for batch in chunks(_option_rows(path, ids)):
            session.execute(insert(OptionRow), batch)
            ticks.add(len(batch))
        ticks.report()
    return ImportReport(rows=state.rows, circuits=len(circuits), options=state.rows)
