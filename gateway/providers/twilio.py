"""Twilio Programmable Messaging: inbound SMS webhooks, status callbacks, and sends."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlparse

from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import add_port, remove_port
from twilio.rest import Client
from werkzeug.datastructures import MultiDict

from gateway.imports.e164 import reader_for
from gateway.providers import keepalive
from gateway.providers.base import (
    ERROR_CODE_CHARS,
    BadRequestError,
    InboundMessage,
    SendOutcome,
    SendResult,
    at_most,
)
from gateway.settings import Settings

NAME = "twilio"
ACKNOWLEDGEMENT = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
ACKNOWLEDGEMENT_TYPE = "text/xml"
MAX_BODY_CHARS = 1600  # Twilio's own limit for one inbound message
OPTED_OUT = 21610
TIMEOUT = (5.0, 10.0)  # seconds to connect, and to wait for each read of the answer
SID_CHARS = 64  # the width of outbound_messages.provider_sid
USER_AGENT = "consulta"

# Twilio's delivery statuses onto ours. Statuses only move forward: see `status_rank`.
STATUS_MAPPING = {
    "accepted": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
}


def parse_inbound(form: Mapping[str, str], received_at: datetime, region: str) -> InboundMessage:
    """The message in a signed inbound webhook, or BadRequestError naming what is wrong."""
    missing = [name for name in ("MessageSid", "From", "To") if not form.get(name)]
    if missing or "Body" not in form:
        raise BadRequestError("missing field: " + ", ".join(missing or ["Body"]))
    sid, body = form["MessageSid"], form["Body"]
    if not (sid.startswith(("SM", "MM")) and len(sid) == 34 and sid.isalnum()):
        raise BadRequestError("MessageSid is not a Twilio message SID")
    at_most(body, MAX_BODY_CHARS, "Body")
    return InboundMessage(
        provider=NAME,
        external_id=sid,
        sender=reader_for(region)(form["From"]) or form["From"][:32],
        recipient=reader_for(region)(form["To"]) or form["To"][:32],
        body=body,
        received_at=received_at,
    )


def parse_status(form: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(provider SID, our status, error code) from a status callback."""
    sid, status = form.get("MessageSid", ""), form.get("MessageStatus", "")
    if not sid or status not in STATUS_MAPPING:
        raise BadRequestError("missing MessageSid or unknown MessageStatus")
    return sid, STATUS_MAPPING[status], form.get("ErrorCode") or None


def verify(auth_token: str, url: str, form: Any, signature: str | None) -> bool:
    """Twilio's signature: HMAC-SHA1 over the URL and sorted parameters, compared in constant time.

    `form` is a dict, or the request's MultiDict itself, since repeated keys are part of what was
    signed. Twilio signs the URL with or without its port, so both are tried, as the SDK's
    `validate` does; it computes both every time, this stops at the first match, which is usually
    the first one tried, so a genuine webhook costs one HMAC. `signed_text` is the SDK's
    `compute_signature` without its per-parameter look-ups, which cost as much as the HMAC.
    """
    if not signature:
        return False
    params = signed_text(form.items(multi=True) if isinstance(form, MultiDict) else form.items())
    key = auth_token.encode("utf-8")
    return any(
        hmac.compare_digest(_signature(key, candidate + params), signature.encode("utf-8"))
        for candidate in _urls_signed(url)
    )


@functools.lru_cache(maxsize=64)
def _urls_signed(url: str) -> tuple[str, ...]:
    """The URL without its port, then with it: a deployment has one, so this is worked out once."""
    parsed = urlparse(url)
    return tuple(dict.fromkeys((remove_port(parsed), add_port(parsed))))


def signed_text(pairs: Iterable[tuple[str, str]]) -> str:
    """The parameters as Twilio signs them: by name, then by value, each distinct pair once."""
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    return "".join(name + value for name in sorted(values) for value in sorted(values[name]))


def _signature(key: bytes, text: str) -> bytes:
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha1).digest())


def make_client(account_sid: str, auth_token: str, api_base_url: str | None) -> Client:
    """The SDK's client, for the few calls that are not a reply's send (reconcile's listing)."""
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=10))
    if api_base_url:
        client.api.base_url = api_base_url.rstrip("/")
    return client


def send(settings: Settings, to: str, body: str) -> SendResult:
    """One REST create. Twilio's create is not idempotent, so only a sure refusal is retryable.

    It is a plain POST on a kept-alive connection (`keepalive`), not the SDK's create: the SDK
    goes through `requests`, which cost the replies worker 0.7 ms of CPU a reply against 0.1.
    """
    account_sid, auth_token = settings.twilio_account_sid or "", settings.twilio_auth_token or ""
    form = {"To": to, "Body": body} | _sender(settings) | _status_callback(settings)
    try:
        answer = keepalive.post_form(
            messages_url(settings), form, _headers(account_sid, auth_token), TIMEOUT
        )
    except keepalive.NoAnswer as error:  # RETRY if nothing was sent, else UNKNOWN
        return error.result()
    return _outcome(answer)


def messages_url(settings: Settings) -> str:
    """The Messages resource: on a configured base URL, else on Twilio's host for the edge and
    region, named as the SDK names it (api.{edge}.{region}.twilio.com, region us1 by default)."""
    base = settings.twilio_api_base_url or _api_host(settings.twilio_edge, settings.twilio_region)
    account = quote(settings.twilio_account_sid or "", safe="")
    return f"{base.rstrip('/')}/2010-04-01/Accounts/{account}/Messages.json"


def _api_host(edge: str | None, region: str | None) -> str:
    region = region or ("us1" if edge else None)
    return "https://" + ".".join(part for part in ("api", edge, region, "twilio.com") if part)


def _sender(settings: Settings) -> dict[str, str]:
    """A messaging service when there is one (it picks the number), else our number."""
    if settings.twilio_messaging_service_sid:
        return {"MessagingServiceSid": settings.twilio_messaging_service_sid}
    return {"From": settings.twilio_from or ""}


def _status_callback(settings: Settings) -> dict[str, str]:
    """Delivery reports, when we know the public URL Twilio can reach us at."""
    if not settings.public_url:
        return {}
    return {"StatusCallback": f"{settings.public_url.rstrip('/')}/sms/twilio/status"}


@functools.lru_cache(maxsize=8)
def _headers(account_sid: str, auth_token: str) -> dict[str, str]:
    return {
        "Authorization": keepalive.basic_auth(account_sid, auth_token),
        "Accept": "application/json",
        "Accept-Charset": "utf-8",
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": USER_AGENT,
    }


def _outcome(answer: keepalive.Answer) -> SendResult:
    payload = _json(answer.body)
    if 200 <= answer.status < 300:
        sid = payload.get("sid")
        if isinstance(sid, str) and sid:
            return SendResult(SendOutcome.SENT, provider_sid=sid[:SID_CHARS])
        # Accepted, but we cannot tell which message it made: it may exist, so never resend.
        return SendResult(SendOutcome.UNKNOWN, error_code="unreadable")
    return _refusal(answer.status, payload.get("code"))


def _json(body: bytes) -> dict[str, Any]:
    """The answer's JSON object; {} for anything else (an HTML error page from a proxy, say)."""
    try:
        payload = json.loads(body)
    except ValueError:  # UnicodeDecodeError is one
        return {}
    return payload if isinstance(payload, dict) else {}


def _refusal(status: int, code: object) -> SendResult:
    """Twilio's error code when it gave one (its JSON error, or an RFC 9457 problem: both carry
    `code`), else the HTTP status. Only a 429 is sure not to have created the message."""
    error_code = (str(code) if code else str(status))[:ERROR_CODE_CHARS]
    if error_code == str(OPTED_OUT):
        return SendResult(SendOutcome.OPTED_OUT, error_code=error_code)
    if status == 429:
        return SendResult(SendOutcome.RETRY, error_code=error_code)
    if status >= 500:
        return SendResult(SendOutcome.UNKNOWN, error_code=error_code)
    return SendResult(SendOutcome.FAILED, error_code=error_code)


def status_rank(status: str) -> int:
    """How far along a reply is; a late-arriving 'sent' never undoes a 'delivered'."""
    return {"queued": 0, "sending": 1, "unknown": 1, "sent": 2}.get(status, 3)
