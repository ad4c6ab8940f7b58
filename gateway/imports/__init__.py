"""CSV importers for ballots and the registry: a file is written whole, or not at all.

Both importers stream, keeping only small state (circuit codes, a bitmap of national IDs
seen), and run in one transaction, so a file with any bad row, or a failure half-way through
the writes, leaves the database exactly as it was. The ballots importer checks the whole file,
then reads it again to write it. The registry importer, a million rows and more, reads its file
once: a second process checks each row and hashes and seals it while this one writes the rows
before it, in bulk, until a row is refused (`registry`).

Error reasons never repeat a national ID or a phone number: the line number says which row.

The chunk size lives in `gateway.imports.chunking`: to change it at run time (as tests do),
set `chunking.CHUNK_ROWS`; the copy re-exported here is for reading only.
"""

from __future__ import annotations

from gateway.imports.ballots import BALLOT_HEADER, MAX_OPTIONS, MIN_OPTIONS, import_ballots
from gateway.imports.chunking import CHUNK_ROWS, Progress
from gateway.imports.people import REGISTRY_HEADER, REGISTRY_HEADERS
from gateway.imports.reading import SHOWN_ERRORS, Errors, ImportRefused, ImportReport
from gateway.imports.registry import import_registry

__all__ = [
    "BALLOT_HEADER",
    "CHUNK_ROWS",
    "MAX_OPTIONS",
    "MIN_OPTIONS",
    "REGISTRY_HEADER",
    "REGISTRY_HEADERS",
    "SHOWN_ERRORS",
    "Errors",
    "ImportRefused",
    "ImportReport",
    "Progress",
    "import_ballots",
    "import_registry",
]
