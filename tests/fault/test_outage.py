"""Outages: Redis gone, then the database gone, for 30-60 s (about 5 s at small N), under load.

Redis is our own server, killed and restarted on the same port and folder. The database is the
shared PostgreSQL reached through a TCP relay (tests/support/chaos.py) that resets every
connection while cut: the server itself never stops. SQLite is a file inside the processes, so it
has no outage of this kind; its Redis outage is run all the same.

The webhook commits, then pushes to Redis: without Redis it still answers 200 and the sweep finds
the message; without the database it answers 503, which the load treats as Twilio does (not
acknowledged: the fallback is tried) and delivers again until it gets a 200. Reported: the share
of webhooks sent during the outage that were acknowledged, and answered at all, within 2 s; how
long after recovery until every message acknowledged before it is counted; and, at the end,
0 lost and 0 double among everything acknowledged.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.settings import Settings
from tests.fault.conftest import (
    Attempt,
    BuildRuntime,
    Load,
    audit,
    done_sids,
    electorate,
    fault_settings,
    matrix,
    through,
    wait_drained,
)
from tests.fault.scale import n, report
from tests.support.chaos import Gateway, RedisServer, TcpProxy
from tests.support.processes import wait_until
from workers.runtime import Runtime

pytestmark = [pytest.mark.fault, pytest.mark.slow]

OUTAGE = n(5, 45)  # seconds
RATE = 20  # new webhooks a second, before, during and after
VOTERS = n(300, 2_000)
QUICK = 2.0  # "answered within 2 s"


def shares(attempts: list[Attempt]) -> dict[str, object]:
    quick = [a for a in attempts if a.finished - a.started <= QUICK]
    acked = [a for a in quick if a.status is not None and 200 <= a.status < 300]
    total = max(1, len(attempts))
    latencies = sorted(a.finished - a.started for a in attempts) or [0.0]
    return {
        "webhooks": len(attempts),
        "acked_within_2s": round(len(acked) / total, 4),
        "answered_within_2s": round(len(quick) / total, 4),
        "statuses": dict(Counter(str(a.status) for a in attempts)),
        "latency_p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
    }


def ride_out(
    rt: Runtime, settings: Settings, tmp_path: Path, name: str,
    down: Callable[[], None], up: Callable[[], None],
) -> None:  # fmt: skip
    """Load, an outage of OUTAGE seconds, recovery, drain; then report and check."""
    voters = electorate(rt, VOTERS)
    gateway = Gateway(settings, tmp_path / "logs")
    load = Load(gateway.url, voters, rate=RATE)
    gateway.start()
    try:
        load.start()
        assert wait_until(lambda: len(load.acked) >= RATE, 30), "no webhook acknowledged"
        time.sleep(2)
        started = time.monotonic()
        down()
        time.sleep(OUTAGE)
        up()
        restored = time.monotonic()
        assert wait_until(lambda: load.first_ack_after(restored) is not None, 60)
        before = {sid for sid, at in dict(load.acked_at).items() if at < restored}
        drain = None
        if wait_until(lambda: before <= done_sids(rt), 120, every=0.1):
            drain = time.monotonic() - restored
        time.sleep(3)
        unacked = load.stop()
        settled = wait_drained(rt, load, 120)
        gateway.revive()
    finally:
        gateway.stop()
    during = shares([a for a in load.window(started, restored) if a.kind != "forged"])
    result = audit(rt, load)
    failures = result.failures + unacked + (drain is None) + (settled is None)
    failures += len(gateway.unexpected)
    report(
        f"outage: {name} [{rt.engine.dialect.name}, ack after {settings.ack_after}]",
        n=OUTAGE,
        failures=failures,
        outage_s=OUTAGE,
        **during,
        drain_s=None if drain is None else round(drain, 2),
        acknowledged=result.acknowledged,
        votes=result.votes,
        lost=result.lost,
        double=result.double,
        missing_replies=result.missing_replies,
        unacked=unacked,
        unexpected_exits=gateway.unexpected,
    )
    assert failures == 0, f"see the FAULT line above and the logs in {gateway.logs}"


@pytest.mark.parametrize(("database_url", "ack_after"), matrix(), indirect=["database_url"])
def test_a_redis_outage_loses_nothing_acknowledged(
    database_url: str,
    ack_after: str,
    fault_redis: RedisServer,
    tmp_path: Path,
    runtime_for: BuildRuntime,
) -> None:
    settings = fault_settings(database_url, fault_redis, ack_after=ack_after)
    rt = runtime_for(settings)
    ride_out(rt, settings, tmp_path, "redis", fault_redis.kill, fault_redis.start)


@pytest.mark.parametrize("ack_after", ["database", "redis"])
def test_a_database_outage_loses_nothing_acknowledged(
    ack_after: str,
    postgres_only: str,
    proxy: TcpProxy,
    fault_redis: RedisServer,
    tmp_path: Path,
    runtime_for: BuildRuntime,
) -> None:
    # The gateway reaches PostgreSQL through the relay; this test's own reads go direct.
    settings = fault_settings(postgres_only, fault_redis, ack_after=ack_after)
    rt = runtime_for(settings)
    relayed = settings.with_(database_url=through(proxy, postgres_only))
    ride_out(rt, relayed, tmp_path, "database", proxy.cut, proxy.restore)
