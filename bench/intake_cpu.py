"""CPU of the intake job per message, in this process and in PostgreSQL, without RQ or the web.

    REDIS_URL=redis://127.0.0.1:6379/14 python -m bench.intake_cpu [--messages 6000]
        [--rounds 2] [--batch 200] [--profile]

`bench.pipeline` measures the intake workers' CPU inside the whole stack, where it moves with
everything else the 2 CPUs are doing. This measures the job alone, so that a change to it can be
compared back to back in a minute. Each round makes a scratch PostgreSQL database on
127.0.0.1:5432, seeds it as `bench.ussd` does (one open consultation, 100 circuits, as many
people as messages), puts the messages in the Redis inbox as the web does (`inbox.put`), and then
takes them in batches of `--batch` and runs `workers.intake.process_inbox_batch` on each, as the
worker's pump and job do. Nine messages in ten are first votes, in the load generator's
spellings; the rest are a second vote from the same person (already voted) or text that is not a
vote. It times this process's CPU (`time.process_time`), the CPU of the PostgreSQL backends
serving it (from /proc), and Redis's (`INFO cpu`), and checks that every message ended done and
every first vote counted once. The Redis database named by REDIS_URL is flushed before and
after: give it one of its own.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from redis import Redis

from bench import stack, ussd
from bench.plan import GARBAGE_BODIES, GATEWAY_NUMBER, VOTE_SPELLINGS


@dataclass(frozen=True)
class Spent:
    """Milliseconds of CPU per message, by process."""

    job: float
    postgres: float
    redis: float
    per_job: float  # messages per job, on average


def messages(count: int) -> tuple[list[object], int]:
    """(the messages, how many are first votes): one person each, a tenth repeated or garbage."""
    from gateway.providers.base import InboundMessage

    now = datetime.now(UTC)
    made: list[object] = []
    first_votes = 0
    for n in range(count):
        person = n if n % 10 else max(n - 7, 0)  # every tenth: someone who already voted
        if n % 20 == 5:
            body = GARBAGE_BODIES[n % len(GARBAGE_BODIES)]
        else:
            body = VOTE_SPELLINGS[n % len(VOTE_SPELLINGS)].format(n=1 + person % 5)
            first_votes += person == n
        made.append(
            InboundMessage(
                provider="twilio",
                external_id=f"SM{n:032x}",
                sender=ussd.phone_of(person),
                recipient=GATEWAY_NUMBER,
                body=body,
                received_at=now,
            )  # fmt: skip
        )
    return made, first_votes


def backend_cpu(admin: psycopg.Connection, database: str) -> float:
    """Seconds of CPU the backends connected to `database` have used so far."""
    pids = [
        row[0]
        for row in admin.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))
    ]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def redis_cpu(redis: Redis) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def one_round(count: int, batch_size: int, profile: cProfile.Profile | None) -> Spent:
    from sqlalchemy import func, select, text

    from gateway import inbox, privacy
    from gateway.db import make_engine
    from gateway.migrate import upgrade
    from gateway.models import InboundRow, VoteRow
    from gateway.settings import Settings
    from workers import runtime
    from workers.intake import process_inbox_batch

    with (
        tempfile.TemporaryDirectory(prefix="consulta-bench-") as folder,
        ussd.scratch_database("postgresql", Path(folder)) as url,
        psycopg.connect(ussd.POSTGRES_SERVER, autocommit=True) as admin,
    ):
        upgrade(url)
        privacy.install(os.environ["CONSULTA_SECRET"])
        engine = make_engine(url)
        ussd.seed(engine, count, 0)
        with engine.begin() as db:  # as `consulta registry import` does after loading
            db.execute(text("ANALYZE people"))
            db.execute(text("ANALYZE phones"))
        engine.dispose()
        rt = runtime.Runtime.build(Settings.from_env().with_(database_url=url))
        runtime.install(rt)
        database = url.rpartition("/")[2]
        try:
            made, first_votes = messages(count)
            for message in made:
                inbox.put(rt.redis, message)  # type: ignore[arg-type]
            with rt.sessions() as session:  # the pool's connection open before the clocks
                session.execute(select(1))
            jobs = 0
            pg, red = backend_cpu(admin, database), redis_cpu(rt.redis)
            cpu = time.process_time()
            if profile:
                profile.enable()
            while batch := inbox.take_batch(rt.redis, batch_size, 0, 0):
                process_inbox_batch(batch)
                jobs += 1
            if profile:
                profile.disable()
            cpu = time.process_time() - cpu
            pg = backend_cpu(admin, database) - pg
            red = redis_cpu(rt.redis) - red
            with rt.sessions() as session:
                done = session.scalar(select(func.count()).where(InboundRow.status == "done"))
                votes = session.scalar(select(func.count()).select_from(VoteRow))
            if (done, votes) != (count, first_votes):
                raise SystemExit(f"{done} done and {votes} votes, not {count} and {first_votes}")
        finally:
            runtime.install(None)
            rt.close()
    return Spent(1000 * cpu / count, 1000 * pg / count, 1000 * red / count, count / jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake_cpu", description=__doc__)
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=200, help="BATCH_SIZE")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the jobs' CPU: top 30 by own time, 40 by cumulative (it inflates Python "
        "calls: py-spy's sampling is the better guide to shares)",
    )
    options = parser.parse_args(argv)
    redis_url = stack.flushable_redis_url()
    os.environ.update(
        TWILIO_AUTH_TOKEN=secrets.token_hex(16), DATABASE_URL="postgresql://unused",
        DEFAULT_REGION="VE",
        CONSULTA_SECRET=os.environ.get("CONSULTA_SECRET") or secrets.token_urlsafe(48),
    )  # fmt: skip
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    # CPU time, not wall time: waiting for PostgreSQL is PostgreSQL's cost, metered apart
    profile = cProfile.Profile(time.process_time) if options.profile else None
    print(f"messages    {options.messages} per round in jobs of {options.batch}, "
          f"{options.rounds} rounds")  # fmt: skip
    try:
        for round_ in range(1, options.rounds + 1):
            spent = one_round(options.messages, options.batch, profile)
            total = spent.job + spent.postgres + spent.redis
            print(
                f"round {round_}     job {spent.job:.3f}  postgres {spent.postgres:.3f}  "
                f"redis {spent.redis:.3f}  total {total:.3f} ms CPU per message "
                f"({spent.per_job:.0f} a job)"
            )
            redis.flushdb()
    finally:
        redis.flushdb()
    if profile:
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
