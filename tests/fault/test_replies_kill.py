"""Kill the replies worker while it sends: no reply goes out twice, and few are stranded.

Real processes (`consulta web`, an intake and a replies `consulta worker`), our own Redis with
AOF `appendfsync always`, the database, and a stand-in for Twilio's API on a kept-alive
connection that takes LATENCY to answer each create, as the real one does over a network. Votes
flow; the replies worker is killed (SIGKILL) at a varied moment into one of its jobs, again and
again, and restarted as a supervisor would.

What must hold:
- **No reply is sent twice.** Each create Twilio took is for a different reply: the creates it
  received are no more than the replies recorded `sent` plus those left `sending`, every SID
  recorded is one it made, and no SID is recorded twice.
- **A kill strands only the slice its job had claimed**, left `sending`: at most about
  RECORD_EVERY of sends (`workers/replies.py: _slice_for`). The sweep marks them `unknown`
  after 240 s and never sends them (tests/integration/test_replies.py).
- **The rest of a killed job is still `queued`**, and sent once when enqueued again. The sweep
  does that 240 s on; this test enqueues every reply again at once, through the same
  `enqueue_replies`, and only the queued ones may go.
- Every acknowledged vote counted once, with one reply (the usual audit).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.models import OutboundRow
from gateway.settings import Settings
from tests.fault.conftest import (
    BuildRuntime,
    Load,
    audit,
    electorate,
    fault_settings,
    wait_drained,
)
from tests.fault.scale import n, report
from tests.support.chaos import Gateway, RedisServer
from tests.support.fake_twilio import FakeTwilio, settings_with_twilio
from workers.replies import RECORD_EVERY, enqueue_replies
from workers.runtime import Runtime

pytestmark = [pytest.mark.fault, pytest.mark.slow]

KILLS = n(4, 40)
VOTERS = n(400, 4_000)
RATE = 30  # new webhooks a second: more than one job's worth of replies between kills
LATENCY = 0.2  # seconds Twilio takes to answer a create
# What one kill may strand: the slice claimed at the pace of the last group (_slice_for).
SLICE = Settings().reply_sends_at_once * max(1, math.floor(RECORD_EVERY / LATENCY))


def statuses(rt: Runtime) -> Counter[str]:
    with rt.sessions() as session:
        return Counter(session.scalars(select(OutboundRow.status)))


def settled(rt: Runtime, seconds: float) -> bool:
    """Wait until the reply statuses stop changing for a few seconds: the jobs left have run."""
    last, still_since, deadline = statuses(rt), time.monotonic(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = statuses(rt)
        if now != last:
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= 3:
            return True
    return False


def reply_ids(rt: Runtime, status: str | None = None) -> list[int]:
    with rt.sessions() as session:
        query = select(OutboundRow.id).order_by(OutboundRow.id)
        if status:
            query = query.where(OutboundRow.status == status)
        return list(session.scalars(query))


def recorded_sids(rt: Runtime) -> list[str]:
    with rt.sessions() as session:
        query = select(OutboundRow.provider_sid).where(OutboundRow.provider_sid.is_not(None))
        return [sid for sid in session.scalars(query) if sid]


def test_killing_the_replies_worker_mid_send_sends_no_reply_twice(
    database_url: str, fault_redis: RedisServer, tmp_path: Path, runtime_for: BuildRuntime
) -> None:
    with FakeTwilio(keep_alive=True, latency=LATENCY) as twilio:
        settings = settings_with_twilio(fault_settings(database_url, fault_redis), twilio)
        rt = runtime_for(settings)
        gateway = Gateway(settings, tmp_path / "logs", ACK_AFTER="redis", **twilio.env())
        load = Load(gateway.url, electorate(rt, VOTERS), rate=RATE)
        kinds: Counter[str] = Counter()
        started = time.monotonic()
        gateway.start()
        try:
            load.start()
            with fault_redis.client() as redis:
                for _ in range(KILLS):
                    into = random.uniform(0.05, 1.5)  # noqa: S311 - land kills at varied moments
                    kinds[gateway.kill_replies_worker(redis, into)] += 1
                    gateway.revive()
                    time.sleep(random.uniform(0.5, 2.0))  # noqa: S311
            unacked = load.stop()
            drain = wait_drained(rt, load, 120)
            quiet = settled(rt, 180)
            left_queued = reply_ids(rt, "queued")
            enqueue_replies(rt, reply_ids(rt))  # every reply again: only the queued may go
            resent = settled(rt, 180) and not reply_ids(rt, "queued")
            gateway.revive()
        finally:
            gateway.stop()
        result = audit(rt, load)
        creates, made = len(twilio.requests), set(twilio.created)
    final = statuses(rt)
    sids = recorded_sids(rt)
    stranded = final["sending"]
    twice = max(0, creates - final["sent"] - stranded)  # creates no row accounts for
    unknown_sids = sum(1 for sid in sids if sid not in made)
    failures = (
        result.failures
        + unacked
        + twice
        + unknown_sids
        + (len(sids) - len(set(sids)))
        + max(0, stranded - SLICE * KILLS)
        + len(gateway.unexpected)
        + (drain is None)
        + (not quiet)
        + (not resent)
    )
    report(
        f"replies worker killed mid-send [{rt.engine.dialect.name}]",
        n=KILLS,
        failures=failures,
        kills=dict(kinds),
        votes=result.votes,
        acknowledged=result.acknowledged,
        creates=creates,
        replies=dict(final),
        sent_twice=twice,
        sids_not_made=unknown_sids,
        stranded_sending=stranded,
        stranded_bound=SLICE * KILLS,
        queued_after_kills=len(left_queued),
        lost=result.lost,
        double=result.double,
        missing_replies=result.missing_replies,
        unacked=unacked,
        unexpected_exits=gateway.unexpected,
        drained=drain is not None,
        seconds=round(time.monotonic() - started, 1),
    )
    assert failures == 0, f"see the FAULT line above and the logs in {gateway.logs}"
    assert kinds["replies worker"] >= KILLS // 2  # most kills landed inside a job
