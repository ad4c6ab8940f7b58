"""Delivery reports that come before their reply's provider ID is on record are parked, not lost.

The reply job records a group's provider IDs in one commit after the group is sent; a report
can beat that commit. These tests park reports the way the webhook does and apply them the way
the job does, against the real database and Redis.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from gateway import delivery_reports
from gateway.models import OutboundRow
from tests.integration.test_replies import post_status, queue_reply, status_form
from workers.runtime import Runtime

SID = "SM" + "a" * 32


def give_sid(rt: Runtime, row_id: int, status: str = "sent") -> None:
    with rt.sessions() as session, session.begin():
        session.execute(
            update(OutboundRow)
            .where(OutboundRow.id == row_id)
            .values(provider_sid=SID, status=status)
        )


def status_of(rt: Runtime, row_id: int) -> str:
    with rt.sessions() as session:
        row = session.get(OutboundRow, row_id)
        assert row is not None
        return row.status


@pytest.mark.parametrize(
    ("parked", "recorded", "expected"),
    [
        pytest.param(["delivered"], "sent", "delivered", id="a delivery report moves a sent reply"),
        pytest.param(
            ["delivered", "sent"],
            "sent",
            "delivered",
            id="parked out of order, it ends furthest",
        ),
        pytest.param(["sent"], "delivered", "delivered", id="a report behind changes nothing"),
        pytest.param(["failed"], "sent", "failed", id="a failure report is applied"),
    ],
)
def test_parked_reports_are_applied_once_the_id_is_recorded(
    rt: Runtime, parked: list[str], recorded: str, expected: str
) -> None:
    row_id = queue_reply(rt)
    for status in parked:
        delivery_reports.park(rt.redis, SID, status, None)
    give_sid(rt, row_id, recorded)
    taken = delivery_reports.take(rt.redis, [SID])
    with rt.sessions() as session, session.begin():
        delivery_reports.apply(session, taken)
    assert status_of(rt, row_id) == expected
    assert delivery_reports.take(rt.redis, [SID]) == {}  # taken once


def test_a_parked_report_expires_and_one_for_another_id_is_not_taken(rt: Runtime) -> None:
    delivery_reports.park(rt.redis, SID, "delivered", None)
    assert 0 < rt.redis.ttl(delivery_reports.PARKED_PREFIX + SID) <= delivery_reports.PARKED_SECONDS
    assert delivery_reports.take(rt.redis, ["SM" + "b" * 32]) == {}
    assert delivery_reports.take(rt.redis, []) == {}


def test_a_report_for_a_recorded_reply_is_applied_at_once_and_not_parked(
    rt: Runtime, client: FlaskClient
) -> None:
    row_id = queue_reply(rt)
    give_sid(rt, row_id)
    assert post_status(client, status_form(SID, "delivered")) == 204
    assert status_of(rt, row_id) == "delivered"
    assert delivery_reports.take(rt.redis, [SID]) == {}


def test_a_report_that_matches_no_reply_yet_is_parked_by_the_webhook(
    rt: Runtime, client: FlaskClient
) -> None:
    assert post_status(client, status_form(SID, "delivered")) == 204
    assert delivery_reports.take(rt.redis, [SID]) == {SID: [("delivered", None)]}
