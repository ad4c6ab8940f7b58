"""Every channel's way in: record the message durably, then hand its ID to the queue.

The 2xx a provider gets means the message is committed. Handing it to Redis comes after and may
fail; the sweep then finds it in the database, which is the record.
"""

from __future__ import annotations

import logging

from flask import abort
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from gateway import delivery_reports, flood, inbox
from gateway.app import WebState
from gateway.models import InboundRow, utcnow
from gateway.providers.base import InboundMessage
from gateway.queues import INTAKE_LIST
from gateway.sql import insert_ignoring_conflicts_on

log = logging.getLogger(__name__)


def accept(state: WebState, message: InboundMessage) -> None:
    """Admit the message past flood control and make it safe before the caller answers 2xx.

    A message refused as a flood is dropped here, counted and logged (gateway/flood.py); the
    caller still answers 2xx, or the provider would send it again.
    ACK_AFTER=redis: one script admits it and puts it in the Redis inbox, a single round trip.
      If Redis refuses, it goes straight into the database (flood control is off meanwhile).
    ACK_AFTER=database: admitted, committed to the database, then its ID handed to the queue.
    If neither store takes it the request ends in a 503 and the provider retries; a message not
    stored gives back what it counted, so that its retries are not taken for a flood.
    """
    settings, channel = state.settings, flood.Channel.SMS
    if settings.ack_after == "redis":
        entry = (inbox.INBOX, inbox.encode(message))
        try:
            flood.admit(state.redis, settings, channel, message.sender, push=entry)
            return
        except RedisError:
            log.warning("redis unavailable: message written to the database instead")
            _record_and_hand_over(state, message)
            return
    if not flood.admit(state.redis, settings, channel, message.sender):
        return
    try:
        _record_and_hand_over(state, message)
    except HTTPException:  # not stored (a 503): the retry must not count as a flood
        flood.refund(state.redis, channel, message.sender)
        raise


def _record_and_hand_over(state: WebState, message: InboundMessage) -> None:
    inbound_id = record_inbound(state, message)
    if inbound_id is not None:
        hand_to_queue(state, inbound_id)


def record_inbound(state: WebState, message: InboundMessage) -> int | None:
    """Store the message durably before we acknowledge it; None if we already had it."""
    statement = (
        insert_ignoring_conflicts_on(state.dialect, InboundRow)
        .values(
            provider=message.provider,
            external_id=message.external_id,
            channel=message.channel,
            sender=message.sender,
            recipient=message.recipient,
            body=message.body,
            receipt=message.receipt,
            received_at=message.received_at,
            enqueued_at=utcnow(),  # when we took it: the sweep measures from here
            status="pending",
        )
        .returning(InboundRow.id)
    )
    try:
        with state.sessions() as session, session.begin():
            inbound_id: int | None = session.execute(statement).scalar()
            return inbound_id
    except OperationalError:
        log.exception("database unavailable: message not acknowledged")
        abort(503, "the database is unavailable; the provider should retry or fall back")


def hand_to_queue(state: WebState, inbound_id: int) -> None:
    """After the commit. If Redis is down the message is safe: the sweep will find it."""
    try:
        state.redis.rpush(INTAKE_LIST, inbound_id)
    except RedisError:
        log.warning("redis unavailable: inbound %s left for the sweep", inbound_id)


def move_reply_status(state: WebState, provider_sid: str, status: str, error: str | None) -> None:
    """Move a reply's status forward; a report that came before its reply's ID is parked.

    See gateway/delivery_reports.py for why the row is looked for again after parking.
    """
    with state.sessions() as session, session.begin():
        if delivery_reports.move(session, provider_sid, status, error):
            return
        if delivery_reports.known(session, provider_sid):
            # Behind the row's status (nothing to do), or its reply job committed just now.
            delivery_reports.move(session, provider_sid, status, error)
            return
    try:
        delivery_reports.park(state.redis, provider_sid, status, error)
    except RedisError:
        log.warning("redis unavailable: an early delivery report is lost")
        return
    with state.sessions() as session, session.begin():
        if delivery_reports.known(session, provider_sid):
            delivery_reports.move(session, provider_sid, status, error)
