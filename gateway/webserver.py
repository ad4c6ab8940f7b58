"""`consulta web`: gunicorn serving the app factory, one app built per gunicorn worker."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.settings import Settings


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
        # Threads let one worker keep answering while another request waits on a commit.
        "workers": int(os.environ.get("WEB_CONCURRENCY", "2")),
        "worker_class": "gthread",
        "threads": int(os.environ.get("WEB_THREADS", "4")),
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
    }
    GatewayServer(settings, options).run()
