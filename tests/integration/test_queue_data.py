"""What our RQ jobs leave in Redis: JSON that names a function and plain IDs, never pickle."""

from __future__ import annotations

import json
import zlib

from flask import Flask
from flask.testing import FlaskClient
from rq.serializers import JSONSerializer

from gateway.queues import INTAKE_QUEUE
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.support.twilio_requests import inbound_form, signed_headers
from workers import pump
from workers.runtime import Runtime

PICKLE = b"\x80"  # every pickle since protocol 2 starts with its PROTO opcode


def test_an_enqueued_intake_job_is_stored_as_json_with_plain_ids(
    client: FlaskClient, rt: Runtime
) -> None:
    form = inbound_form("+584141234567", "VOTO 3")
    headers = signed_headers(AUTH_TOKEN, PUBLIC_URL + "/sms/twilio", form)
    assert client.post("/sms/twilio", data=form, headers=headers).status_code == 200
    assert pump.pump_once(rt, wait_seconds=0.5)
    [job_id] = rt.queue(INTAKE_QUEUE).job_ids
    raw = rt.redis.hget(f"rq:job:{job_id}", "data")
    assert isinstance(raw, bytes)
    stored = zlib.decompress(raw)  # RQ compresses it
    assert not stored.startswith(PICKLE)
    function, instance, args, kwargs = json.loads(stored)
    assert function.startswith("workers.")
    assert instance is None
    assert kwargs == {}
    [inbound_ids] = args
    assert inbound_ids
    assert all(isinstance(inbound_id, int) for inbound_id in inbound_ids)


def test_rq_dashboard_reads_jobs_with_the_json_serializer_too(app: Flask) -> None:
    from rq_dashboard import web  # mounted by the console when the app is built

    assert web.config.serializer is JSONSerializer
