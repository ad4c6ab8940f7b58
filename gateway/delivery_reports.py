"""Delivery reports: a reply's status only moves forward, even when its report comes early.

Reports arrive out of order and more than once, so a status is only ever moved forward
(`status_rank`). A report can also arrive before the reply it is about has its provider ID on
record: the reply job sends a few replies at once and records their IDs in one commit, and the
provider's first report (Twilio's `sent`) may beat that commit. Such a report would match no
row, so it is parked in Redis under its provider ID, and the reply job applies what is parked
right after its commit. The webhook looks for the row again after parking, so a commit that
lands in between is caught by one side or the other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from redis import Redis
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from gateway.models import OutboundRow, utcnow
from gateway.providers.twilio import status_rank

PARKED_PREFIX = "consulta:early-report:"
PARKED_SECONDS = 600  # a report for an ID that never appears (not ours) is dropped after this

Report = tuple[str, str | None]  # (status, error code)


def move(session: Session, provider_sid: str, status: str, error: str | None) -> int:
    """Move the reply with this provider ID forward to `status`; how many rows moved."""
    behind = [
        s for s in ("queued", "sending", "unknown", "sent") if status_rank(s) < status_rank(status)
    ]
    result = session.execute(
        update(OutboundRow)
        .where(OutboundRow.provider_sid == provider_sid, OutboundRow.status.in_(behind))
        .values(status=status, error_code=error, updated_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def known(session: Session, provider_sid: str) -> bool:
    return bool(session.scalar(select(exists().where(OutboundRow.provider_sid == provider_sid))))


def park(redis: Redis, provider_sid: str, status: str, error: str | None) -> None:
    key = PARKED_PREFIX + provider_sid
    with redis.pipeline(transaction=True) as pipe:
        pipe.rpush(key, json.dumps([status, error]))
        pipe.expire(key, PARKED_SECONDS)
        pipe.execute()


def take(redis: Redis, provider_sids: Iterable[str]) -> dict[str, list[Report]]:
    """The reports parked for these IDs, removed from Redis; one round trip."""
    sids = list(provider_sids)
    if not sids:
        return {}
    with redis.pipeline(transaction=True) as pipe:
        for sid in sids:
            pipe.lrange(PARKED_PREFIX + sid, 0, -1)
            pipe.delete(PARKED_PREFIX + sid)
        answers = pipe.execute()
    found: dict[str, list[Report]] = {}
    for sid, entries in zip(sids, answers[::2], strict=True):
        if entries:
            found[sid] = [(status, error) for status, error in map(json.loads, entries)]
    return found


def apply(session: Session, parked: dict[str, list[Report]]) -> None:
    """Apply parked reports, furthest last, so that each row ends at its furthest status."""
    for sid, reports in parked.items():
        for status, error in sorted(reports, key=lambda report: status_rank(report[0])):
            move(session, sid, status, error)
