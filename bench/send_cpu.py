"""CPU of the replies worker per reply: written to the outbox, and sent to a stand-in for
Twilio's REST API that runs in a process of its own.

    REDIS_URL=redis://127.0.0.1:6379/14 python -m bench.send_cpu [--replies 2000] [--rounds 2]
        [--latency 0.15 --at-once 8,32]

`bench.pipeline` keeps replies in the outbox (it has no provider), so its replies figure leaves
out the one HTTP request a real reply costs. This measures both ways on the same rows. Each round
makes a scratch PostgreSQL database on 127.0.0.1:5432, queues `--replies` replies to as many
numbers (each under its own hourly cap), and runs `workers.replies.send_replies` over them in
jobs of `job_size`, as the worker runs them (without RQ's own work). It times this process's
CPU (`time.process_time`, the sending threads included) and the wall time, and checks that every
reply ended `outbox` or `sent`. The stand-in is `tests/support/fake_twilio.py`, the tests' own
local server, keeping connections alive as Twilio does and answering at once. Its CPU is not
counted: Twilio's is not ours. A real Twilio answers in 100 ms or more, which changes the wall
time (the sends wait on the network; see docs/capacity.md), not the CPU; and it speaks TLS, which
costs the client a little more per request than this plain HTTP. `--latency` makes the stand-in
answer each create that many seconds late, and `--at-once` lists the REPLY_SENDS_AT_ONCE values
to run the sends with: together they show how many replies one worker sends a second against a
provider that far away. The Redis database named by REDIS_URL is flushed before and after: give
it one of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from redis import Redis

from bench import stack, ussd

if TYPE_CHECKING:  # the gateway is imported once the environment is set (see main)
    from workers.runtime import Runtime

SERVE = "--serve-twilio"  # how this module runs itself as the stand-in's process


def serve_twilio(auth_token: str, latency: float) -> None:
    """The stand-in's process: say where it listens, then serve until stdin closes."""
    from tests.support.fake_twilio import FakeTwilio

    with FakeTwilio(auth_token=auth_token, keep_alive=True, latency=latency) as fake:
        print(fake.url, flush=True)
        sys.stdin.read()


STAND_IN_ACCOUNT = "AC" + "5" * 32  # the stand-in's account SID (tests/support/fake_twilio.py)
STAND_IN_FROM = "+582125550000"


@contextlib.contextmanager
def twilio_stand_in(auth_token: str, latency: float = 0.0) -> Iterator[tuple[str, int]]:
    """(its base URL, its PID): a process of its own, so that its CPU is not ours."""
    argv = [sys.executable, "-m", "bench.send_cpu", SERVE, auth_token, str(latency)]
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert process.stdout is not None  # noqa: S101 - opened with a pipe
        yield process.stdout.readline().strip(), process.pid
    finally:
        if process.stdin:
            process.stdin.close()
        process.wait(timeout=10)


def one_round(count: int, twilio_url: str | None, at_once: int = 8) -> tuple[float, float]:
    """(CPU ms per reply, replies per second of wall time) over `count` replies."""
    from gateway.migrate import upgrade
    from gateway.models import OutboundRow, utcnow
    from gateway.settings import Settings
    from gateway.sql import insert_rows
    from workers import runtime
    from workers.replies import job_size, send_replies

    with (
        tempfile.TemporaryDirectory(prefix="consulta-bench-") as folder,
        ussd.scratch_database("postgresql", Path(folder)) as url,
    ):
        upgrade(url)
        settings = Settings.from_env().with_(database_url=url, reply_sends_at_once=at_once)
        if twilio_url:
            settings = settings.with_(
                twilio_account_sid=STAND_IN_ACCOUNT, twilio_from=STAND_IN_FROM,
                twilio_api_base_url=twilio_url,
            )  # fmt: skip
        rt = runtime.Runtime.build(settings)
        runtime.install(rt)
        try:
            now = utcnow()
            rows = [
                {"provider": "twilio", "recipient": f"+58414{n:07d}", "body": "Voto registrado",
                 "status": "queued", "created_at": now, "updated_at": now}
                for n in range(count)
            ]  # fmt: skip
            with rt.sessions() as session, session.begin():
                inserted = insert_rows(session, OutboundRow, rows, returning=(OutboundRow.id,))
                ids = list(inserted.scalars())
            cpu, wall = time.process_time(), time.perf_counter()
            size = job_size(at_once)
            for start in range(0, count, size):
                send_replies(ids[start : start + size])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            _check(rt, count, "sent" if twilio_url else "outbox")
        finally:
            runtime.install(None)
            rt.close()
    Redis.from_url(settings.redis_url or "").flushdb()
    return 1000 * cpu / count, count / wall


def _check(rt: Runtime, count: int, expected: str) -> None:
    from sqlalchemy import func, select

    from gateway.models import OutboundRow

    with rt.sessions() as session:
        by_status = select(OutboundRow.status, func.count()).group_by(OutboundRow.status)
        found: dict[str, int] = {row[0]: row[1] for row in session.execute(by_status)}
    if found != {expected: count}:
        raise SystemExit(f"replies ended {found}, not {count} {expected}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [SERVE]:
        serve_twilio(argv[1], float(argv[2]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.send_cpu", description=__doc__)
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds a create takes")
    parser.add_argument("--at-once", default="8", help="REPLY_SENDS_AT_ONCE values, e.g. 8,32")
    options = parser.parse_args(argv)
    redis_url = stack.flushable_redis_url()
    token = secrets.token_hex(16)
    os.environ.update(
        TWILIO_AUTH_TOKEN=token, DATABASE_URL="postgresql://unused", DEFAULT_REGION="VE",
        CONSULTA_SECRET=os.environ.get("CONSULTA_SECRET") or secrets.token_urlsafe(48),
    )  # fmt: skip
    Redis.from_url(redis_url).flushdb()
    at_once = [int(value) for value in options.at_once.split(",")]
    print(f"replies     {options.replies} per round and way, {options.rounds} rounds")
    print(f"stand-in    answers each create {options.latency * 1000:.0f} ms late")
    with twilio_stand_in(token, options.latency) as (url, _):
        for round_ in range(1, options.rounds + 1):
            ways: list[tuple[str, str | None, int]] = [("outbox", None, at_once[0])]
            ways += [(f"stand-in, {n:2d} at once", url, n) for n in at_once]
            for way, target, n in ways:
                cpu_ms, per_second = one_round(options.replies, target, n)
                print(
                    f"round {round_}     {way:21s} {cpu_ms:.3f} ms CPU per reply, "
                    f"{per_second:,.0f} replies/s (one worker, wall time)"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
