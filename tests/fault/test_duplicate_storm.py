"""Duplicate storm: the same signed webhook, 50 copies at the same instant, round after round.

Through real gunicorn (2 workers x 8 threads) and a real `consulta worker`: each round is a
fresh MessageSid from a fresh voter, released to 50 threads by a barrier, each on its own
connection. Every copy must be answered 200, and each round must leave exactly one inbound row,
one vote, one participation and one reply.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.models import InboundRow, OutboundRow
from tests.conftest import AUTH_TOKEN
from tests.fault.conftest import (
    BuildRuntime,
    audit_counts,
    counted,
    electorate,
    fault_settings,
    matrix,
    post_webhook,
)
from tests.fault.scale import n, report
from tests.support.chaos import Gateway, RedisServer
from tests.support.processes import wait_until
from tests.support.twilio_requests import inbound_form
from workers.runtime import Runtime

pytestmark = [pytest.mark.fault, pytest.mark.slow]

ROUNDS = n(20, 1_000)
COPIES = 50


def storm(url: str, forms: list[dict[str, str]]) -> tuple[Counter[int | None], list[float]]:
    """Each form COPIES times at once; the statuses seen and each round's duration."""
    statuses: Counter[int | None] = Counter()
    durations: list[float] = []
    gate = threading.Barrier(COPIES)

    def send(form: dict[str, str]) -> int | None:
        gate.wait()
        return post_webhook(url, form, AUTH_TOKEN)

    with ThreadPoolExecutor(COPIES) as pool:
        for form in forms:
            started = time.monotonic()
            statuses.update(pool.map(send, [form] * COPIES))
            durations.append(time.monotonic() - started)
    return statuses, durations


def per_round(rt: Runtime, sids: list[str]) -> dict[str, int]:
    """Rounds whose MessageSid does not have exactly one row, done, confirmed, with one reply."""
    with rt.sessions() as session:
        rows = session.execute(
            select(InboundRow.external_id, InboundRow.status, InboundRow.outcome, func.count())
            .select_from(InboundRow)
            .join(OutboundRow, OutboundRow.inbound_id == InboundRow.id, isouter=True)
            .group_by(InboundRow.id)
        ).all()
    seen = Counter(sid for sid, *_ in rows)
    good = {sid for sid, status, outcome, replies in rows if (status, outcome, replies) == (
        "done", "confirmed", 1)}  # fmt: skip
    return {
        "missing": sum(1 for sid in sids if sid not in seen),
        "extra_rows": sum(count - 1 for count in seen.values() if count > 1),
        "not_done_once": sum(1 for sid in sids if sid in seen and sid not in good),
    }


@pytest.mark.parametrize(("database_url", "ack_after"), matrix(), indirect=["database_url"])
def test_the_same_webhook_50_times_at_once_gives_one_row_one_vote_one_reply_per_round(
    database_url: str,
    ack_after: str,
    fault_redis: RedisServer,
    tmp_path: Path,
    runtime_for: BuildRuntime,
) -> None:
    settings = fault_settings(database_url, fault_redis, ack_after=ack_after)
    rt = runtime_for(settings)
    forms = [inbound_form(phone, "VOTO 3") for phone in electorate(rt, ROUNDS)]
    gateway = Gateway(settings, tmp_path / "logs")
    gateway.start()
    try:
        statuses, durations = storm(gateway.url, forms)
        sids = {form["MessageSid"] for form in forms}
        drained = wait_until(lambda: counted(rt, sids), 120, every=0.2)
    finally:
        gateway.stop()
    counts = audit_counts(rt)
    rounds = per_round(rt, [form["MessageSid"] for form in forms])
    failures = (
        COPIES * ROUNDS
        - statuses[200]
        + sum(rounds.values())
        + abs(counts["votes"] - ROUNDS)
        + abs(counts["participations"] - ROUNDS)
        + abs(counts["replies"] - ROUNDS)
        + (not drained)
    )
    durations.sort()
    report(
        f"duplicate storm [{rt.engine.dialect.name}, ack after {ack_after}]",
        n=ROUNDS,
        failures=failures,
        copies=COPIES,
        deliveries=sum(statuses.values()),
        statuses={str(k): v for k, v in statuses.items()},
        inbound_rows=counts["inbound"],
        votes=counts["votes"],
        participations=counts["participations"],
        replies=counts["replies"],
        **rounds,
        round_p50_s=round(durations[len(durations) // 2], 3),
        round_max_s=round(durations[-1], 3),
    )
    assert failures == 0
