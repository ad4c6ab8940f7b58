"""Requests exactly as each channel sends them, and what the database holds before and after.

For the fault suite. A `Sent` request keeps its bytes and headers, so it can be delivered again
byte for byte (a replay). `snapshot` reads every table raw, sealed columns as stored, so two
snapshots compare equal only if nothing at all was written in between.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from urllib.parse import urlencode

from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import Engine, text
from werkzeug.test import TestResponse

from gateway.models import Base
from gateway.queues import INTAKE_QUEUE
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.support.twilio_requests import inbound_form, signature
from workers import pump
from workers.runtime import Runtime

FORM = "application/x-www-form-urlencoded"
TWILIO_URL = PUBLIC_URL + "/sms/twilio"

Pairs = Sequence[tuple[str, str]]


def without_flood_limits(settings: Settings) -> Settings:
    """Flood control counts per sender, blind to votes and the registry. Tests that send many
    requests from a few phones turn it off, so that what they test is what answers."""
    return settings.with_(**{f.name: 0 for f in fields(settings) if f.name.startswith("flood_")})


@dataclass(frozen=True)
class Sent:
    """One request as it went over the wire: path, raw body and headers."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, client: FlaskClient, base_url: str | None = None) -> TestResponse:
        extra = {"base_url": base_url} if base_url else {}
        return client.post(
            self.path, data=self.body, headers=self.headers, content_type=FORM, **extra
        )


def encode(pairs: Pairs) -> bytes:
    return urlencode(list(pairs)).encode()


def twilio_sms(sender: str, body: str, sid: str | None = None) -> Sent:
    """An inbound SMS webhook signed by Twilio for the gateway's public URL."""
    form = inbound_form(sender, body, sid)
    headers = {"X-Twilio-Signature": signature(AUTH_TOKEN, TWILIO_URL, form)}
    return Sent("/sms/twilio", encode(form.items()), headers)


def africastalking_sms(secret: str, sender: str, body: str, message_id: str | None = None) -> Sent:
    form = {
        "id": message_id or "ATXid_" + secrets.token_hex(16),
        "from": sender,
        "to": "12345",
        "text": body,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "linkId": secrets.token_hex(8),
    }
    return Sent(f"/sms/africastalking/{secret}", encode(form.items()))


def africastalking_ussd(secret: str, session: str, phone: str, path: str) -> Sent:
    """One hop of an Africa's Talking session: `path` is every input so far, joined by `*`."""
    form = {
        "sessionId": session,
        "phoneNumber": phone,
        "networkCode": "73401",
        "serviceCode": "*123#",
        "text": path,
    }
    return Sent(f"/ussd/africastalking/{secret}", encode(form.items()))


Snapshot = dict[str, list[str]]


def snapshot(engine: Engine) -> Snapshot:
    """Every row of every table, as stored, in a stable order."""
    found: Snapshot = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            rows = connection.execute(text(f"SELECT * FROM {table.name}"))  # noqa: S608 - our tables
            found[table.name] = sorted(repr(tuple(row)) for row in rows)
    return found


def changes(before: Snapshot, after: Snapshot) -> dict[str, int]:
    """Per table, how many rows were added, removed or changed (a change counts as two)."""
    changed = {}
    for name in before.keys() | after.keys():
        old, new = set(before.get(name, [])), set(after.get(name, []))
        if old != new:
            changed[name] = len(old ^ new)
    return changed


def counts(engine: Engine) -> dict[str, int]:
    """Rows in every table."""
    with engine.connect() as connection:
        return {
            table.name: connection.execute(
                text(f"SELECT COUNT(*) FROM {table.name}")  # noqa: S608 - our own tables
            ).scalar_one()
            for table in Base.metadata.sorted_tables
        }


def process_intake(rt: Runtime) -> None:
    """Run the intake jobs only: replies are recorded there, and sending them is not the point."""
    while pump.pump_once(rt, wait_seconds=0.01):
        pass
    queue = rt.queue(INTAKE_QUEUE)
    SimpleWorker([queue], connection=rt.redis, serializer=JSONSerializer).work(burst=True)
    failed = queue.failed_job_registry.get_job_ids()
    assert not failed, f"{len(failed)} intake job(s) failed"
