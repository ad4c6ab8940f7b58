"""Kill soak: SIGKILL one gateway process at a time, in rotation, while signed votes flow.

Real processes: gunicorn (`consulta web`, 2 workers x the default 8 threads), an intake and a
replies `consulta worker`, our own Redis with AOF `appendfsync always`, and the database. The
rotation:

- a gunicorn worker (the master forks a new one),
- the gunicorn master (its workers finish what they hold and exit; the web is restarted),
- the intake worker at a random moment (the "worker parent"),
- the intake worker while it runs a job: a SimpleWorker runs jobs in its own process, so that
  process is the "work horse" and there is no fork to kill separately,
- Redis (restarted on the same port and folder: the append-only file is reloaded).

Every kill is followed by the restart a supervisor would make. Then the load stops, the system
drains, and every acknowledged MessageSid must be done exactly once, each voter counted once,
one reply recorded for each message. Recovery is the time from the kill until the first webhook
sent after it is acknowledged, and until the first message is judged after it.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from tests.fault.conftest import (
    BuildRuntime,
    Load,
    audit,
    electorate,
    fault_settings,
    last_processed,
    matrix,
    orphaned_batches,
    percentile,
    wait_drained,
    wall_now,
)
from tests.fault.scale import n, report
from tests.support.chaos import Gateway, RedisServer
from workers.runtime import Runtime

pytestmark = [pytest.mark.fault, pytest.mark.slow]

KILLS = n(5, 100)
VOTES = n(300, 10_000)  # acknowledged votes at least; redeliveries and invalid ones come on top
VOTERS = n(250, 8_000)  # fewer voters than votes: some vote twice and get `already_voted`
RATE = n(20, 30)  # new webhooks a second
RECOVERY_LIMIT = 60.0  # seconds; a kill not recovered from by then is a failure
ROTATION = ["web worker", "worker parent", "redis", "web master", "work horse"]


def kill(kind: str, gateway: Gateway, redis: RedisServer) -> str:
    if kind == "web worker":
        return gateway.kill_web_worker()
    if kind == "web master":
        return gateway.kill_web_master()
    if kind == "worker parent":
        return gateway.kill_worker()
    if kind == "work horse":
        with redis.client() as client:
            return gateway.kill_work_horse(client)
    redis.kill()
    redis.start()  # same port, same --dir: the AOF is reloaded
    return "redis"


def recovered(
    rt: Runtime, load: Load, moment: float, wall: datetime, restarted: float
) -> tuple[float | None, float | None]:
    """Seconds from the kill until a webhook sent once the killed process was restarted is
    acknowledged, and until a message is judged after the kill. (Counting from the restart, not
    the kill, matters for the gunicorn master: its orphaned workers answer for a second or so.)"""
    ack = judged = None
    deadline = moment + RECOVERY_LIMIT
    while time.monotonic() < deadline and (ack is None or judged is None):
        if ack is None and (at := load.first_ack_after(restarted)) is not None:
            ack = at - moment
        if judged is None:
            latest = last_processed(rt)
            if latest is not None and latest > wall:
                judged = time.monotonic() - moment
        time.sleep(0.02)
    return ack, judged


@pytest.mark.parametrize(("database_url", "ack_after"), matrix(), indirect=["database_url"])
def test_kill_soak_loses_nothing_acknowledged_and_counts_nothing_twice(
    database_url: str,
    ack_after: str,
    fault_redis: RedisServer,
    tmp_path: Path,
    runtime_for: BuildRuntime,
) -> None:
    settings = fault_settings(database_url, fault_redis, ack_after=ack_after)
    rt = runtime_for(settings)
    gateway = Gateway(settings, tmp_path / "logs")
    load = Load(gateway.url, electorate(rt, VOTERS), rate=RATE)
    reloads = fault_redis.aof_reloads()
    gateway.start()
    started = time.monotonic()
    kinds: Counter[str] = Counter()
    ack_times: list[float] = []
    judged_times: list[float] = []
    unrecovered: list[str] = []
    slowest: dict[str, float] = {}  # per kind of kill, the longest time until both recovered
    try:
        load.start()
        now = time.monotonic()
        recovered(rt, load, now, wall_now(), now)  # warmed up: webhooks answered, messages judged
        soak = time.monotonic()
        for number in range(KILLS):
            moment, wall = time.monotonic(), wall_now()
            what = kill(ROTATION[number % len(ROTATION)], gateway, fault_redis)
            kinds[what] += 1
            ack, judged = recovered(rt, load, moment, wall, time.monotonic())
            ack_times += [ack] if ack is not None else []
            judged_times += [judged] if judged is not None else []
            both = max(ack or RECOVERY_LIMIT, judged or RECOVERY_LIMIT)
            slowest[what] = round(max(slowest.get(what, 0.0), both), 2)
            if ack is None or judged is None:
                unrecovered.append(f"{what} #{number}: ack={ack} judged={judged}")
            gateway.revive()
            time.sleep(random.uniform(0.1, 0.8))  # noqa: S311 - land kills at varied moments
        gap = load.longest_ack_gap(soak, time.monotonic())
        while load.votes_sent < VOTES / 0.95:  # a few are redeliveries or still in flight
            time.sleep(0.2)
        unacked = load.stop()
        gateway.revive()
        drain = wait_drained(rt, load, 120)
        gateway.revive()
        orphans = gateway.intake.orphans() + gateway.replies.orphans()
        stranded = orphaned_batches(rt)
    finally:
        gateway.stop()
    result = audit(rt, load)
    failures = (
        result.failures
        + unacked
        + len(unrecovered)
        + len(gateway.unexpected)
        + len(gateway.lingering)
        + (drain is None)
    )
    report(
        f"kill soak [{rt.engine.dialect.name}, ack after {ack_after}]",
        n=KILLS,
        failures=failures,
        kills=sum(kinds.values()),
        by_kind=dict(kinds),
        votes=result.votes,
        voters=result.voters,
        acknowledged=result.acknowledged,
        redelivered=result.redelivered,
        forged_refused=len(load.forged),
        lost=result.lost,
        double=result.double,
        missing_replies=result.missing_replies,
        wrong_outcomes=result.wrong_outcomes,
        unacked=unacked,
        unrecovered=unrecovered,
        unexpected_exits=gateway.unexpected,
        lingering=gateway.lingering,
        orphans_left=len(orphans),
        orphaned_inbox_batches=stranded,
        recovery_ack_p50_s=round(percentile(ack_times, 0.5), 3),
        recovery_ack_p99_s=round(percentile(ack_times, 0.99), 3),
        recovery_judged_p50_s=round(percentile(judged_times, 0.5), 3),
        recovery_judged_p99_s=round(percentile(judged_times, 0.99), 3),
        slowest_by_kind=slowest,
        longest_without_ack_s=round(gap, 2),
        drain_s=None if drain is None else round(drain, 2),
        aof_reloads=fault_redis.aof_reloads() - reloads,
        seconds=round(time.monotonic() - started, 1),
        outcomes=result.outcomes,
    )
    assert failures == 0, f"see the FAULT line above and the logs in {gateway.logs}"
    assert result.votes >= VOTES
