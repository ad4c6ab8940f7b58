"""Africa's Talking: inbound SMS, USSD callbacks, delivery reports, and sends over its HTTP API.

None of its callbacks is signed: the blueprint guards them with a secret path segment and an
allow-list of source networks (`gateway.providers.network`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.imports.e164 import reader_for
from gateway.providers import keepalive
from gateway.providers.base import (
    ERROR_CODE_CHARS,
    BadRequestError,
    InboundMessage,
    Screen,
    SendOutcome,
    SendResult,
    UssdHop,
    at_most,
)
from gateway.settings import Settings

NAME = "africastalking"
ACKNOWLEDGEMENT = ""  # any 2xx stops AT's retries; the reply goes out later through the API
ACKNOWLEDGEMENT_TYPE = "text/plain"
USSD_TYPE = "text/plain; charset=utf-8"
MAX_BODY_CHARS = 1600  # a long concatenated SMS; anything bigger is not a vote
MAX_ID_CHARS = 64  # the width of inbound_messages.external_id
MAX_USSD_TEXT_CHARS = 200  # a whole session's path; a real one is a few dozen keys
MAX_SESSION_ID_CHARS = 128  # it keys the menu position in Redis
API_BASE_URL = "https://api.africastalking.com"
SANDBOX_API_BASE_URL = "https://api.sandbox.africastalking.com"
TIMEOUT = (5.0, 10.0)  # connect, read: a reply job must not wait on AT for ever
SENT_CODES = frozenset({100, 101, 102})  # Processed, Sent, Queued
BLACKLISTED = 406  # UserInBlacklist: the recipient opted out of our sender

# AT's delivery-report statuses onto ours. Statuses only move forward: see twilio.status_rank.
STATUS_MAPPING = {
    "Sent": "sent",
    "Submitted": "sent",
    "Buffered": "sent",
    "Success": "delivered",
    "Rejected": "failed",
    "Failed": "failed",
}


def parse_inbound(form: Mapping[str, str], received_at: datetime, region: str) -> InboundMessage:
    """The message in an inbound SMS callback, or BadRequestError naming what is wrong."""
    _require(form, ("id", "from", "to", "date"), "text")
    message_id, text = form["id"], form["text"]
    at_most(message_id, MAX_ID_CHARS, "id")
    at_most(text, MAX_BODY_CHARS, "text")
    return InboundMessage(
        provider=NAME,
        external_id=message_id,
        sender=_phone(form["from"], region),
        recipient=_phone(form["to"], region),
        body=text,
        received_at=provider_time(form["date"], received_at),
    )


# Africa's Talking retries an SMS for about ten minutes: its own receive time (`date`) is when
# the voter's message reached the provider, and the window is judged on that. A date further
# back than this, or in the future, is not believed.
MAX_PROVIDER_LAG = timedelta(minutes=15)


def provider_time(raw: str, now: datetime) -> datetime:
    """AT's `date` (e.g. `2026-11-29 23:58:12` or ISO, UTC) if plausible, else our own clock."""
    try:
        stamp = datetime.fromisoformat(raw.strip().replace(" ", "T"))
    except ValueError:
        return now
    stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
    plausible = now - MAX_PROVIDER_LAG <= stamp <= now + timedelta(seconds=5)
    return stamp if plausible else now


def parse_ussd(form: Mapping[str, str], region: str) -> UssdHop:
    """One USSD hop; `text` is the whole path so far, inputs joined by `*`."""
    _require(form, ("sessionId", "phoneNumber", "serviceCode"), "text")
    text, session_id = form["text"], form["sessionId"]
    at_most(text, MAX_USSD_TEXT_CHARS, "text")
    at_most(session_id, MAX_SESSION_ID_CHARS, "sessionId")
    return UssdHop(
        provider=NAME,
        session_id=session_id,
        phone=_phone(form["phoneNumber"], region),
        service_code=form["serviceCode"],
        inputs=tuple(text.split("*")) if text else (),
        whole_path=True,
        starts=text == "",
    )


def render_ussd(screen: Screen) -> tuple[str, str]:
    """The reply body and its content type: `CON` waits for input, `END` closes the session."""
    return ("END " if screen.end else "CON ") + screen.text, USSD_TYPE


def parse_status(form: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(AT message ID, our status, failure reason) from a delivery report."""
    message_id, status = form.get("id", ""), form.get("status", "")
    if not message_id or status not in STATUS_MAPPING:
        raise BadRequestError("missing id or unknown status")
    reason = form.get("failureReason") or None
    return message_id, STATUS_MAPPING[status], reason[:ERROR_CODE_CHARS] if reason else None


def send(settings: Settings, to: str, body: str) -> SendResult:
    """One POST to the messaging API. It is not idempotent: only a sure refusal is retryable."""
    form = {"username": settings.africastalking_username or "", "to": to, "message": body}
    if settings.africastalking_from:
        form["from"] = settings.africastalking_from
    headers = {
        "apiKey": settings.africastalking_api_key or "",
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    try:
        answer = keepalive.post_form(messaging_url(settings), form, headers, TIMEOUT)
    except keepalive.NoAnswer as error:  # RETRY if nothing was sent, else UNKNOWN
        return error.result()
    return _outcome(answer)


def messaging_url(settings: Settings) -> str:
    """The bulk SMS endpoint; the sandbox app has its own host."""
    sandbox = settings.africastalking_username == "sandbox"
    base = settings.africastalking_api_base_url or (SANDBOX_API_BASE_URL if sandbox else None)
    return (base or API_BASE_URL).rstrip("/") + "/version1/messaging"


def _outcome(answer: keepalive.Answer) -> SendResult:
    code = str(answer.status)
    if answer.status == 429:
        return SendResult(SendOutcome.RETRY, error_code=code)
    if answer.status >= 500:
        return SendResult(SendOutcome.UNKNOWN, error_code=code)
    if answer.status >= 400:
        return SendResult(SendOutcome.FAILED, error_code=code)  # credentials, a malformed request
    return _recipient_outcome(answer)


def _recipient_outcome(answer: keepalive.Answer) -> SendResult:
    """A 2xx carries AT's verdict per recipient; we send to one."""
    try:
        data: Any = json.loads(answer.body)["SMSMessageData"]
        recipients = data["Recipients"]
        if not recipients:  # refused before any recipient, e.g. "InvalidSenderId"
            reason = str(data.get("Message") or "no-recipient")
            return SendResult(SendOutcome.FAILED, error_code=reason[:ERROR_CODE_CHARS])
        first = recipients[0]
        code, message_id = int(first["statusCode"]), first.get("messageId")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        # Accepted, but we cannot read whether it went: it may have, so never resend blindly.
        return SendResult(SendOutcome.UNKNOWN, error_code="unreadable")
    if code in SENT_CODES:
        if isinstance(message_id, str) and message_id not in ("", "None"):
            return SendResult(SendOutcome.SENT, provider_sid=message_id)
        return SendResult(SendOutcome.UNKNOWN, error_code=str(code))
    if code == BLACKLISTED:
        return SendResult(SendOutcome.OPTED_OUT, error_code=str(code))
    return SendResult(SendOutcome.FAILED, error_code=str(code))


def _require(form: Mapping[str, str], non_empty: tuple[str, ...], present: str) -> None:
    """Every field in `non_empty` has a value, and `present` (a text that may be empty) is there."""
    missing = [name for name in non_empty if not form.get(name)]
    missing += [] if present in form else [present]
    if missing:
        raise BadRequestError("missing field: " + ", ".join(missing))


def _phone(raw: str, region: str) -> str:
    return reader_for(region)(raw) or raw[:32]
