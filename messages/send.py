"""Where a reply goes: its provider's API, or the local outbox when that provider is not set up."""

from __future__ import annotations

from gateway.providers import registry
from gateway.providers.base import SendResult
from gateway.settings import Settings


def send(settings: Settings, recipient: str, body: str) -> SendResult:
    """Send one reply through the default provider (Twilio), or keep it in the outbox."""
    return registry.DEFAULT_SENDER(settings, recipient, body)


def send_via(settings: Settings, provider: str, recipient: str, body: str) -> SendResult:
    """Send one reply through the provider its message came in by, as the registry's table says."""
    return registry.sms_sender(provider)(settings, recipient, body)
