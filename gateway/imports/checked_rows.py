"""A registry file read into checked rows, holding what the database stores, a chunk at a time.

This is the half of an import that costs CPU and needs no database: reading the CSV, checking
every cell, reading the phones, noticing an ID seen earlier in the file, and hashing and sealing
the personal values. It runs in a process of its own (`gateway.imports.background`), so that
while it reads one chunk the importer's process writes the one before.

Every row is read once. A bad row is kept as its line and reason, and reading goes on, so that
the refusal lists every bad row of the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from gateway.imports.e164 import PhoneReader
from gateway.imports.people import REGISTRY_HEADERS, Context, Person, parse_person
from gateway.imports.protect import Protector
from gateway.imports.reading import Errors, RowError, headed_records
from gateway.imports.seen_ids import SeenIds
from gateway.privacy import Keys

DUPLICATE = "national_id appears earlier in the file"

# What the database stores for one person, but the ID it gives them:
# (national ID digest, sealed national ID, circuit id, ISO birth date, language or None).
PersonValues = tuple[str, str, int, str, str | None]


@dataclass(frozen=True)
class Spec:
    """What the rows are checked against, and how: everything the reading process is told."""

    path: Path
    circuits: dict[str, int]  # code -> id
    today: date  # in the consultation's time zone: no one is born after it
    region: str  # for phones written without their country code
    keys: Keys
    chunk_rows: int


@dataclass
class Chunk:
    """Consecutive rows of the file: the good ones ready to write, the bad ones' reasons."""

    rows: int = 0  # rows read, good and bad
    errors: Errors = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # of each good row
    people: list[PersonValues] = field(default_factory=list)
    phones: list[tuple[str, ...]] = field(default_factory=list)  # each good row's phone digests

    def add(self, line: int, person: Person, protect: Protector) -> None:
        national_id = person.national_id
        self.lines.append(line)
        self.people.append(
            (
                protect.digest(national_id),
                protect.seal(national_id),
                person.circuit_id,
                person.birth_date.isoformat(),
                person.language,
            )
        )
        self.phones.append(tuple(map(protect.digest, person.phones)))


def checked_chunks(spec: Spec) -> Iterator[Chunk]:
    """The file's rows, checked and protected, `spec.chunk_rows` rows to a chunk."""
    header, records = headed_records(spec.path, REGISTRY_HEADERS)
    width = len(header)  # the 4-column header has no language
    context = Context(spec.circuits, spec.today, PhoneReader(spec.region))
    protect, seen, chunk = Protector(spec.keys), SeenIds(), Chunk()
    for line, cells in records:
        chunk.rows += 1
        try:
            person = parse_person(cells, context, width)
        except RowError as bad:
            chunk.errors.append((line, str(bad)))
        else:
            if seen.add(person.national_id):
                chunk.add(line, person, protect)
            else:
                chunk.errors.append((line, DUPLICATE))
        if chunk.rows >= spec.chunk_rows:
            yield chunk
            chunk = Chunk()
    if chunk.rows:
        yield chunk
