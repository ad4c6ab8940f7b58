"""The registry importer: people and their phones, added to a consultation's registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import transaction
from gateway.imports import chunking
from gateway.imports.chunking import Progress, Ticks, chunks
from gateway.imports.consultations import circuit_ids, find_consultation
from gateway.imports.people import REGISTRY_HEADERS, Context, Person, parse_person
from gateway.imports.reading import (
    Errors,
    ImportRefused,
    ImportReport,
    RowError,
    changed,
    headed_records,
)
from gateway.imports.seen_ids import SeenIds
from gateway.models import ConsultationRow, PersonRow, PhoneRow


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

    def __init__(self, session: Session, consultation_id: int, context: Context) -> None:
        self.session, self.consultation_id, self.context = session, consultation_id, context
        self.seen = SeenIds()
        self.errors: Errors = []
        self.pending: Errors = []  # (line, national ID) still to look up in the registry
        # The usual first import meets an empty registry: then no look-ups are needed.
        self.registry_empty = not session.scalar(
            select(PersonRow.id).where(PersonRow.consultation_id == consultation_id).limit(1)
        )
        self.rows = 0

    def row(self, line: int, cells: list[str], width: int) -> None:
        """Check one row of a file `width` columns wide, keeping its reason if it is bad."""
        self.rows += 1
        try:
            person = parse_person(cells, self.context, width)
        except RowError as bad:
            self.errors.append((line, str(bad)))
            return
        if not self.seen.add(person.national_id):
            self.errors.append((line, "national_id appears earlier in the file"))
        elif not self.registry_empty:
            self.pending.append((line, person.national_id))
            # Read through the module, not imported by name, so the chunk size has one home.
            if len(self.pending) >= chunking.CHUNK_ROWS:
                self.look_up()

    def look_up(self) -> None:
        """Look the pending IDs up in the registry, in one query."""
        if self.pending:
            self.errors += _already_registered(self.session, self.consultation_id, self.pending)
            self.pending = []


def _check_registry(check: _RegistryCheck, path: Path, ticks: Ticks) -> None:
    header, rows = headed_records(path, REGISTRY_HEADERS)
    for line, cells in rows:
        check.row(line, cells, len(header))
        ticks.add()
    check.look_up()
    ticks.report()
    if check.errors:
        raise ImportRefused(check.errors)


def _people(path: Path, context: Context) -> Iterator[Person]:
    header, rows = headed_records(path, REGISTRY_HEADERS)
    for line, cells in rows:
        try:
            yield parse_person(cells, context, len(header))
        except RowError:
            raise changed(line) from None


def _write_people(session: Session, consultation_id: int, batch: list[Person]) -> int:
    """One chunk of people, then their phones; returns how many phones were written."""
    people = [
        {
            "consultation_id": consultation_id,
            "national_id": p.national_id,
            "circuit_id": p.circuit_id,
            "birth_date": p.birth_date,
            "language": p.language,
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


def _context(session: Session, consultation: ConsultationRow, region: str) -> Context:
    circuits = circuit_ids(session, consultation.id)
    if not circuits:
        why = f"consultation {consultation.slug!r} has no ballots yet: import them first"
        raise ImportRefused([(0, why)])
    today = datetime.now(ZoneInfo(consultation.timezone)).date()
    return Context(circuits, region, today)


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
    path, ticks, phones = Path(path), Ticks(progress), 0
    with transaction(sessions) as session:
        consultation = find_consultation(session, slug)
        context = _context(session, consultation, region)
        check = _RegistryCheck(session, consultation.id, context)
        _check_registry(check, path, ticks)
        try:
            for batch in chunks(_people(path, context)):
                phones += _write_people(session, consultation.id, batch)
                ticks.add(len(batch))
            ticks.report()
        except IntegrityError:
            # The check passed, so another import of the same people, or an edit of the file
            # since, put an ID here twice.
            why = "the registry or the file changed during the import; run it again"
            raise ImportRefused([(0, why)]) from None
    return ImportReport(rows=check.rows, people=check.rows, phones=phones)
