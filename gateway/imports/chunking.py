"""Writing in chunks, and telling a progress callback once per chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

CHUNK_ROWS = 5_000  # rows per bulk insert: big enough to be fast, small enough to stay flat

Progress = Callable[[int], None]
_T = TypeVar("_T")


def chunks(items: Iterable[_T]) -> Iterator[list[_T]]:
    """`items` in lists of CHUNK_ROWS, the last one shorter."""
    batch: list[_T] = []
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


class Ticks:
    """Counts rows handled and tells `progress` once per chunk rather than once per row.

    Every row is counted twice, once checked and once written (the registry does both in one
    pass), so the count ends at 2 × rows.
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
