"""A generator run in a child process: its items arrive in order, its exceptions as themselves."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import closing

import pytest

from gateway.imports.background import ChildError, run_elsewhere
from gateway.imports.reading import ImportRefused


def numbers(count: int) -> Iterator[tuple[int, int]]:
    """(pid, n) for n below `count`, then, for a negative count, a refusal."""
    for n in range(abs(count)):
        yield os.getpid(), n
    if count < 0:
        raise ImportRefused([(7, "a bad row")])


class Unpicklable(Exception):  # noqa: N818 - named for what the test needs of it
    def __init__(self, a: int, b: int) -> None:  # pickle rebuilds it from args: it cannot
        super().__init__(f"{a} and {b}")


def broken(_: int) -> Iterator[int]:
    yield 1
    raise Unpicklable(1, 2)


def dying(_: int) -> Iterator[int]:
    yield 1
    os._exit(1)  # as if killed: no exception, no goodbye


def endless(_: int) -> Iterator[int]:
    while True:
        yield os.getpid()


def test_the_items_arrive_in_order_from_another_process() -> None:
    received = list(run_elsewhere(numbers, 1_000))
    assert [n for _, n in received] == list(range(1_000))
    assert {pid for pid, _ in received} != {os.getpid()}


def test_an_exception_in_the_child_is_raised_here_as_itself() -> None:
    received: list[int] = []
    with pytest.raises(ImportRefused) as refused:
        received.extend(n for _, n in run_elsewhere(numbers, -3))
    assert received == [0, 1, 2]
    assert refused.value.errors == [(7, "a bad row")]


def test_an_exception_that_cannot_travel_arrives_as_its_traceback() -> None:
    with pytest.raises(ChildError, match="Unpicklable: 1 and 2"):
        list(run_elsewhere(broken, 0))


def test_a_child_that_dies_is_an_error_here_not_a_short_result() -> None:
    received: list[int] = []
    with pytest.raises(ChildError, match="stopped before it finished"):
        received.extend(run_elsewhere(dying, 0))
    assert received == [1]


def test_closing_early_stops_the_child() -> None:
    with closing(run_elsewhere(endless, 0)) as items:
        child = next(items)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]  # noqa: PTH123, SIM115
    except OSError:
        return False
    return state != "Z"
