"""Two intake batches that share keys wait for each other instead of deadlocking (PostgreSQL).

A message the provider re-sent can sit in two batches that two workers write at once; a person
who voted twice can be claimed by both. Each insert waits for the other transaction's
uncommitted row with the same key, so two batches taking their keys in different orders can each
wait for the other: PostgreSQL then kills one ("deadlock detected") and its whole job is redone.
Each case here makes that order certain rather than left to timing: one transaction holds key A
and is about to write key B; the rival writes [B, A] meanwhile. Written in the order given, the
rival holds B while waiting for A, and the holder's B completes the cycle. Written in key order,
the rival waits at A holding nothing, the holder finishes, and the rival then finds both written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gateway import ballot_box
from gateway.providers.base import InboundMessage
from tests.support.factories import seed
from workers import intake
from workers.runtime import Runtime

Write = Callable[[Session, list[Any]], int]  # writes these keys; how many were new


@dataclass(frozen=True)
class Case:
    name: str
    keys: Callable[[Runtime], tuple[Any, Any]]  # key A, key B
    write: Write


def re_sent_messages(_rt: Runtime) -> tuple[Any, Any]:
    now = datetime.now(UTC)
    return tuple(
        InboundMessage("twilio", sid, "+584141234567", "+582125550000", "VOTO 1", now)
        for sid in ("SM" + "a" * 32, "SM" + "b" * 32)
    )


def record(session: Session, messages: list[Any]) -> int:
    return len(intake.record_batch(session, messages))


def two_registered_people(rt: Runtime) -> tuple[Any, Any]:
    people = [(f"V1000000{n}", "C1", date(1990, 1, 1), [f"+58414123456{n}"]) for n in (1, 2)]
    seeded = seed(rt.sessions, people=people)
    return tuple(
        {"consultation_id": seeded.consultation_id, "person_id": person_id,
         "receipt": f"RCPT000{person_id}", "voted_at": datetime.now(UTC), "channel": "sms"}
        for person_id in sorted(seeded.people.values())
    )  # fmt: skip


def claim(session: Session, claims: list[Any]) -> int:
    return ballot_box.claim_first_votes(session, claims)


CASES = [
    Case("a message re-sent into two batches is recorded once", re_sent_messages, record),
    Case("a person in two batches is claimed once", two_registered_people, claim),
]


class Rival(threading.Thread):
    """Writes in a transaction of its own, in another thread, and commits."""

    def __init__(self, rt: Runtime, write: Write, keys: list[Any]) -> None:
        super().__init__(daemon=True)
        self.rt, self.write, self.keys = rt, write, keys
        self.new: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.rt.sessions() as session, session.begin():
                self.new = self.write(session, self.keys)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            self.error = error


def wait_until_one_waits_for_a_lock(rt: Runtime) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with rt.engine.connect() as connection:
            if connection.scalar(query):
                return
        time.sleep(0.02)
    raise AssertionError("the rival never waited for the holder's row")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_two_batches_taking_the_same_keys_in_opposite_orders_wait_and_do_not_deadlock(
    rt: Runtime, case: Case
) -> None:
    first, second = case.keys(rt)
    with rt.sessions() as holder, holder.begin():
        assert case.write(holder, [first]) == 1
        rival = Rival(rt, case.write, [second, first])
        rival.start()
        wait_until_one_waits_for_a_lock(rt)
        assert case.write(holder, [second]) == 1
    rival.join(timeout=30)
    assert not rival.is_alive()
    assert rival.error is None, f"the rival failed: {rival.error}"
    assert rival.new == 0
