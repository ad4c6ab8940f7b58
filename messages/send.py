"""Where a reply goes: the provider's API, or the local outbox when no provider is configured."""

from __future__ import annotations

from functools import cache

from twilio.rest import Client

from gateway.providers import twilio
from gateway.providers.base import SendOutcome, SendResult
from gateway.settings import Settings


def send(settings: Settings, recipient: str, body: str) -> SendResult:
    """Send one reply. Without Twilio credentials it stays in the outbox, labelled as such."""
    if not settings.sends_through_twilio:
        return SendResult(SendOutcome.SENT)  # status "outbox": the row itself is the outbox
    callback = (
        f"{settings.public_url.rstrip('/')}/sms/twilio/status" if settings.public_url else None
    )
    return twilio.send(
        _client(
            settings.twilio_account_sid or "",
            settings.twilio_auth_token or "",
            settings.twilio_api_base_url,
        ),
        recipient,
        body,
        settings.twilio_from,
        settings.twilio_messaging_service_sid,
        callback,
    )


@cache
def _client(account_sid: str, auth_token: str, api_base_url: str | None) -> Client:
    # One client (and one HTTP connection pool) per worker process.
    return twilio.make_client(account_sid, auth_token, api_base_url)
