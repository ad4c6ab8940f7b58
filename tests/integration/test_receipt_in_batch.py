"""A receipt check answered from the batch it arrives in, without writing the batch early.

A RECIBO can share a batch with the vote it asks about. The booth answers it from the votes it
holds in memory, then from the database; it does not store the batch's votes first, which would
lock the audit log's head in the middle of the batch (see test_lock_order.py for the deadlock
that caused).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from gateway.models import InboundRow
from gateway.providers.base import InboundMessage
from messages.catalogue import render
from tests.integration.test_sms_pipeline import replies_to
from tests.support.factories import seed
from voting.receipts import new_receipt
from workers import intake
from workers.runtime import Runtime

ANA = "+584141234567"
STRANGER = "+584269998877"
NAME = "Consulta de prueba"
_sids = itertools.count()


def message(sender: str, body: str, receipt: str | None = None) -> InboundMessage:
    """A message received a millisecond after the one before, so the batch keeps their order."""
    n = next(_sids)
    at = datetime.now(UTC) + timedelta(milliseconds=n)
    channel = "ussd" if receipt else "sms"
    return InboundMessage(
        "twilio", f"SM{n:032d}", sender, "+582125550000", body, at, channel, receipt
    )


@dataclass(frozen=True)
class Case:
    name: str
    revote: str
    bodies: list[tuple[str, str, bool]]  # sender, body, whether it is the USSD vote of RECEIPT
    outcomes: list[str]
    answer: str  # the catalogue key of the reply to the RECIBO


CASES = [
    Case(
        "a receipt of a vote cast earlier in the same batch is counted",
        "first",
        [(ANA, "VOTO 2 V12345678", True), (STRANGER, "RECIBO {receipt}", False)],
        ["confirmed", "receipt"],
        "receipt_counted",
    ),
    Case(
        "under last, a receipt of a vote replaced later in the same batch says replaced",
        "last",
        [
            (ANA, "VOTO 2 V12345678", True),
            (ANA, "VOTO 3", False),
            (STRANGER, "RECIBO {receipt}", False),
        ],
        ["confirmed", "replaced", "receipt"],
        "receipt_replaced",
    ),  # fmt: skip
    Case(
        "a receipt nobody was given is unknown, with votes in the batch",
        "first",
        [(ANA, "VOTO 2", False), (STRANGER, "RECIBO {receipt}", False)],
        ["confirmed", "receipt"],
        "receipt_unknown",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_receipt_check_is_answered_from_the_batch_it_shares_with_the_vote(
    rt: Runtime, case: Case
) -> None:
    seed(rt.sessions, revote=case.revote, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])
    receipt = new_receipt()
    batch = [
        message(sender, body.format(receipt=receipt), receipt if ussd else None)
        for sender, body, ussd in case.bodies
    ]
    with rt.sessions() as session, session.begin():
        recorded = intake.record_batch(session, batch)
        intake.handle_batch(session, recorded, rt.settings)
    with rt.sessions() as session:
        outcomes = session.scalars(select(InboundRow.outcome).order_by(InboundRow.received_at))
        assert list(outcomes) == case.outcomes
    assert replies_to(rt, STRANGER) == [render(case.answer, "es", receipt=receipt, name=NAME)]
