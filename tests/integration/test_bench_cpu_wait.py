"""The benchmark's "waited for a CPU" column: the kernel's run-queue delay of real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench.meter import Meter, Usage, run_queue_seconds
from bench.report import Step, usage_lines
from tests.support.bench_figures import figures

SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
SLEEP = "import time\ntime.sleep({seconds})\n"


@contextmanager
def children(code: str, count: int, seconds: float) -> Iterator[list[int]]:
    """`count` Python processes running `code`, all on the first CPU this test may use."""
    cpu = min(os.sched_getaffinity(0))
    started = [
        subprocess.Popen([sys.executable, "-c", code.format(seconds=seconds)])  # noqa: S603
        for _ in range(count)
    ]
    try:
        for child in started:
            os.sched_setaffinity(child.pid, {cpu})
        yield [child.pid for child in started]
    finally:
        for child in started:
            child.kill()
            child.wait()


def waited_over(pids: list[int], seconds: float) -> list[float]:
    before = [run_queue_seconds(pid) or 0.0 for pid in pids]
    time.sleep(seconds)
    after = [run_queue_seconds(pid) or 0.0 for pid in pids]
    return [b - a for a, b in zip(before, after, strict=True)]


def test_processes_sharing_one_cpu_each_wait_about_two_thirds_of_the_time() -> None:
    with children(SPIN, count=3, seconds=5) as pids:
        waited = waited_over(pids, 1.0)
    # Three spinners on one CPU: each runs about a third of the second and waits the rest (its
    # CPU time, the other figure the kernel keeps, would be about a third).
    assert all(0.5 < w < 0.85 for w in waited), waited


def test_a_sleeping_process_waits_for_no_cpu() -> None:
    with children(SLEEP, count=1, seconds=5) as pids:
        [waited] = waited_over(pids, 0.5)
    assert waited < 0.05


def test_a_process_that_does_not_exist_has_no_figure() -> None:
    with open("/proc/sys/kernel/pid_max") as limit:
        beyond = int(limit.read()) + 1  # no process can have this ID
    assert run_queue_seconds(beyond) is None


def test_the_meter_reports_the_wait_of_each_role() -> None:
    with children(SPIN, count=3, seconds=5) as pids:
        meter = Meter({"load generator": pids[0], "redis": pids[1]}, None, interval=0.2)
        meter.start()
        time.sleep(1.0)
        meter.stop()
    by_role = {u.role: u for u in meter.usage()}
    assert set(by_role) == {"load generator", "redis"}
    for usage in by_role.values():
        assert usage.waited_seconds is not None
        assert 0.5 < usage.waited_seconds < 0.85, usage


@pytest.mark.parametrize(
    ("waited", "shown"),
    [
        pytest.param(12.34, "| 12.3 |", id="a measured wait is shown in seconds"),
        pytest.param(None, "| - |", id="a wait the kernel did not give is shown as a dash"),
    ],
)
def test_the_processes_table_shows_the_wait(waited: float | None, shown: str) -> None:
    usage = [Usage("web worker 1", 1, 9.0, 95.0, 95.0, waited)]
    step = Step("phase", 2, figures(), usage, 60.0, 100.0, (0.0,) * 3, (0.0,) * 3)
    [row] = [line for line in usage_lines(step) if "web worker 1" in line]
    assert row == f"  | web worker 1 | 1 | 9.0 | 15 {shown} 95 |"
