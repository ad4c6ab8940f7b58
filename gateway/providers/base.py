"""The shape every provider adapter shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class InboundMessage:
    provider: str
    external_id: str  # the provider's own message ID: the key that makes redelivery a no-op
    sender: str  # E.164 when it parses as a phone number
    recipient: str
    body: str
    received_at: datetime
    channel: str = "sms"
    receipt: str | None = None  # set for a USSD vote, whose receipt the voter already saw


ERROR_CODE_CHARS = 16  # the width of outbound_messages.error_code


class BadRequestError(Exception):
    """The request is not a message we can accept; the text says why, for the 4xx body."""


def at_most(value: str, limit: int, field: str) -> str:
    """`value` unchanged, or BadRequestError naming the field that is too long."""
    if len(value) > limit:
        raise BadRequestError(f"{field} longer than {limit} characters")
    return value


class SendOutcome(StrEnum):
    SENT = "sent"  # the provider accepted it and gave us its ID
    RETRY = "retry"  # the provider did not take it (429, or no connection): safe to resend
    UNKNOWN = "unknown"  # the create may have gone through (5xx, timeout): never resend blindly
    OPTED_OUT = "opted_out"  # the recipient sent STOP: never retry
    FAILED = "failed"  # refused for good (bad number, ...)


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_sid: str | None = None
    error_code: str | None = None


@dataclass(frozen=True)
class UssdHop:
    """One request of a USSD session, whatever the aggregator's format.

    Africa's Talking sends every input so far (`text="1*3"`): `inputs` is that whole path and
    `whole_path` is True. Hubtel sends only the latest input: `inputs` holds just it. The menu
    position is kept server-side, so both styles drive the same state machine.
    """

    provider: str
    session_id: str
    phone: str  # E.164 when it parses as a phone number
    service_code: str
    inputs: tuple[str, ...]
    whole_path: bool
    starts: bool  # the first hop of the session (dialled, no input yet)
    ends: bool = False  # the aggregator says the session is over (Hubtel release, timeout)


@dataclass(frozen=True)
class Screen:
    """What the handset shows; `end` closes the session."""

    text: str
    end: bool
