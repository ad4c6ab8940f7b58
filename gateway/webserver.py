"""`consulta web`: gunicorn serving the app factory, one app built per gunicorn worker."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.settings import Settings

# Threads per gunicorn process. With ACK_AFTER=redis each webhook waits for Redis to fsync its
# append-only file, and Redis fsyncs once for everything that arrived meanwhile: the more
# requests a process can hold in that wait, the more share one fsync. Under PostgreSQL's writes
# on the same disk an fsync took up to 18 ms; with 4 threads a process then held 4 requests and
# the rest queued. At 1,200 webhooks/s the webhook p99 was 29 to 63 ms with 8 (six runs, median
# 51) against 44 to 83 with 4 (four runs, median 65) (docs/performance.md, eleventh session).
DEFAULT_THREADS = 8


class GatewayServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from gateway.app import create_app

        return create_app(self.settings)


def serve(settings: Settings, host: str = "0.0.0.0") -> None:  # noqa: S104 - a server listens
    options = {
        "bind": f"{host}:{settings.port}",
        "workers": int(os.environ.get("WEB_CONCURRENCY", "2")),
        "worker_class": "gthread",
        "threads": threads(),
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
    }
    GatewayServer(settings, options).run()


def threads() -> int:
    """WEB_THREADS, or the default: how many requests one gunicorn process holds at once."""
    return int(os.environ.get("WEB_THREADS", str(DEFAULT_THREADS)))
