"""The one explicit table of SMS senders: a reply leaves by the provider its message came in by.

Every sender has one signature, `(settings, to, body) -> SendResult`, and keeps the outbox
rule: without credentials for its provider the reply is not sent but kept, and the reply job
records it as "outbox" (a SENT result without a provider ID). Hubtel carries USSD only, so its
voters' replies, and those of any provider not listed, go through the default sender.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.providers import africastalking, hubtel, twilio
from gateway.providers.base import SendOutcome, SendResult
from gateway.settings import Settings

SmsSender = Callable[[Settings, str, str], SendResult]

KEPT_IN_OUTBOX = SendResult(SendOutcome.SENT)  # no provider ID: the row itself is the outbox


def send_twilio(settings: Settings, to: str, body: str) -> SendResult:
    """Through Twilio's REST API, asking for status callbacks when we know our public URL."""
    if not settings.sends_through_twilio:
        return KEPT_IN_OUTBOX
    return twilio.send(settings, to, body)


def send_africastalking(settings: Settings, to: str, body: str) -> SendResult:
    """Through Africa's Talking's messaging API; its delivery reports are set in its dashboard."""
    if not (settings.africastalking_username and settings.africastalking_api_key):
        return KEPT_IN_OUTBOX
    return africastalking.send(settings, to, body)


DEFAULT_SENDER: SmsSender = send_twilio

SMS_SENDERS: Mapping[str, SmsSender] = {
    twilio.NAME: send_twilio,
    africastalking.NAME: send_africastalking,
    hubtel.NAME: DEFAULT_SENDER,
}


def sms_sender(provider: str) -> SmsSender:
    """The sender for replies to a message that came in through `provider`."""
    return SMS_SENDERS.get(provider, DEFAULT_SENDER)
