"""Reading an import's CSV file: UTF-8 lines, CSV rows, the header, and why a row is refused."""

from __future__ import annotations

import csv
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import Reader  # the type csv.reader returns; not importable from csv itself

SHOWN_ERRORS = 20
_BOM = b"\xef\xbb\xbf"

Errors = list[tuple[int, str]]


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


class RowError(ValueError):
    """One row's reason for being refused."""


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


def records(path: Path, header: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """The data rows of a CSV file whose header is exactly `header`."""
    _, rows = headed_records(path, (header,))
    return rows


def headed_records(
    path: Path, headers: tuple[tuple[str, ...], ...]
) -> tuple[tuple[str, ...], Iterator[tuple[int, list[str]]]]:
    """The header, exactly one of `headers`, and the data rows of a CSV file."""
    reader = csv.reader(_decoded_lines(path), strict=True)
    rows = _numbered(reader)
    first = next(rows, None)
    expected = " or ".join(",".join(header) for header in headers)
    if first is None:
        raise ImportRefused([(1, f"the file is empty: expected the header {expected}")])
    line, cells = first
    found = tuple(c.strip().lower() for c in cells)
    if found not in headers:
        rows.close()  # closes the file now, not whenever the refusal is forgotten
        # What was found is not repeated: without a header, it is someone's ID and phone.
        raise ImportRefused([(line, f"expected the header {expected}")])
    return found, rows


def columns(cells: list[str], count: int) -> list[str]:
    """The row's cells, stripped; refused unless there are exactly `count`."""
    if len(cells) != count:
        raise RowError(f"expected {count} columns, found {len(cells)}")
    if any("\x00" in c for c in cells):  # PostgreSQL refuses NUL in text: say so, by line
        raise RowError("a cell holds a NUL character")
    return [c.strip() for c in cells]


def text(value: str, label: str, limit: int) -> str:
    """A required text cell of at most `limit` characters."""
    if not value:
        raise RowError(f"{label} is empty")
    if len(value) > limit:
        raise RowError(f"{label} is longer than {limit} characters")
    return value


def changed(line: int) -> ImportRefused:
    """The refusal for a row the second pass finds bad."""
    # The first pass found this row good: the file was edited while we were writing it.
    return ImportRefused([(line, "the file changed during the import; run it again")])
