"""The benchmark's line on Redis's fsyncs: what its latency monitor saw, and when it cannot see."""

from __future__ import annotations

import pytest

from bench.meter import QueueWatch


def test_a_redis_without_aof_is_said_to_make_no_reply_wait(redis_url: str) -> None:
    watch = QueueWatch(redis_url)
    watch.start()
    watch.stop()
    assert watch.fsync_line() == "redis fsync appendfsync off (no AOF): no reply waits for an fsync"


@pytest.mark.parametrize(
    ("fsyncs", "line"),
    [
        pytest.param(
            [], "no second with an AOF fsync of 1 ms or more", id="no slow second says so"
        ),
        pytest.param(
            [7, 2, 18, 5],
            "the slowest AOF fsync of each second, where 1 ms or more: 4 of the 60 seconds of the"
            " phase, median 7 ms, worst 18 ms (Redis's latency monitor)",
            id="slow seconds give their count, median and worst",
        ),
    ],
)
def test_under_appendfsync_always_the_slow_seconds_are_summed_up(
    redis_url: str, fsyncs: list[int], line: str
) -> None:
    watch = QueueWatch(redis_url)
    watch.fsync_policy, watch.fsyncs, watch.seconds = "always", fsyncs, 60
    assert watch.fsync_line() == f"redis fsync {line}"
