"""The real stack, started as production runs it, and stopped (and dropped) afterwards.

A Redis of its own on a free port (AOF on, `maxmemory-policy noeviction`), a scratch PostgreSQL
database on the shared server (or a SQLite file), the `consulta` command for every setup step,
and `consulta web` and `consulta worker` as separate process groups.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
from psycopg import sql

POSTGRES_SERVER = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PUBLIC_URL = "https://vote.example.org"  # what the load process signs, as Twilio would
# Credentials that would make the worker send real messages: replies stay in the outbox.
PROVIDER_VARIABLES = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_API_BASE_URL",
    "TWILIO_FROM",
    "TWILIO_MESSAGING_SERVICE_SID",
    "AFRICASTALKING_USERNAME",
    "AFRICASTALKING_API_KEY",
    "AFRICASTALKING_API_BASE_URL",
    "USSD_ALLOWED_NETWORKS",
    "DATABASE_URL",
    "REDIS_URL",
    "USSD_REDIS_URL",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def redis_server(
    folder: Path, appendfsync: str | None, name: str = "redis"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Our own redis-server: AOF with `appendfsync` (None: no AOF at all, for what a restart may
    lose), no RDB snapshots, never evicting a key."""
    port = free_port()
    data = folder / name
    data.mkdir()
    argv = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data),
        *(("--appendonly", "no") if appendfsync is None else ("--appendonly", "yes")),
        *(() if appendfsync is None else ("--appendfsync", appendfsync)),
        "--save",
        "",
        "--maxmemory",
        "2gb",
        "--maxmemory-policy",
        "noeviction",
        "--logfile",
        str(folder / f"{name}.log"),
    ]
    with started(argv, os.environ.copy(), folder / f"{name}.out") as process:
        url = f"redis://127.0.0.1:{port}/0"
        _wait(lambda: _redis_answers(port), process, "redis-server")
        yield url, process


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def scratch_database(kind: str, folder: Path) -> Iterator[tuple[str, str | None]]:
    """(URL, PostgreSQL database name) of a new, empty database, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'consulta.db'}", None
        return
    name = f"consulta_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield POSTGRES_SERVER.rpartition("/")[0] + "/" + name, name
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


def checkpoint(database_url: str) -> float:
    """Write everything the setup changed to the data files now; the seconds it took.

    A real registry is imported days before its vote opens. Here the import ends seconds before
    the first phase, and its WAL (past `max_wal_size`) starts a checkpoint spread over the next
    minutes, whose last step flushes the data files: beside the phases, on the disk that Redis
    fsyncs every acknowledged webhook to. The phases still carry the checkpoints their own
    writes cause, as a vote does.
    """
    started = time.monotonic()
    if database_url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with psycopg.connect(database_url, autocommit=True) as db:
            db.execute("CHECKPOINT")
    return time.monotonic() - started


def flushable_redis_url() -> str:
    """REDIS_URL, for the in-process benchmarks that flush it: refuse to start without one."""
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise SystemExit("REDIS_URL is not set (a Redis database this may flush)")
    return redis_url


def gateway_env(database_url: str, redis_url: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CONSULTA_SECRET=secrets.token_urlsafe(48),
        TWILIO_AUTH_TOKEN=secrets.token_hex(16),
        PUBLIC_URL=PUBLIC_URL,
        AFRICASTALKING_SECRET=secrets.token_urlsafe(16),
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    return env


def consulta(args: Sequence[str], env: dict[str, str], log: Path) -> tuple[str, float]:
    """Run one `consulta` command to the end; (its output, seconds). Raises if it failed."""
    started_at = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own command line
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started_at
    with log.open("a") as out:
        out.write(f"$ consulta {' '.join(args)}  ({seconds:.1f} s)\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"`consulta {' '.join(args)}` failed ({done.returncode}):\n{tail}")
    return done.stdout, seconds


@contextlib.contextmanager
def started(
    argv: Sequence[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A process in a group of its own (so its children stop with it), logging to `log`."""
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603
            list(argv), env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], seconds: float = 20.0) -> None:
    """SIGTERM to the group (gunicorn and RQ shut down warmly), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def consulta_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def wait_healthy(process: subprocess.Popen[bytes], port: int, path: str = "/healthz") -> None:
    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as r:  # noqa: S310
                return bool(r.status == 200)
        except OSError as error:
            # The ceiling app has no health route: any HTTP answer means gunicorn is up.
            return getattr(error, "code", None) in (404, 405)

    _wait(answers, process, f"the server on port {port}")


def _wait(ready, process: subprocess.Popen[bytes], what: str, seconds: float = 90) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {seconds:.0f} s")


def show_logs(folder: Path, lines: int = 25) -> None:
    for log in sorted(folder.glob("*.log")) + sorted(folder.glob("*.out")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last {lines} lines of {log.name} ---", *tail, sep="\n", file=sys.stderr)
