"""Two intake batches that share keys wait for each other instead of deadlocking (PostgreSQL).

A message the provider re-sent can sit in two batches that two workers write at once; a person
who voted twice can be claimed by both. Each insert waits for the other transaction's
uncommitted row with the same key, so two batches taking their keys in different orders can each
wait for the other: PostgreSQL then kills one ("deadlock detected") and its whole job is redone.
Under the `last` policy a batch replaces votes by updating their participations, and an update
waits for another transaction's lock on the row just the same. Each case here makes that order
certain rather than left to timing: one transaction holds key A and is about to write key B; the
rival writes [B, A] meanwhile. Written in the order given, the rival holds B while waiting for A,
and the holder's B completes the cycle. Written in key order (a replacing batch locks every
participation it may replace up front, in key order), the rival waits at A holding nothing, the
holder finishes, and the rival then finds both written.

The last test is the audit log's head, which a batch must lock once, after its other writes.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gateway import audit, ballot_box
from gateway.audit import vote_entry
from gateway.models import InboundRow
from gateway.providers.base import InboundMessage
from tests.support.factories import seed
from voting.receipts import new_receipt
from workers import intake, runtime
from workers.runtime import Runtime

Write = Callable[[Session, list[Any]], int]  # writes these keys; how many were new


@dataclass(frozen=True)
class Case:
    name: str
    keys: Callable[[Runtime], tuple[Any, Any]]  # key A, key B
    write: Write
    rival_new: int = 0  # what the rival's write finds new once the holder has committed


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


def two_people_who_voted_under_last(rt: Runtime) -> tuple[Any, Any]:
    """Their phones, in the order of their people's keys; each has voted once already."""
    phones = {f"V1000000{n}": f"+58414123456{n}" for n in (1, 2)}
    people = [
        (national_id, "C1", date(1990, 1, 1), [phone]) for national_id, phone in phones.items()
    ]
    seeded = seed(rt.sessions, revote="last", people=people)
    with rt.sessions() as session, session.begin():
        assert judge(session, list(phones.values()), "VOTO 1") == ["confirmed", "confirmed"]
    by_key = sorted(phones, key=seeded.people.__getitem__)
    return phones[by_key[0]], phones[by_key[1]]


def judge(session: Session, phones: list[str], body: str) -> list[str]:
    """A batch of one new message from each phone, in this order, judged; their outcomes."""
    return judge_messages(session, [(phone, body) for phone in phones])


def judge_messages(session: Session, sent: list[tuple[str, str]]) -> list[str]:
    """A batch of these (phone, body) messages, in this order, judged; their outcomes."""
    now = datetime.now(UTC)
    batch = [
        InboundMessage("twilio", f"SM{uuid.uuid4().hex}", phone, "+582125550000", body,
                       now + timedelta(milliseconds=n))
        for n, (phone, body) in enumerate(sent)
    ]  # fmt: skip
    recorded = intake.record_batch(session, batch)
    intake.handle_batch(session, recorded, runtime.current().settings)
    outcomes = select(InboundRow.outcome).where(InboundRow.id.in_([m.id for m in recorded]))
    return list(session.scalars(outcomes.order_by(InboundRow.received_at)))


def replace(session: Session, phones: list[str]) -> int:
    return judge(session, phones, "VOTO 2").count("replaced")


def a_voter_under_last_and_a_phone_with_a_language(rt: Runtime) -> tuple[Any, Any]:
    """A re-vote from a person who voted, and a language choice from a phone that made one."""
    voter, chooser = "+584141234561", "+584241112233"
    seed(rt.sessions, revote="last", people=[("V10000001", "C1", date(1990, 1, 1), [voter])])
    with rt.sessions() as session, session.begin():
        assert judge_messages(session, [(voter, "VOTO 1"), (chooser, "IDIOMA EN")]) == [
            "confirmed", "language"
        ]  # fmt: skip
    return (voter, "VOTO 2"), (chooser, "IDIOMA ES")


def judge_counting_writes(session: Session, sent: list[tuple[str, str]]) -> int:
    return sum(o in ("replaced", "language") for o in judge_messages(session, sent))


CASES = [
    Case("a message re-sent into two batches is recorded once", re_sent_messages, record),
    Case("a person in two batches is claimed once", two_registered_people, claim),
    Case(
        "two batches replacing the same two people's votes under last",
        two_people_who_voted_under_last,
        replace,
        # Its message for A came after the holder's and replaces it; for B, the holder's came
        # later (it was written while the rival waited) and stands: "later" is received time.
        rival_new=1,
    ),
    Case(
        "a language choice and a re-vote under last in two batches, in opposite orders",
        a_voter_under_last_and_a_phone_with_a_language,
        judge_counting_writes,
        # The rival's language choice and its re-vote both came after the holder's.
        rival_new=2,
    ),
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
    assert rival.new == case.rival_new


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_receipt_check_in_a_batch_leaves_the_audit_log_to_the_batchs_end(rt: Runtime) -> None:
    """A RECIBO used to store the batch's votes on the spot, locking the audit log's head while
    the rest of the batch was judged. A rival batch that had claimed a person this one claims
    later then waited for that head while holding the claim this batch waited for."""
    numbers = {f"V1000000{n}": f"+58414123456{n}" for n in (1, 2)}
    people = [(person, "C1", date(1990, 1, 1), [phone]) for person, phone in numbers.items()]
    seeded = seed(rt.sessions, people=people)
    phones = {seeded.people[person]: phone for person, phone in numbers.items()}
    second = {"consultation_id": seeded.consultation_id, "person_id": max(phones),
              "receipt": "RCPT0002", "voted_at": NOW, "channel": "sms"}  # fmt: skip
    with rt.sessions() as holder, holder.begin():
        assert claim(holder, [second]) == 1
        rival = Rival(rt, lambda session, _: len(judge_with_a_receipt_check(session, phones)), [])
        rival.start()
        wait_until_one_waits_for_a_lock(rt)
        receipt = str(second["receipt"])
        audit.append_many(holder, second["consultation_id"], [vote_entry(receipt, "C1", 1, NOW)])
    rival.join(timeout=30)
    assert not rival.is_alive()
    assert rival.error is None, f"the rival failed: {rival.error}"
    with rt.sessions() as session:
        outcomes = session.scalars(select(InboundRow.outcome).order_by(InboundRow.received_at))
        assert list(outcomes) == ["confirmed", "receipt", "already_voted"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_with_a_re_vote_between_first_votes_claims_them_all_together(
    rt: Runtime,
) -> None:
    """Under `last`, a re-vote wrote the batch's deferred first-vote claims on the spot, so a
    batch [C, re-vote from D, B] claimed C, then B. Against a holder claiming B, then C, the
    rival held C while waiting for B. Claimed together, in key order, it waits at B first."""
    numbers = {f"V1000000{n}": f"+58414123456{n}" for n in (1, 2, 3)}
    people = [(person, "C1", date(1990, 1, 1), [phone]) for person, phone in numbers.items()]
    seeded = seed(rt.sessions, revote="last", people=people)
    by_key = [numbers[person] for person in sorted(numbers, key=seeded.people.__getitem__)]
    b, c, d = by_key  # B's key is below C's; D voted before
    with rt.sessions() as session, session.begin():
        assert judge_messages(session, [(d, "VOTO 1")]) == ["confirmed"]
    outcomes: list[str] = []

    def rival_batch(session: Session, _: list[Any]) -> int:
        outcomes[:] = judge_messages(session, [(c, "VOTO 2"), (d, "VOTO 2"), (b, "VOTO 2")])
        return len(outcomes)

    with rt.sessions() as holder, holder.begin():
        assert judge_messages(holder, [(b, "VOTO 1")]) == ["confirmed"]
        rival = Rival(rt, rival_batch, [])
        rival.start()
        wait_until_one_waits_for_a_lock(rt)
        assert judge_messages(holder, [(c, "VOTO 1")]) == ["confirmed"]
    rival.join(timeout=30)
    assert not rival.is_alive()
    assert rival.error is None, f"the rival failed: {rival.error}"
    # C's vote from the holder came later and stands; D's and B's from the rival came later.
    assert outcomes == ["already_voted", "replaced", "replaced"]


NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def judge_with_a_receipt_check(session: Session, phones: dict[int, str]) -> list[str]:
    """The first person votes, someone checks a receipt, then the second person votes."""
    first, second = (phones[person_id] for person_id in sorted(phones))
    check = ("+584269998877", f"RECIBO {new_receipt()}")
    return judge_messages(session, [(first, "VOTO 1"), check, (second, "VOTO 1")])
