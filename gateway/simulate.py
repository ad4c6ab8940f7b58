"""`consulta simulate sms`: a Twilio-format, correctly signed request, and the reply it got."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from twilio.request_validator import RequestValidator

from gateway.db import make_engine, make_sessionmaker
from gateway.models import InboundRow, OutboundRow

DEMO_FILE = Path("var/demo.json")


@dataclass(frozen=True)
class Target:
    webhook_url: str
    auth_token: str
    database_url: str


def find_target(url: str | None, token: str | None, database_url: str | None) -> Target:
    """What was given, else what the running demo wrote down in var/demo.json."""
    demo = json.loads(DEMO_FILE.read_text()) if DEMO_FILE.exists() else {}
    base = url or (demo.get("public_url", "") + "/sms/twilio")
    token = token or demo.get("auth_token")
    database_url = database_url or demo.get("database_url")
    if not base.startswith("http") or not token or not database_url:
        raise LookupError(
            "no running demo found (var/demo.json): start `consulta demo`, or pass "
            "--url, --token and set DATABASE_URL"
        )
    return Target(base, token, database_url)


def twilio_form(sender: str, text: str, sid: str, to: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": to,
        "Body": text,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


def post_signed(target: Target, form: dict[str, str]) -> tuple[int, str]:
    signature = RequestValidator(target.auth_token).compute_signature(target.webhook_url, form)
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own gateway
        target.webhook_url,
        data=urllib.parse.urlencode(form).encode(),
        headers={"X-Twilio-Signature": signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:  # noqa: S310
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for_reply(target: Target, sid: str, seconds: float) -> tuple[str, OutboundRow | None]:
    """The inbound message's outcome and its reply, once the worker has dealt with it."""
    engine = make_engine(target.database_url)
    sessions = make_sessionmaker(engine)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            with sessions() as session:
                found = session.execute(
                    select(InboundRow.status, InboundRow.outcome, OutboundRow)
                    .outerjoin(OutboundRow, OutboundRow.inbound_id == InboundRow.id)
                    .where(InboundRow.external_id == sid)
                ).first()
            if found and found[0] == "done" and (found[2] is None or found[2].status != "queued"):
                return found[1] or "", found[2]
            time.sleep(0.2)
    finally:
        engine.dispose()
    return "pending", None
