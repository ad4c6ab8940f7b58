"""A receipt check gets the same answer whether its vote is in the same batch or an earlier one.

A RECIBO can share a batch with the vote it asks about. The booth answers it from the votes it
holds in memory, then from the database. It used to store the batch's votes first, which locked
the audit log's head in the middle of the batch (test_lock_order.py has the deadlock that
caused); these cases pin the answers across that change.
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

Sent = list[tuple[str, str, bool]]  # sender, body, whether it is the USSD vote given RECEIPT
USSD_VOTE = (ANA, "VOTO 2 V12345678", True)
RE_VOTE = (ANA, "VOTO 3", False)
CHECK = (STRANGER, "RECIBO {receipt}", False)


def message(sender: str, body: str, receipt: str | None = None) -> InboundMessage:
    """A message received a millisecond after the one before, so the batches keep their order."""
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
    earlier: Sent  # a batch judged and committed before
    batch: Sent  # the batch with the RECIBO
    outcomes: list[str]  # of every message, the earlier batch's first
    answer: str  # the catalogue key of the reply to the RECIBO


CASES = [
    Case(
        "a receipt of a vote cast earlier in the same batch is counted",
        "first", [], [USSD_VOTE, CHECK], ["confirmed", "receipt"], "receipt_counted",
    ),
    Case(
        "under last, a receipt of a vote replaced in the same batch, before the check, says so",
        "last", [], [USSD_VOTE, RE_VOTE, CHECK],
        ["confirmed", "replaced", "receipt"], "receipt_replaced",
    ),
    Case(
        "under last, a receipt of an earlier batch's vote replaced in this one says so",
        "last", [USSD_VOTE], [RE_VOTE, CHECK],
        ["confirmed", "replaced", "receipt"], "receipt_replaced",
    ),
    Case(
        "a receipt of an earlier batch's vote is counted",
        "first", [USSD_VOTE], [RE_VOTE, CHECK],
        ["confirmed", "already_voted", "receipt"], "receipt_counted",
    ),
    Case(
        "a receipt nobody was given is unknown, with votes in the batch",
        "first", [], [(ANA, "VOTO 2", False), CHECK], ["confirmed", "receipt"], "receipt_unknown",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_receipt_check_is_answered_from_the_batch_it_shares_with_the_vote(
    rt: Runtime, case: Case
) -> None:
    seed(rt.sessions, revote=case.revote, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])
    receipt = new_receipt()
    for sent in (case.earlier, case.batch):
        batch = [
            message(sender, body.format(receipt=receipt), receipt if ussd else None)
            for sender, body, ussd in sent
        ]
        with rt.sessions() as session, session.begin():
            recorded = intake.record_batch(session, batch)
            intake.handle_batch(session, recorded, rt.settings)
    with rt.sessions() as session:
        outcomes = session.scalars(select(InboundRow.outcome).order_by(InboundRow.received_at))
        assert list(outcomes) == case.outcomes
    assert replies_to(rt, STRANGER) == [render(case.answer, "es", receipt=receipt, name=NAME)]
