"""CPU per Twilio webhook inside the web process, without gunicorn: the gateway's app and the
ceiling app, called through WSGI in this process, one request after another.

    REDIS_URL=redis://127.0.0.1:6379/14 python -m bench.webhook_cpu [--requests 5000]

It builds `gateway.app.create_app` with `ACK_AFTER=redis` (so no database is touched; a scratch
SQLite file satisfies DATABASE_URL) and `bench.ceiling.create_app`, signs `--requests` webhooks
with the 19 parameters a real one has (each from its own sender, so flood control admits them
all), and times `time.process_time` over the whole run of each app. The Redis database named by
REDIS_URL is flushed before and after: give it one of its own. Figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from redis import Redis
from twilio.request_validator import RequestValidator

from bench import stack

URL = "http://bench.local"
PATH = "/sms/twilio"


def webhook(i: int, signer: RequestValidator) -> tuple[bytes, str]:
    sid = f"SM{i:032d}"
    params = {
        "ToCountry": "VE", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received", "FromCity": "",
        "Body": "VOTO 3", "FromCountry": "VE", "To": "+582125550000", "ToZip": "",
        "NumSegments": "1", "MessageSid": sid, "AccountSid": "AC" + "0" * 32,
        "From": f"+58412{i % 10_000_000:07d}", "ApiVersion": "2010-04-01",
    }  # fmt: skip
    return urlencode(params).encode(), signer.compute_signature(URL + PATH, params)


def environ(body: bytes, signature: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": PATH, "QUERY_STRING": "",
        "SERVER_NAME": "bench.local", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.version": (1, 0), "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": "bench.local",
        "HTTP_X_TWILIO_SIGNATURE": signature,
    }  # fmt: skip


def cpu_ms_per_request(
    app: Callable[..., Iterable[bytes]], requests: list[tuple[bytes, str]]
) -> float:
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc: Any = None) -> None:
        statuses.append(status)

    started = time.process_time()
    for body, signature in requests:
        answer = app(environ(body, signature), start_response)
        b"".join(answer)
        getattr(answer, "close", lambda: None)()
    spent = time.process_time() - started
    if any(not status.startswith("200") for status in statuses):
        raise SystemExit(f"not every webhook got a 200: {sorted(set(statuses))}")
    return spent / len(requests) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_cpu", description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    redis_url = stack.flushable_redis_url()
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="consulta-bench-") as folder:
        os.environ.update(
            TWILIO_AUTH_TOKEN=token, ACK_AFTER="redis", PUBLIC_URL=URL,
            DATABASE_URL=f"sqlite:///{folder}/unused.db",
            CONSULTA_SECRET=os.environ.get("CONSULTA_SECRET") or secrets.token_urlsafe(48),
        )  # fmt: skip
        from bench import ceiling
        from gateway.app import create_app
        from gateway.settings import Settings

        apps = {
            "ceiling app": ceiling.create_app(redis_url),
            "gateway": create_app(Settings.from_env()),
        }
        signer = RequestValidator(token)
        redis = Redis.from_url(redis_url)
        print(f"requests    {options.requests} signed webhooks per round, {options.rounds} rounds")
        for round_ in range(1, options.rounds + 1):
            for name, app in apps.items():
                redis.flushdb()
                requests = [webhook(i, signer) for i in range(options.requests)]
                spent = cpu_ms_per_request(app, requests)
                print(f"round {round_}     {name:12s} {spent:.3f} ms CPU per webhook")
        redis.flushdb()
    return 0


if __name__ == "__main__":
    sys.exit(main())
