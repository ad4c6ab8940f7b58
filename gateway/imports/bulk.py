"""Writing checked people and their phones in bulk: executemany on SQLite, COPY on PostgreSQL.

Both writers work through the import's own connection, inside its one transaction: whatever
they wrote is rolled back with it when the file is refused or anything fails. They take rows
whose personal values are already hashed and sealed (`checked_rows`), hand them to the driver
with no per-value processing, and number the people themselves, so that a chunk's phones are
written straight after its people without asking the database which IDs it chose:

- SQLite: the import holds the write lock from its first statement (`BEGIN IMMEDIATE`), so the
  IDs from max(id) + 1 on are free until it commits;
- PostgreSQL: the import locks `people` against other writers (readers, and so votes, go on)
  and reserves each chunk's IDs from the table's own sequence in one statement, so that no
  other insert can be handed the same ones. Two registry imports take turns, as on SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import psycopg
from sqlalchemy import Connection

from gateway.imports.checked_rows import PersonValues
from gateway.imports.reading import ImportRefused

# The page cache while an import writes. The registry's indexes on hashed IDs and phones take
# rows in random order; with SQLite's default 2 MB most inserts would read a page back from the
# file. A fixed amount whatever the file's size; the connection's own setting is put back after.
SQLITE_CACHE_KIB = 64 * 1024
CHANGED = "the registry changed during the import; run it again"
_NULL = "\\N"  # COPY's text format for a missing value

_INSERT_PEOPLE = (
    "INSERT INTO people (id, consultation_id, national_id_digest, national_id_sealed,"
    " circuit_id, birth_date, language) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_PHONES = "INSERT INTO phones (consultation_id, person_id, phone_digest) VALUES (?, ?, ?)"
_COPY_PEOPLE = (
    "COPY people (id, consultation_id, national_id_digest, national_id_sealed,"
    " circuit_id, birth_date, language) FROM STDIN"
)
_COPY_PHONES = "COPY phones (consultation_id, person_id, phone_digest) FROM STDIN"


class Writer(Protocol):
    def write(self, people: Sequence[PersonValues], phones: Sequence[tuple[str, ...]]) -> int:
        """Write these people, and each one's phone digests; returns how many phones."""

    def close(self) -> None:
        """Put back any setting changed for the writes."""


def writer_for(connection: Connection, consultation_id: int) -> Writer:
    """The writer for the database behind `connection`."""
    if connection.dialect.name == "postgresql":
        return PostgresWriter(connection, consultation_id)
    return SqliteWriter(connection, consultation_id)


def _driver(connection: Connection) -> Any:
    return connection.connection.driver_connection


class SqliteWriter:
    """Plain executemany of ready tuples."""

    def __init__(self, connection: Connection, consultation_id: int) -> None:
        self.cursor = _driver(connection).cursor()
        self.consultation_id = consultation_id
        self.next_id = self.cursor.execute(
            "SELECT coalesce(max(id), 0) + 1 FROM people"
        ).fetchone()[0]
        self.cache = int(self.cursor.execute("PRAGMA cache_size").fetchone()[0])
        self.cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")

    def write(self, people: Sequence[PersonValues], phones: Sequence[tuple[str, ...]]) -> int:
        first, cid = self.next_id, self.consultation_id
        self.next_id += len(people)
        rows = [(pid, cid, *values) for pid, values in enumerate(people, first)]
        numbers = [(cid, pid, d) for pid, digests in enumerate(phones, first) for d in digests]
        try:
            self.cursor.executemany(_INSERT_PEOPLE, rows)
            self.cursor.executemany(_INSERT_PHONES, numbers)
        except sqlite3.IntegrityError:
            raise ImportRefused([(0, CHANGED)]) from None
        return len(numbers)

    def close(self) -> None:
        self.cursor.execute(f"PRAGMA cache_size = {self.cache}")
        self.cursor.close()


class PostgresWriter:
    """COPY of tab-separated text: one statement per table per chunk."""

    def __init__(self, connection: Connection, consultation_id: int) -> None:
        self.cursor: psycopg.Cursor[Any] = _driver(connection).cursor()
        self.consultation_id = str(consultation_id)
        self.cursor.execute("LOCK TABLE people IN SHARE ROW EXCLUSIVE MODE")
        found = self.cursor.execute("SELECT pg_get_serial_sequence('people', 'id')").fetchone()
        self.sequence = found[0] if found else None

    def _first_id(self, count: int) -> int:
        """The first of `count` consecutive IDs, taken from the sequence for this import."""
        reserve = "SELECT setval(%(s)s, nextval(%(s)s) + %(n)s - 1)"
        [last] = self.cursor.execute(reserve, {"s": self.sequence, "n": count}).fetchall()
        return int(last[0]) - count + 1

    def write(self, people: Sequence[PersonValues], phones: Sequence[tuple[str, ...]]) -> int:
        if not people:
            return 0
        cid, first = self.consultation_id, self._first_id(len(people))
        # Digits, hex, URL-safe base64, ISO dates and locale codes: nothing COPY's text format
        # would need escaped.
        rows = [
            f"{pid}\t{cid}\t{digest}\t{sealed}\t{circuit}\t{born}\t{language or _NULL}\n"
            for pid, (digest, sealed, circuit, born, language) in enumerate(people, first)
        ]
        numbers = [
            f"{cid}\t{pid}\t{d}\n" for pid, digests in enumerate(phones, first) for d in digests
        ]
        try:
            self._copy(_COPY_PEOPLE, rows)
            self._copy(_COPY_PHONES, numbers)
        except psycopg.errors.IntegrityError:
            raise ImportRefused([(0, CHANGED)]) from None
        return len(numbers)

    def _copy(self, statement: str, lines: list[str]) -> None:
        if lines:
            with self.cursor.copy(statement) as copy:
                copy.write("".join(lines))

    def close(self) -> None:
        self.cursor.close()
