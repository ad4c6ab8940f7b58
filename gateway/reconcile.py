"""Reconciliation: Twilio's own log of the messages it received, against the gateway's.

A webhook can fail for good: our 5xx for the 15 s Twilio allows, a fallback URL that failed too,
a network cut between Twilio and us. Twilio still lists the message. This module reads that list
for our numbers and a window of time, compares it by MessageSid with `inbound_messages`, and
records each missing message exactly as the webhook would have: the same parser, the same
`INSERT ... ON CONFLICT DO NOTHING`, the same hand-off to the queue. So a webhook that arrives
late, or a second reconciliation, changes nothing.

Times. Twilio filters by `date_sent` (for an inbound message, when it called our webhook); the
gateway stores when it took the message. Clocks and webhook retries put seconds between the two,
so both sides are read MARGIN wider than the window, and a message is missing only when no row
at all has its SID. A recorded message keeps Twilio's time as its receive time: the window rules
judge when the voter's text arrived, not when we found it.

Not everything absent was lost. The webhook answers 200 to a message over its sender's flood
limit and stores nothing (gateway/flood.py); those limits are replayed here on Twilio's times
and such messages are listed apart, never recorded. With ACK_AFTER=redis an acknowledged message
may still sit in the Redis inbox for a moment: recording it here first is harmless, as the
inbox's own write then meets the unique key.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import requests
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.response import Response
from twilio.rest import Client

from gateway.app import WebState
from gateway.db import make_lookups
from gateway.inbound import hand_to_queue, record_inbound
from gateway.models import InboundRow
from gateway.providers import twilio
from gateway.providers.base import BadRequestError
from gateway.settings import Settings

MARGIN = timedelta(minutes=10)
PAGE_SIZE = 1000  # Twilio's largest page: fewest round trips
SID_CHUNK = 500  # SIDs per `IN (...)`, well inside every driver's parameter limit
ISO_EXAMPLE = "2026-03-08T07:00"


class ProviderUnavailable(Exception):  # noqa: N818 - reads better than ...Error at call sites
    """Twilio's message list could not be read; the text says why, without credentials."""


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    def holds(self, at: datetime) -> bool:
        return self.since <= at < self.until

    def widened(self) -> Window:
        return Window(self.since - MARGIN, self.until + MARGIN)


@dataclass(frozen=True)
class ProviderMessage:
    """One inbound message in Twilio's log."""

    sid: str
    sender: str
    recipient: str
    body: str
    sent_at: datetime


@dataclass(frozen=True)
class GatewayMessage:
    """One inbound Twilio message in `inbound_messages`."""

    sid: str
    sender: str
    received_at: datetime


@dataclass
class Comparison:
    provider_count: int  # inbound messages Twilio lists in the window
    gateway_count: int  # Twilio messages the gateway stored in the window
    missing: list[ProviderMessage]  # Twilio has them; no row has their SID
    unknown: list[GatewayMessage]  # stored, but not in Twilio's list (even with the margin)
    flooded: list[ProviderMessage] = field(default_factory=list)  # not stored: over a flood limit


@dataclass
class Recording:
    recorded: list[str] = field(default_factory=list)  # SIDs stored and queued now
    arrived: list[str] = field(default_factory=list)  # their webhook came in meanwhile
    refused: list[tuple[str, str]] = field(default_factory=list)  # (SID, why), as the webhook


def moment(text: str, zone: ZoneInfo) -> datetime:
    """An ISO date and time; one without an offset is read in `zone`."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date and time, such as {ISO_EXAMPLE}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def window(since: datetime, until: datetime | None, now: datetime) -> Window:
    """The window to reconcile, refused when it is empty or starts in the future."""
    if since > now:
        raise ValueError("--since is in the future: there is nothing to reconcile yet")
    until = until or now
    if since >= until:
        raise ValueError("--since must be earlier than --until")
    return Window(since.astimezone(UTC), until.astimezone(UTC))


# --- the two sides ------------------------------------------------------------------------------


def provider_inbound(client: Client, numbers: Iterable[str], span: Window) -> list[ProviderMessage]:
    """Every inbound message Twilio lists to `numbers` within the widened window."""
    wide = span.widened()
    found: dict[str, ProviderMessage] = {}
    try:
        for number in numbers:
            for message in _listed(client, number, wide):
                found[message.sid] = message
    except (TwilioException, requests.RequestException) as error:
        raise ProviderUnavailable(
            f"Twilio's message list could not be read: {_why(error)}"
        ) from None
    return sorted(found.values(), key=lambda m: (m.sent_at, m.sid))


def _why(error: Exception) -> str:
    """The gist: the SDK's own text is a multi-line, coloured report on a terminal."""
    if isinstance(error, TwilioRestException):
        return f"HTTP {error.status}: {error.msg}"
    response = error.args[1] if len(error.args) > 1 else None  # a page the SDK could not read
    if isinstance(response, Response):
        return f"HTTP {response.status_code}: {_message_in(response.text)}"
    return str(error) or type(error).__name__


def _message_in(text: str) -> str:
    try:
        return str(json.loads(text).get("message") or "no message")
    except (ValueError, AttributeError):
        return "no message"


def _listed(client: Client, number: str, wide: Window) -> Iterator[ProviderMessage]:
    # The SDK writes a datetime's own wall time followed by "Z", so only UTC times are right.
    listed = client.messages.stream(
        to=number, date_sent_after=wide.since, date_sent_before=wide.until, page_size=PAGE_SIZE
    )
    for item in listed:
        at = item.date_sent or item.date_created
        # Filtered here too: Twilio documents DateSent by the day, so it may return more.
        if item.direction == "inbound" and item.sid and at and wide.holds(at):
            yield ProviderMessage(item.sid, item.from_ or "", item.to or "", item.body or "", at)


def gateway_inbound(
    sessions: sessionmaker[Session], numbers: Iterable[str], span: Window
) -> list[GatewayMessage]:
    """The Twilio messages to `numbers` that the gateway stored within the widened window."""
    wide = span.widened()
    query = select(InboundRow.external_id, InboundRow.sender, InboundRow.received_at).where(
        InboundRow.provider == twilio.NAME,
        InboundRow.recipient.in_(list(numbers)),
        InboundRow.received_at >= wide.since,
        InboundRow.received_at < wide.until,
    )
    with sessions() as session:
        return [GatewayMessage(*row) for row in session.execute(query)]


def stored_sids(sessions: sessionmaker[Session], sids: list[str]) -> set[str]:
    """Which of these Twilio SIDs have a row, whatever its time or recipient."""
    stored: set[str] = set()
    with sessions() as session:
        for start in range(0, len(sids), SID_CHUNK):
            chunk = sids[start : start + SID_CHUNK]
            stored.update(
                session.scalars(
                    select(InboundRow.external_id).where(
                        InboundRow.provider == twilio.NAME, InboundRow.external_id.in_(chunk)
                    )
                )
            )
    return stored


def compare(
    provider: list[ProviderMessage],
    gateway: list[GatewayMessage],
    stored: set[str],
    span: Window,
    refused: set[str],
) -> Comparison:
    """What each side has that the other lacks; the counts are for the window itself.

    `refused`: the SIDs the webhook's flood control turns away (`flooded`); never recorded.
    """
    listed = {message.sid for message in provider}
    absent = [m for m in provider if span.holds(m.sent_at) and m.sid not in stored]
    return Comparison(
        provider_count=sum(span.holds(m.sent_at) for m in provider),
        gateway_count=sum(span.holds(m.received_at) for m in gateway),
        missing=[m for m in absent if m.sid not in refused],
        flooded=[m for m in absent if m.sid in refused],
        unknown=sorted(
            (m for m in gateway if span.holds(m.received_at) and m.sid not in listed),
            key=lambda m: (m.received_at, m.sid),
        ),
    )


def flooded(provider: list[ProviderMessage], per_minute: int, per_hour: int) -> set[str]:
    """The SIDs the webhook's per-sender limits refuse (gateway/flood.py), replayed on Twilio's
    times: fixed windows from a sender's first message, every message counted, 0 for no limit.

    The overall per-second limit is not replayed: it shields the web tier during a surge, and the
    votes it turned away then are just what a reconciliation should bring back.
    """
    by_sender: dict[str, list[ProviderMessage]] = defaultdict(list)
    for message in sorted(provider, key=lambda m: (m.sent_at, m.sid)):
        by_sender[message.sender].append(message)
    refused: set[str] = set()
    for messages in by_sender.values():
        minute, hour = _FixedWindow(timedelta(minutes=1)), _FixedWindow(timedelta(hours=1))
        for message in messages:
            in_minute, in_hour = minute.bump(message.sent_at), hour.bump(message.sent_at)
            if 0 < per_minute < in_minute or 0 < per_hour < in_hour:
                refused.add(message.sid)
    return refused


@dataclass
class _FixedWindow:
    """Redis's INCR-then-PEXPIRE counter: the window starts at the first message it counts."""

    length: timedelta
    start: datetime | None = None
    count: int = 0

    def bump(self, at: datetime) -> int:
        if self.start is None or at >= self.start + self.length:
            self.start, self.count = at, 0
        self.count += 1
        return self.count


# --- recording what is missing ------------------------------------------------------------------


def web_state(settings: Settings, sessions: sessionmaker[Session], redis: Redis) -> WebState:
    """What the webhook's own functions need, built around the command's sessions."""
    engine = sessions.kw["bind"]
    return WebState(settings, engine, sessions, redis, engine.dialect.name, make_lookups(engine))


def record_missing(state: WebState, missing: Iterable[ProviderMessage]) -> Recording:
    """Store and queue each message as its webhook would have; a second run finds none."""
    outcome = Recording()
    for message in missing:
        # The webhook's own parser: what it would have refused is refused here, for the same reason.
        form = {"MessageSid": message.sid, "From": message.sender, "To": message.recipient}
        form["Body"] = message.body
        try:
            inbound = twilio.parse_inbound(form, message.sent_at, state.settings.default_region)
        except BadRequestError as error:
            outcome.refused.append((message.sid, str(error)))
            continue
        inbound_id = record_inbound(state, inbound)
        if inbound_id is None:
            outcome.arrived.append(message.sid)
            continue
        hand_to_queue(state, inbound_id)
        outcome.recorded.append(message.sid)
    return outcome
