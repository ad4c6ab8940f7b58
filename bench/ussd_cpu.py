"""CPU per USSD hop inside the web process, without gunicorn: whole vote sessions (dial, 1,
option, 1) called through WSGI in this process, one hop after another.

    REDIS_URL=redis://127.0.0.1:6379/14 python -m bench.ussd_cpu [--sessions 2000] [--rounds 2]
        [--profile dial|vote|option|confirm]

Each round makes a scratch PostgreSQL database on 127.0.0.1:5432, seeds it as `bench.ussd` does
(10,000 people over 100 circuits, one open consultation), builds `gateway.app.create_app` with
`ACK_AFTER=redis`, and times `time.process_time` around each hop: the look-ups, Redis, the menu
and the screen, as the web pays for them, but not gunicorn's own work nor the server's side of
the queries. Every screen is checked against what the hop should show. The Redis database named
by REDIS_URL is flushed before and after: give it one of its own. Figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from redis import Redis

from bench import stack, ussd

CHANNEL_SECRET = secrets.token_urlsafe(16)  # the USSD route's path secret, new each run
PEOPLE = 10_000


def environ(form: dict[str, str]) -> dict[str, Any]:
    body = urlencode(form).encode()
    return {
        "REQUEST_METHOD": "POST", "PATH_INFO": f"/ussd/africastalking/{CHANNEL_SECRET}",
        "QUERY_STRING": "",
        "SERVER_NAME": "bench.local", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.version": (1, 0), "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)), "HTTP_HOST": "bench.local",
    }  # fmt: skip


def hop(
    app: Callable[..., Iterable[bytes]],
    form: dict[str, str],
    profile: cProfile.Profile | None = None,
) -> tuple[str, str, float]:
    """(status, screen, CPU seconds) of one hop, profiled if given a profiler."""
    statuses: list[str] = []

    def start_response(status: str, _headers: Any, _exc: Any = None) -> None:
        statuses.append(status)

    started = time.process_time()
    if profile:
        profile.enable()
    answer = app(environ(form), start_response)
    body = b"".join(answer)
    getattr(answer, "close", lambda: None)()
    if profile:
        profile.disable()
    return statuses[0], body.decode(), time.process_time() - started


def one_round(
    sessions: int, redis_url: str, profiled: tuple[str, cProfile.Profile] | None = None
) -> dict[str, float]:
    """CPU ms per hop, by hop, over `sessions` whole votes on a fresh database."""
    from gateway import privacy
    from gateway.app import create_app
    from gateway.db import make_engine
    from gateway.migrate import upgrade
    from gateway.settings import Settings

    spent = dict.fromkeys(ussd.HOPS, 0.0)
    with (
        tempfile.TemporaryDirectory(prefix="consulta-bench-") as folder,
        ussd.scratch_database("postgresql", Path(folder)) as url,
    ):
        upgrade(url)
        privacy.install(os.environ["CONSULTA_SECRET"])
        engine = make_engine(url)
        _, callers = ussd.seed(engine, PEOPLE, sessions)
        engine.dispose()
        app = create_app(Settings.from_env().with_(database_url=url))
        try:
            for index, caller in enumerate(callers):
                _vote(app, index, caller, spent, profiled)
        finally:
            app.extensions["consulta"].engine.dispose()
    Redis.from_url(redis_url).flushdb()
    return {name: 1000 * seconds / sessions for name, seconds in spent.items()}


def _vote(
    app: Any,
    index: int,
    caller: ussd.Caller,
    spent: dict[str, float],
    profiled: tuple[str, cProfile.Profile] | None,
) -> None:
    form = {
        "sessionId": f"ATUid_cpu{index:06d}", "phoneNumber": caller.phone,
        "networkCode": "73401", "serviceCode": "*123#",
    }  # fmt: skip
    screens = ussd.expected_screens(caller.option)
    for name, (text, prefix, words) in zip(ussd.HOPS, screens, strict=True):
        profile = profiled[1] if profiled and profiled[0] == name else None
        status, screen, seconds = hop(app, {**form, "text": text}, profile)
        if not status.startswith("200") or not screen.startswith(prefix) or words not in screen:
            raise SystemExit(f"session {index}, {name}: {status} {screen[:80]!r}")
        spent[name] += seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ussd_cpu", description=__doc__)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--profile", choices=ussd.HOPS, help="cProfile that hop's CPU (slower): top 40, cumulative"
    )
    options = parser.parse_args(argv)
    if not 1 <= options.sessions <= PEOPLE:
        raise SystemExit(f"--sessions must be 1..{PEOPLE}: one per person")
    redis_url = stack.flushable_redis_url()
    os.environ.update(
        TWILIO_AUTH_TOKEN=secrets.token_hex(16), ACK_AFTER="redis",
        AFRICASTALKING_SECRET=CHANNEL_SECRET,
        DATABASE_URL="postgresql://unused", PUBLIC_URL="http://bench.local",
        CONSULTA_SECRET=os.environ.get("CONSULTA_SECRET") or secrets.token_urlsafe(48),
    )  # fmt: skip
    Redis.from_url(redis_url).flushdb()
    # CPU time, not wall time: waiting for PostgreSQL or Redis is theirs
    profile = cProfile.Profile(time.process_time) if options.profile else None
    profiled = (options.profile, profile) if profile else None
    print(f"sessions    {options.sessions} whole votes (4 hops) per round, {options.rounds} rounds")
    for round_ in range(1, options.rounds + 1):
        per_hop = one_round(options.sessions, redis_url, profiled)
        hops = "  ".join(f"{name} {ms:.3f}" for name, ms in per_hop.items())
        print(f"round {round_}     {hops}  session {sum(per_hop.values()):.3f} ms CPU")
    if profile:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
