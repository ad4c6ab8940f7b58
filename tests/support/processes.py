"""Real gateway processes (`consulta web`, `consulta worker`) for tests that kill or flood them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url,
        CONSULTA_SECRET=settings.secret or "",
        REDIS_URL=settings.redis_url or "",
        TWILIO_AUTH_TOKEN=settings.twilio_auth_token or "",
        PUBLIC_URL=settings.public_url or "",
        PORT=str(settings.port),
        SWEEP_AFTER_SECONDS=str(settings.sweep_after_seconds),
        BATCH_SIZE=str(settings.batch_size),
    )
    env.update(extra)
    return env


# Run as `python -c LAUNCHER <test run's pid> <argv…>`: ask Linux to send SIGTERM when the test
# run dies, then become the command itself (same pid, so `stop` and `killpg` still reach it).
# A pytest killed with SIGKILL never runs its teardown: without this, the `consulta worker`s it
# had started lived on, took jobs from the tests' Redis database and failed the next run.
_LAUNCHER = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit("the test run ended before this process could start")
os.execvp(sys.argv[2], sys.argv[2:])
"""


def die_with_test_run(argv: list[str]) -> list[str]:
    """`argv`, to be ended with SIGTERM if the process that starts it dies, however it dies.

    The signal comes when the thread that started it ends, not only the process: call it from
    the test's own thread (fixtures and tests run there), never from a helper thread.
    """
    if not sys.platform.startswith("linux"):
        return argv  # prctl is Linux's; elsewhere a killed test run leaves orphans, as before
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv]


def spawn(command: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        die_with_test_run([sys.executable, "-m", "gateway", command]),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so a kill reaches gunicorn's workers too
    )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_healthy(port: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"consulta web did not answer on port {port}")


@contextmanager
def web_server(settings: Settings) -> Iterator[str]:
    """`consulta web` (gunicorn) on a free port; yields its base URL."""
    port = free_port()
    process = spawn("web", environment(settings.with_(port=port)))
    try:
        wait_healthy(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def wait_until(condition, seconds: float, every: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())
