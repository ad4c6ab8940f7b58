"""A batch claims its first votes in one statement, and still loses a race correctly.

The intake job judges a batch as if each of its first votes will be the person's first, then
claims them all in one `INSERT … ON CONFLICT DO NOTHING`. These tests count the statements, and
put a rival transaction's vote in between the judging and the claim: the batch must then be
judged again from its savepoint, and the person answered "already voted".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow
from tests.integration.test_faults import count, record_directly
from tests.support.factories import seed
from workers import intake
from workers.runtime import Runtime

ANA, BETO, CARLA = "+584141234567", "+584141234568", "+584141234569"
PEOPLE = [
    ("V10000001", "C1", date(1990, 1, 1), [ANA]),
    ("V10000002", "C1", date(1990, 1, 1), [BETO]),
    ("V10000003", "C1", date(1990, 1, 1), [CARLA]),
]
CLAIM = "INSERT INTO participations"


@contextmanager
def statements_seen(rt: Runtime) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(rt.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(rt.engine, "before_cursor_execute", note)


@contextmanager
def rival_counts_first(rt: Runtime, times: int = 1) -> Iterator[list[int]]:
    """Just before each of the batch's first `times` claim statements, another transaction
    counts the first person that statement claims."""
    rivals: list[int] = []
    inside: list[bool] = []  # the rival's own insert passes through here too

    def interpose(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if inside or len(rivals) >= times or not statement.startswith(CLAIM):
            return
        if not isinstance(parameters, dict):
            return
        consultation, person = first_claim(parameters)
        rivals.append(person)
        inside.append(True)
        with rt.sessions() as rival, rival.begin():
            rival.execute(
                insert(ParticipationRow).values(
                    consultation_id=consultation, person_id=person,
                    receipt=f"RIVAL000{len(rivals)}", voted_at=datetime.now(UTC), channel="ussd",
                )
            )  # fmt: skip
        inside.clear()

    event.listen(rt.engine, "before_cursor_execute", interpose)
    try:
        yield rivals
    finally:
        event.remove(rt.engine, "before_cursor_execute", interpose)


def first_claim(parameters: dict[str, Any]) -> tuple[int, int]:
    """(consultation, person) of the first claim a claim statement's parameters carry.

    On PostgreSQL the claims go as one array per column, in the booth's key order
    (consultation_id, person_id, …); on SQLite as numbered parameters of a multi-row VALUES.
    """
    if "column_0" in parameters:
        return parameters["column_0"][0], parameters["column_1"][0]
    person_key = sorted(k for k in parameters if k.startswith("person_id"))[0]
    return parameters[person_key.replace("person_id", "consultation_id")], parameters[person_key]


def outcomes_by_sender(rt: Runtime) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    with rt.sessions() as session:
        for sender, outcome in session.execute(select(InboundRow.sender, InboundRow.outcome)):
            found.setdefault(sender, []).append(outcome)
    return found


def three_first_votes_beside_a_rival(rt: Runtime) -> list[int]:
    """Ana, Beto and Carla's first votes, recorded; on PostgreSQL only, where a rival can commit
    in the middle of a batch."""
    if rt.engine.dialect.name == "sqlite":
        pytest.skip("SQLite takes one writer at a time: no rival can commit mid-batch")
    seed(rt.sessions, people=PEOPLE)
    return record_directly(rt, [(ANA, "VOTO 1"), (BETO, "VOTO 2"), (CARLA, "VOTO 3")])


def test_a_batch_of_three_first_votes_claims_them_in_one_statement(rt: Runtime) -> None:
    seed(rt.sessions, people=PEOPLE)
    ids = record_directly(rt, [(ANA, "VOTO 1"), (BETO, "VOTO 2"), (CARLA, "VOTO 3")])
    with statements_seen(rt) as seen:
        assert intake.process_inbound(ids)["processed"] == 3
    assert sum(s.startswith(CLAIM) for s in seen) == 1
    assert count(rt, ParticipationRow) == count(rt, VoteRow) == 3


def test_a_voter_counted_by_another_transaction_meanwhile_is_answered_already_voted(
    rt: Runtime,
) -> None:
    ids = three_first_votes_beside_a_rival(rt)
    with rival_counts_first(rt) as rivals, statements_seen(rt) as seen:
        assert intake.process_inbound(ids)["processed"] == 3
    assert len(rivals) == 1
    # Judged again with the two claims left together, not one at a time (which could deadlock
    # against a batch claiming the same people in another order). The rival's insert is seen too.
    assert sum(s.startswith(CLAIM) for s in seen) - len(rivals) == 2
    outcomes = outcomes_by_sender(rt)
    assert sorted(o for sender in outcomes for o in outcomes[sender]) == [
        "already_voted", "confirmed", "confirmed",
    ]  # fmt: skip
    # The rival's vote stands alone for its person: no vote row of ours, one reply each.
    assert count(rt, ParticipationRow) == 3
    assert count(rt, VoteRow) == 2
    assert count(rt, OutboundRow) == 3
    with rt.sessions() as session:
        receipts = set(session.scalars(select(ParticipationRow.receipt)))
    assert "RIVAL0001" in receipts


def test_a_batch_that_loses_a_claim_at_every_attempt_ends_judged_one_claim_at_a_time(
    rt: Runtime,
) -> None:
    ids = three_first_votes_beside_a_rival(rt)
    with rival_counts_first(rt, times=intake.TOGETHER_ATTEMPTS) as rivals:
        assert intake.process_inbound(ids)["processed"] == 3
    assert len(set(rivals)) == intake.TOGETHER_ATTEMPTS == 3  # a new person lost each time
    outcomes = outcomes_by_sender(rt)
    assert sorted(o for sender in outcomes for o in outcomes[sender]) == ["already_voted"] * 3
    assert count(rt, ParticipationRow) == 3
    assert count(rt, VoteRow) == 0
    assert count(rt, OutboundRow) == 3
