"""One pump per deployment: the intake workers share a lease in Redis, and one holds it.

With a pump in every worker, each took a share of what was waiting and batches shrank as workers
were added. These tests hold the lease the way two workers' side threads would.
"""

from __future__ import annotations

import threading
import time

import pytest
from redis import Redis

from workers import main, pump
from workers.runtime import Runtime

FIRST, SECOND = "host:1:aaaa", "host:2:bbbb"


@pytest.fixture
def lease(redis_url: str) -> Redis:
    client = Redis.from_url(redis_url)
    client.delete(pump.PUMP_LEASE)
    return client


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        pytest.param([FIRST], [True], id="a free lease is taken"),
        pytest.param([FIRST, SECOND], [True, False], id="a held lease is refused to another"),
        pytest.param([FIRST, FIRST], [True, True], id="the holder renews its own"),
        pytest.param([FIRST, SECOND, FIRST], [True, False, True], id="a refusal takes nothing"),
    ],
)
def test_the_lease_goes_to_one_worker(
    lease: Redis, sequence: list[str], expected: list[bool]
) -> None:
    assert [pump.hold_lease(lease, me) for me in sequence] == expected


def test_a_lease_left_by_a_dead_pump_passes_on_when_it_expires(lease: Redis) -> None:
    assert pump.hold_lease(lease, FIRST, lease_ms=200)
    assert not pump.hold_lease(lease, SECOND, lease_ms=200)
    time.sleep(0.3)  # FIRST was killed: it renews nothing
    assert pump.hold_lease(lease, SECOND, lease_ms=200)


def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(lease: Redis) -> None:
    assert pump.hold_lease(lease, FIRST)
    pump.release_lease(lease, SECOND)
    assert not pump.hold_lease(lease, SECOND)
    pump.release_lease(lease, FIRST)
    assert pump.hold_lease(lease, SECOND)


def test_two_feeding_threads_take_turns_and_the_one_that_stops_hands_over(rt: Runtime) -> None:
    rt.redis.delete(pump.PUMP_LEASE)
    stops = [threading.Event(), threading.Event()]
    threads = [threading.Thread(target=main.feed, args=(rt, stop)) for stop in stops]
    threads[0].start()
    deadline = time.monotonic() + 5
    while rt.redis.get(pump.PUMP_LEASE) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    leader = rt.redis.get(pump.PUMP_LEASE)
    assert leader is not None
    threads[1].start()
    time.sleep(1.5)
    assert rt.redis.get(pump.PUMP_LEASE) == leader  # the second one waited its turn
    stops[0].set()
    threads[0].join(timeout=5)
    deadline = time.monotonic() + 5
    while rt.redis.get(pump.PUMP_LEASE) in (None, leader) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rt.redis.get(pump.PUMP_LEASE) not in (None, leader)
    stops[1].set()
    threads[1].join(timeout=5)
    assert rt.redis.get(pump.PUMP_LEASE) is None
