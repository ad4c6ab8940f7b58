"""CSV importers for ballots and the registry: the whole file is checked, then written whole.

Both importers stream. A first pass reads the file row by row and keeps only small state
(circuit codes, a bitmap of national IDs seen); a second pass reads it again and writes it
in chunks of bulk inserts. Both passes run in one transaction, so a file with any bad row,
or a failure half-way through the writes, leaves the database exactly as it was.

Error reasons never repeat a national ID or a phone number: the line number says which row.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import transaction
from gateway.models import CircuitRow, ConsultationRow, OptionRow, PersonRow, PhoneRow
from gateway.phones import to_e164
from voting.identity import normalise_national_id

if TYPE_CHECKING:
    from _csv import Reader  # the type csv.reader returns; not importable from csv itself

CHUNK_ROWS = 5_000  # rows per bulk insert: big enough to be fast, small enough to stay flat
SHOWN_ERRORS = 20
MIN_OPTIONS, MAX_OPTIONS = 2, 9  # a ballot has 2 to 9 options (docs/domain.md)
BALLOT_HEADER = ("circuit_code", "circuit_name", "option", "title")
REGISTRY_HEADER = ("national_id", "circuit_code", "birth_date", "phones")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BOM = b"\xef\xbb\xbf"

Errors = list[tuple[int, str]]
Progress = Callable[[int], None]
_T = TypeVar("_T")


class ImportRefused(Exception):  # noqa: N818 - the name the CLI and callers know
    """The file was refused and nothing was written; line 0 means the file as a whole."""

    def __init__(self, errors: Errors) -> None:
        super().__init__(errors)
        self.errors = sorted(errors)

    def __str__(self) -> str:
        shown = [f"line {n}: {why}" if n else why for n, why in self.errors[:SHOWN_ERRORS]]
        hidden = len(self.errors) - len(shown)
        more = [f"... and {hidden} more"] if hidden else []
        total = f"import refused, nothing was written ({len(self.errors)} problem(s)):"
        return "\n".join([total, *shown, *more])


@dataclass(frozen=True)
class ImportReport:
    """What an import wrote."""

    rows: int
    circuits: int = 0
    options: int = 0
    people: int = 0
    phones: int = 0


class _RowError(ValueError):
    """One row's reason for being refused."""


# --- reading -------------------------------------------------------------------------------


def _decoded_lines(path: Path) -> Iterator[str]:
    """Line by line, so that a byte that is not UTF-8 is reported on its own line."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            chunk = raw[len(_BOM) :] if number == 1 and raw.startswith(_BOM) else raw
            try:
                yield chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                why = f"the file is not UTF-8 text (byte {exc.start + 1}): save it as CSV UTF-8"
                raise ImportRefused([(number, why)]) from None


def _numbered(reader: Reader) -> Generator[tuple[int, list[str]], None, None]:
    """Each non-blank row with the file line it starts on (the header is line 1)."""
    end = 0
    try:
        for row in reader:
            start, end = end + 1, reader.line_num
            if row:  # a blank line, often the last, carries no row
                yield start, row
    except csv.Error as exc:
        raise ImportRefused([(end + 1, f"this is not valid CSV: {exc}")]) from None


def _records(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """The data rows of a CSV file whose header is exactly `header`."""
    reader = csv.reader(_decoded_lines(path), strict=True)
    rows = _numbered(reader)
    first = next(rows, None)
    expected = ",".join(header)
    if first is None:
        raise ImportRefused([(1, f"the file is empty: expected the header {expected}")])
    line, cells = first
    if tuple(c.strip().lower() for c in cells) != header:
        rows.close()  # closes the file now, not whenever the refusal is forgotten
        # What was found is not repeated: without a header, it is someone's ID and phone.
        raise ImportRefused([(line, f"expected the header {expected}")])
    return rows


def _columns(cells: list[str], count: int) -> list[str]:
    if len(cells) != count:
        raise _RowError(f"expected {count} columns, found {len(cells)}")
    return [c.strip() for c in cells]


def _text(value: str, label: str, limit: int) -> str:
    if not value:
        raise _RowError(f"{label} is empty")
    if len(value) > limit:
        raise _RowError(f"{label} is longer than {limit} characters")
    return value


# --- shared steps --------------------------------------------------------------------------


def _consultation(session: Session, slug: str) -> ConsultationRow:
    found = session.scalar(select(ConsultationRow).where(ConsultationRow.slug == slug))
    if found is None:
        raise ImportRefused([(0, f"there is no consultation {slug!r}: create it first")])
    return found


def _circuit_ids(session: Session, consultation_id: int) -> dict[str, int]:
    rows = session.execute(
        select(CircuitRow.code, CircuitRow.id).where(CircuitRow.consultation_id == consultation_id)
    )
    return dict(rows.all())


def _chunks(items: Iterable[_T]) -> Iterator[list[_T]]:
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


class _Ticks:
    """Counts rows handled and tells `progress` once per chunk rather than once per row.

    Every row is handled twice, once checked and once written, so the count ends at 2 × rows.
    """

    def __init__(self, progress: Progress | None) -> None:
        self.progress, self.done = progress, 0

    def add(self, rows: int = 1) -> None:
        """Count `rows` more, telling `progress` each time a chunk boundary is crossed."""
        before, self.done = self.done, self.done + rows
        if before // CHUNK_ROWS != self.done // CHUNK_ROWS:
            self.report()

    def report(self) -> None:
        """Tell `progress` the count now: at the end of each pass."""
        if self.progress is not None:
            self.progress(self.done)


def _changed(line: int) -> ImportRefused:
    # The first pass found this row good: the file was edited while we were writing it.
    return ImportRefused([(line, "the file changed during the import; run it again")])


# --- ballots -------------------------------------------------------------------------------


@dataclass
class _Ballots:
    """What the first pass keeps: one entry per circuit, never per row."""

    names: dict[str, str] = field(default_factory=dict)  # code -> name, in file order
    first_line: dict[str, int] = field(default_factory=dict)
    options: dict[str, dict[int, int]] = field(default_factory=dict)  # code -> number -> line
    spoilt: set[str] = field(default_factory=set)  # circuits with a bad row: gaps are moot
    rows: int = 0


def _parse_ballot_row(cells: list[str]) -> tuple[str, str, int, str]:
    code, name, option, title = _columns(cells, len(BALLOT_HEADER))
    if not option.isdecimal() or not 1 <= int(option) <= MAX_OPTIONS:
        raise _RowError(f"option must be a number from 1 to {MAX_OPTIONS}, found {option!r}")
    return (
        _text(code, "circuit_code", 32),
        _text(name, "circuit_name", 200),
        int(option),
        _text(title, "title", 200),
    )


def _note_ballot_row(state: _Ballots, line: int, cells: list[str]) -> None:
    code, name, option, _ = _parse_ballot_row(cells)
    known = state.names.setdefault(code, name)
    state.first_line.setdefault(code, line)
    if known != name:
        raise _RowError(f"circuit {code} was named {known!r} on line {state.first_line[code]}")
    numbers = state.options.setdefault(code, {})
    if option in numbers:
        raise _RowError(f"option {option} of circuit {code} is already on line {numbers[option]}")
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


def _check_ballots(path: Path, ticks: _Ticks) -> _Ballots:
    state, errors = _Ballots(), []
    for line, cells in _records(path, BALLOT_HEADER):
        state.rows += 1
        ticks.add()
        try:
            _note_ballot_row(state, line, cells)
        except _RowError as bad:
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
    for line, cells in _records(path, BALLOT_HEADER):
        try:
            code, _, number, title = _parse_ballot_row(cells)
            circuit_id = circuits[code]
        except (_RowError, KeyError):
            raise _changed(line) from None
        yield {"circuit_id": circuit_id, "number": number, "title": title}


def import_ballots(
    sessions: sessionmaker[Session], slug: str, path: Path, progress: Progress | None = None
) -> ImportReport:
    """Load every circuit's ballot; refused if the consultation already has ballots.

    Ballots load once per consultation: a second import, even of the same file, is refused
    rather than merged, because votes may already point at the options it would change.
    """
    path, ticks = Path(path), _Ticks(progress)
    with transaction(sessions) as session:
        consultation = _consultation(session, slug)
        _refuse_second_ballots(session, consultation.id, slug)
        state = _check_ballots(path, ticks)
        circuits = [
            {"consultation_id": consultation.id, "code": code, "name": name}
            for code, name in state.names.items()
        ]
        for batch in _chunks(circuits):
            session.execute(insert(CircuitRow), batch)
        ids = _circuit_ids(session, consultation.id)
        for batch in _chunks(_option_rows(path, ids)):
            session.execute(insert(OptionRow), batch)
            ticks.add(len(batch))
        ticks.report()
    return ImportReport(rows=state.rows, circuits=len(circuits), options=state.rows)


# --- the registry --------------------------------------------------------------------------


class _SeenIds:
    """The national IDs met so far, in about 25 MB whatever the size of the file.

    Cédula numbers are below 10^8, so one bit per possible number and nationality holds a
    registry of 21 million people where a set of strings would take gigabytes. The rare
    longer number falls back to a set.
    """

    _DENSE = 10**8

    def __init__(self) -> None:
        self._bits = {"V": bytearray(self._DENSE // 8), "E": bytearray(self._DENSE // 8)}
        self._rest: set[str] = set()

    def add(self, national_id: str) -> bool:
        """Remember the ID; False if it was already there."""
        number = int(national_id[1:])
        if number >= self._DENSE:
            fresh = national_id not in self._rest
            self._rest.add(national_id)
            return fresh
        bits, index, mask = self._bits[national_id[0]], number >> 3, 1 << (number & 7)
        fresh = not bits[index] & mask
        bits[index] |= mask
        return fresh


@dataclass(frozen=True)
class _Person:
    national_id: str
    circuit_id: int
    birth_date: date
    phones: tuple[str, ...]


@dataclass(frozen=True)
class _Context:
    """What a registry row is checked against."""

    circuits: dict[str, int]  # code -> id
    region: str
    today: date


def _birth_date(value: str, today: date) -> date:
    if not _ISO_DATE.match(value):
        raise _RowError("birth_date must be written YYYY-MM-DD")
    try:
        born = date.fromisoformat(value)
    except ValueError:
        raise _RowError("birth_date is not a real calendar date") from None
    if born > today:
        raise _RowError("birth_date is in the future")
    if born.year < 1900:  # a year such as 0990 is a slip of the keyboard
        raise _RowError("birth_date is before 1900")
    return born


def _phones(value: str, region: str) -> tuple[str, ...]:
    found: dict[str, None] = {}  # a dict keeps the file's order, a set would not
    pieces = [p for p in value.split(";") if p.strip()]
    for position, raw in enumerate(pieces, start=1):
        e164 = to_e164(raw, region)
        if e164 is None:
            raise _RowError(f"phone {position} of {len(pieces)} is not a phone number")
        found[e164] = None  # one number spelt two ways is one phone
    return tuple(found)


def _parse_person(cells: list[str], context: _Context) -> _Person:
    raw_id, code, born, phones = _columns(cells, len(REGISTRY_HEADER))
    national_id = normalise_national_id(raw_id)
    if national_id is None:
        raise _RowError("national_id is not a cédula number such as V12345678")
    circuit_id = context.circuits.get(code)
    if circuit_id is None:
        raise _RowError(f"circuit_code {code!r} is not on this consultation's ballots")
    return _Person(
        national_id, circuit_id, _birth_date(born, context.today), _phones(phones, context.region)
    )


def _already_registered(session: Session, consultation_id: int, pending: Errors) -> Errors:
    """The rows of `pending` (line, national ID) whose ID is already in the registry."""
    found = set(
        session.scalars(
            select(PersonRow.national_id).where(
                PersonRow.consultation_id == consultation_id,
                PersonRow.national_id.in_([national_id for _, national_id in pending]),
            )
        )
    )
    why = "national_id is already in this consultation's registry"
    return [(line, why) for line, national_id in pending if national_id in found]


class _RegistryCheck:
    """The first pass: every bad row, remembering IDs in a bitmap rather than rows in a list."""

    def __init__(self, session: Session, consultation_id: int, context: _Context) -> None:
        self.session, self.consultation_id, self.context = session, consultation_id, context
        self.seen = _SeenIds()
        self.errors: Errors = []
        self.pending: Errors = []  # (line, national ID) still to look up in the registry
        # The usual first import meets an empty registry: then no look-ups are needed.
        self.registry_empty = not session.scalar(
            select(PersonRow.id).where(PersonRow.consultation_id == consultation_id).limit(1)
        )
        self.rows = 0

    def row(self, line: int, cells: list[str]) -> None:
        """Check one row, keeping its reason if it is bad."""
        self.rows += 1
        try:
            person = _parse_person(cells, self.context)
        except _RowError as bad:
            self.errors.append((line, str(bad)))
            return
        if not self.seen.add(person.national_id):
            self.errors.append((line, "national_id appears earlier in the file"))
        elif not self.registry_empty:
            self.pending.append((line, person.national_id))
            if len(self.pending) >= CHUNK_ROWS:
                self.look_up()

    def look_up(self) -> None:
        """Look the pending IDs up in the registry, in one query."""
        if self.pending:
            self.errors += _already_registered(self.session, self.consultation_id, self.pending)
            self.pending = []


def _check_registry(check: _RegistryCheck, path: Path, ticks: _Ticks) -> None:
    for line, cells in _records(path, REGISTRY_HEADER):
        check.row(line, cells)
        ticks.add()
    check.look_up()
    ticks.report()
    if check.errors:
        raise ImportRefused(check.errors)


def _people(path: Path, context: _Context) -> Iterator[_Person]:
    for line, cells in _records(path, REGISTRY_HEADER):
        try:
            yield _parse_person(cells, context)
        except _RowError:
            raise _changed(line) from None


def _write_people(session: Session, consultation_id: int, batch: list[_Person]) -> int:
    """One chunk of people, then their phones; returns how many phones were written."""
    people = [
        {
            "consultation_id": consultation_id,
            "national_id": p.national_id,
            "circuit_id": p.circuit_id,
            "birth_date": p.birth_date,
        }
        for p in batch
    ]
    inserted = session.execute(
        insert(PersonRow).returning(PersonRow.national_id, PersonRow.id), people
    )
    ids = dict(inserted.all())
    phones = [
        {"consultation_id": consultation_id, "person_id": ids[p.national_id], "phone": phone}
        for p in batch
        for phone in p.phones
    ]
    if phones:
        session.execute(insert(PhoneRow), phones)
    return len(phones)


def _context(session: Session, consultation: ConsultationRow, region: str) -> _Context:
    circuits = _circuit_ids(session, consultation.id)
    if not circuits:
        why = f"consultation {consultation.slug!r} has no ballots yet: import them first"
        raise ImportRefused([(0, why)])
    today = datetime.now(ZoneInfo(consultation.timezone)).date()
    return _Context(circuits, region, today)


def import_registry(
    sessions: sessionmaker[Session],
    slug: str,
    path: Path,
    region: str,
    progress: Progress | None = None,
) -> ImportReport:
    """Add people and their phones to a consultation's registry; an ID already in it is refused.

    Phones are read as numbers of `region` (such as "VE") unless written internationally.
    """
    path, ticks, phones = Path(path), _Ticks(progress), 0
    with transaction(sessions) as session:
        consultation = _consultation(session, slug)
        context = _context(session, consultation, region)
        check = _RegistryCheck(session, consultation.id, context)
        _check_registry(check, path, ticks)
        try:
            for batch in _chunks(_people(path, context)):
                phones += _write_people(session, consultation.id, batch)
                ticks.add(len(batch))
            ticks.report()
        except IntegrityError:
            # The check passed, so another import of the same people, or an edit of the file
            # since, put an ID here twice.
            why = "the registry or the file changed during the import; run it again"
            raise ImportRefused([(0, why)]) from None
    return ImportReport(rows=check.rows, people=check.rows, phones=phones)
