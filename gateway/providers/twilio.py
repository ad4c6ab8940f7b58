"""Twilio Programmable Messaging: inbound SMS webhooks, status callbacks, and sends."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import requests
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import add_port, remove_port
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError
from werkzeug.datastructures import MultiDict

from gateway.imports.e164 import reader_for
from gateway.providers.base import BadRequestError, InboundMessage, SendOutcome, SendResult, at_most

NAME = "twilio"
ACKNOWLEDGEMENT = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
ACKNOWLEDGEMENT_TYPE = "text/xml"
MAX_BODY_CHARS = 1600  # Twilio's own limit for one inbound message
OPTED_OUT = 21610

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
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=10))
    if api_base_url:
        client.api.base_url = api_base_url.rstrip("/")
    return client


def send(  # noqa: PLR0913 - Twilio's own create() takes these separately
    client: Client,
    to: str,
    body: str,
    from_: str | None,
    messaging_service_sid: str | None,
    status_callback: str | None,
) -> SendResult:
    """One REST create. Twilio's create is not idempotent, so only a sure refusal is retryable."""
    sender: dict[str, str | None] = (
        {"messaging_service_sid": messaging_service_sid}
        if messaging_service_sid
        else {"from_": from_}
    )
    callback = {"status_callback": status_callback} if status_callback else {}
    try:
        message = client.messages.create(to=to, body=body, **sender, **callback)
    except (TwilioRestException, TwilioServiceException) as error:
        # The SDK raises the second for an RFC 9457 problem body: the same refusal, new shape.
        return _refusal(error)
    except (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError) as error:
        return SendResult(SendOutcome.RETRY, error_code=type(error).__name__)
    except requests.exceptions.ConnectionError as error:
        sure = _never_connected(error)
        return SendResult(SendOutcome.RETRY if sure else SendOutcome.UNKNOWN, error_code="conn")
    except requests.exceptions.RequestException as error:
        return SendResult(SendOutcome.UNKNOWN, error_code=type(error).__name__)
    return SendResult(SendOutcome.SENT, provider_sid=message.sid)


def _never_connected(error: requests.exceptions.ConnectionError) -> bool:
    """No connection was made (refused, unreachable, a name that did not resolve), so nothing
    was sent and a resend is safe; a connection that broke after the request went out may have
    created the message. urllib3's NewConnectionError covers all of the first kind, including
    its subclass NameResolutionError, whose text names neither "refused" nor the base class.
    """
    cause = error.args[0] if error.args else None
    cause = getattr(cause, "reason", cause)  # requests wraps urllib3's MaxRetryError(reason)
    return isinstance(cause, NewConnectionError | ConnectionRefusedError)


def _refusal(error: TwilioRestException | TwilioServiceException) -> SendResult:
    code = str(error.code) if error.code else str(error.status)
    if error.code == OPTED_OUT:
        return SendResult(SendOutcome.OPTED_OUT, error_code=code)
    if error.status == 429:
        return SendResult(SendOutcome.RETRY, error_code=code)
    if error.status >= 500:
        return SendResult(SendOutcome.UNKNOWN, error_code=code)
    return SendResult(SendOutcome.FAILED, error_code=code)


def status_rank(status: str) -> int:
    """How far along a reply is; a late-arriving 'sent' never undoes a 'delivered'."""
    return {"queued": 0, "sending": 1, "unknown": 1, "sent": 2}.get(status, 3)
