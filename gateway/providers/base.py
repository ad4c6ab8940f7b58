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


class BadRequestError(Exception):
    """The request is not a message we can accept; the text says why, for the 4xx body."""


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
