"""Inbound requests as Twilio sends them, signed with the SDK's own validator."""

from __future__ import annotations

import secrets
from typing import Any

from twilio.request_validator import RequestValidator


def message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def inbound_form(sender: str, body: str, sid: str | None = None, **extra: str) -> dict[str, str]:
    form = {
        "MessageSid": sid or message_sid(),
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+582125550000",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    form.update(extra)
    return form


def signature(token: str, url: str, form: dict[str, str]) -> str:
    return str(RequestValidator(token).compute_signature(url, form))


def signed_headers(token: str, url: str, form: dict[str, str]) -> dict[str, Any]:
    return {"X-Twilio-Signature": signature(token, url, form)}
