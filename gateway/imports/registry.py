"""The registry importer: people and their phones, added to a consultation's registry.

One pass over the file, in one transaction, on two cores. A reading process checks each row
once and hashes and seals what it stores (`checked_rows`); this process takes the rows a chunk
at a time, looks them up in the registry when it is not empty, and writes them (`bulk`) while
no row has been refused. After the first refusal the rest of the file is still read, so that
every bad row is reported, but nothing more is written. A file with any bad row is refused
whole, and the transaction, with every chunk it wrote, is rolled back: the database is left
exactly as it was.
"""

from __future__ import annotations

from contextlib import closing
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import String, select, text, type_coerce
from sqlalchemy.orm import Session, sessionmaker

from gateway import privacy
from gateway.db import transaction
from gateway.imports import chunking
from gateway.imports.background import run_elsewhere
from gateway.imports.bulk import Writer, writer_for
from gateway.imports.checked_rows import Chunk, Spec, checked_chunks
from gateway.imports.chunking import Progress, Ticks
from gateway.imports.consultations import circuit_ids, find_consultation
from gateway.imports.reading import Errors, ImportRefused, ImportReport
from gateway.models import ConsultationRow, PersonRow, PhoneRow

ALREADY_REGISTERED = "national_id is already in this consultation's registry"


def _already_registered(session: Session, consultation_id: int, chunk: Chunk) -> Errors:
    """The rows of `chunk` whose ID is already in the registry, in one query."""
    lines = {values[0]: line for line, values in zip(chunk.lines, chunk.people, strict=True)}
    # The column holds digests and so does `lines`: `type_coerce` keeps the column's type
    # from hashing them a second time.
    stored = type_coerce(PersonRow.national_id, String)
    found = session.scalars(
        select(stored).where(PersonRow.consultation_id == consultation_id, stored.in_(list(lines)))
    )
    return [(lines[digest], ALREADY_REGISTERED) for digest in found]


class _RegistryLoad:
    """What this process does with each chunk, and what it has seen."""

    def __init__(self, session: Session, consultation_id: int, writer: Writer) -> None:
        self.session, self.consultation_id, self.writer = session, consultation_id, writer
        self.errors: Errors = []
        # The usual first import meets an empty registry: then no look-ups are needed. IDs
        # are unique within the file, so the rows this import writes never match a look-up.
        self.registry_empty = not session.scalar(
            select(PersonRow.id).where(PersonRow.consultation_id == consultation_id).limit(1)
        )
        self.rows = self.people = self.phones = 0

    def take(self, chunk: Chunk) -> None:
        self.rows += chunk.rows
        self.errors += chunk.errors
        if chunk.people and not self.registry_empty:
            self.errors += _already_registered(self.session, self.consultation_id, chunk)
        if chunk.people and not self.errors:  # a refused file is rolled back: no use writing
            self.phones += self.writer.write(chunk.people, chunk.phones)
            self.people += len(chunk.people)


def _spec(session: Session, consultation: ConsultationRow, path: Path, region: str) -> Spec:
    circuits = circuit_ids(session, consultation.id)
    if not circuits:
        why = f"consultation {consultation.slug!r} has no ballots yet: import them first"
        raise ImportRefused([(0, why)])
    today = datetime.now(ZoneInfo(consultation.timezone)).date()
    # The chunk size is read here, where a caller (a test) may have changed it.
    return Spec(path, circuits, today, region, privacy.keys(), chunking.CHUNK_ROWS)


def _load(load: _RegistryLoad, spec: Spec, ticks: Ticks) -> None:
    with closing(run_elsewhere(checked_chunks, spec)) as chunks:
        for chunk in chunks:
            load.take(chunk)
            ticks.add(2 * chunk.rows)  # checked and written, as the progress bar counts
    ticks.report()
    if load.errors:
        raise ImportRefused(load.errors)


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
    ticks = Ticks(progress)
    with transaction(sessions) as session:
        consultation = find_consultation(session, slug)
        spec = _spec(session, consultation, Path(path).resolve(), region)
        writer = writer_for(session.connection(), consultation.id)
        try:
            load = _RegistryLoad(session, consultation.id, writer)
            _load(load, spec, ticks)
        finally:
            writer.close()
    _fresh_statistics(sessions)
    return ImportReport(rows=load.rows, people=load.people, phones=load.phones)


def _fresh_statistics(sessions: sessionmaker[Session]) -> None:
    """Tell the planner how big the registry now is, rather than wait for autovacuum.

    Until the tables are analysed the planner plans the first votes' phone look-ups for the
    tables as they were before the import (empty, at the first import), and autovacuum comes
    round only after a minute or more: an import made just before the vote opens would start it
    with bad plans. ANALYZE reads a sample, not the tables (under a second for a million rows).
    """
    with transaction(sessions) as session:
        for table in (PersonRow.__tablename__, PhoneRow.__tablename__):
            session.execute(text(f"ANALYZE {table}"))
