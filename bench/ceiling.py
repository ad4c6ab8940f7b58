"""The ceiling: the least a webhook can do, served exactly as `consulta web` serves the gateway.

    REDIS_URL=redis://127.0.0.1:6379/7 PORT=8001 python -m bench.ceiling

One Flask route, `POST /sms/twilio`, that reads the form, does one Redis RPUSH of the
MessageSid and answers the same empty TwiML. It runs under `gateway.webserver.serve` itself
(gunicorn gthread, WEB_CONCURRENCY x WEB_THREADS, the same keepalive and timeouts): only the
app it loads differs. No signature check and no database, so the gateway's webhook throughput
divided by this one says how much of the HTTP and Redis budget the gateway's own work costs.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, request
from redis import Redis

from gateway import webserver
from gateway.settings import Settings

CEILING_LIST = "bench:ceiling"
ACKNOWLEDGEMENT = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def create_app(redis_url: str) -> Flask:
    app = Flask(__name__)
    redis = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    @app.post("/sms/twilio")
    def inbound() -> Response:
        redis.rpush(CEILING_LIST, request.form.get("MessageSid", ""))
        return Response(ACKNOWLEDGEMENT, mimetype="text/xml")

    return app


class CeilingServer(webserver.GatewayServer):
    def load(self) -> Any:
        return create_app(self.settings.redis_url or "")


def main() -> None:
    settings = Settings.from_env()
    if not settings.redis_url:
        raise SystemExit("REDIS_URL is not set")
    # serve() builds the production options and runs the class it names; point it at ours.
    webserver.GatewayServer = CeilingServer  # type: ignore[misc]
    webserver.serve(settings, host=os.environ.get("BENCH_HOST", "127.0.0.1"))


if __name__ == "__main__":
    main()
