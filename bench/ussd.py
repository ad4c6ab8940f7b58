"""USSD under load: the real `consulta web` and `consulta worker`, whole vote sessions, hop times.

    python -m bench.ussd [--sessions 200] [--concurrency 200] [--database postgresql|sqlite]
                         [--people 10000] [--think 0]

It makes a scratch database (a new PostgreSQL database on 127.0.0.1:5432, or a SQLite file),
migrates and seeds it, starts gunicorn with the production settings and one worker, then drives
`--sessions` Africa's Talking sessions (dial, 1, option, 1) from this process, `--concurrency`
of them in flight at once, and times every hop. It ends by checking that the worker stored one
vote per session, and stops and drops everything it started, also when it fails.

A hop is timed from before the request is written to after the whole answer is read, over
loopback, so the figures include this process's own scheduling: it shares the machine's cores
with the gateway. The CPU lines say who used the cores during the load, "everything else"
being other people's work on a shared machine. With `--think 0` every session is typed as fast
as the gateway answers, so latency is mostly queueing (in flight / throughput); a think time
paces sessions as people do. Bounded: no session starts after 300 s, a hop waits at most 15 s,
and the drain at most 120 s.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import math
import os
import platform
import random
import resource
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql
from redis import Redis
from sqlalchemy import Connection, Engine, func, insert, select

from gateway import privacy, webserver
from gateway.db import make_engine
from gateway.migrate import upgrade
from gateway.models import (
    Base,
    CircuitRow,
    ConsultationRow,
    InboundRow,
    OptionRow,
    PersonRow,
    PhoneRow,
    VoteRow,
)

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/7"  # a database of its own: it is flushed before and after
CIRCUITS = 100
HOPS = ("dial", "vote", "option", "confirm")  # the four hops of a vote session
HOP_TIMEOUT_SECONDS = 15.0  # Africa's Talking gives up on a hop after 15 s
LOAD_DEADLINE_SECONDS = 300.0  # no new session starts after this
DRAIN_DEADLINE_SECONDS = 120.0
MAX_SESSIONS, MAX_CONCURRENCY = 100_000, 1000  # one thread per session in flight
MAX_PEOPLE = 2_000_000
# Credentials that would make the worker send real SMS: the benchmark keeps replies in the outbox.
PROVIDER_VARIABLES = (
    "TWILIO_ACCOUNT_SID",
    "TWILIO_API_BASE_URL",
    "AFRICASTALKING_USERNAME",
    "AFRICASTALKING_API_KEY",
    "AFRICASTALKING_API_BASE_URL",
    "USSD_ALLOWED_NETWORKS",
)


@dataclass(frozen=True)
class Options:
    sessions: int
    concurrency: int
    database: str
    people: int
    think: float
    redis_url: str = REDIS_URL


@dataclass(frozen=True)
class Caller:
    """Who dials, and what they vote for."""

    phone: str
    option: int


@dataclass
class Tally:
    """What the load threads saw; each thread keeps its own and they are merged at the end."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {h: [] for h in HOPS})
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)  # one answer per kind of error
    completed: int = 0
    reconnects: int = 0

    def merge(self, other: Tally) -> None:
        for hop in HOPS:
            self.seconds[hop].extend(other.seconds[hop])
        self.errors.update(other.errors)
        self.examples = {**other.examples, **self.examples}
        self.completed += other.completed
        self.reconnects += other.reconnects

    def all_seconds(self) -> list[float]:
        return [s for hop in HOPS for s in self.seconds[hop]]


class HopError(Exception):
    """A hop answered what a voter's handset would not have shown next: (kind, the answer)."""


# -- the command line -----------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ussd", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sessions", type=int, default=200, help="complete vote sessions")
    parser.add_argument("--concurrency", type=int, default=200, help="sessions in flight")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--people", type=int, default=10_000, help="people in the registry")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="mean seconds a voter takes before each input (0: none, the heaviest load)",
    )
    parser.add_argument(
        "--redis-url",
        default=REDIS_URL,
        help="a Redis database to flush and use; with ACK_AFTER=redis, one with appendfsync always",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.people <= MAX_PEOPLE:
        parser.error(f"--people must be 1..{MAX_PEOPLE}")
    if not 1 <= args.sessions <= min(MAX_SESSIONS, args.people):
        parser.error(f"--sessions must be 1..{min(MAX_SESSIONS, args.people)}: one per person")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        parser.error(f"--concurrency must be 1..{MAX_CONCURRENCY}")
    if not 0 <= args.think <= HOP_TIMEOUT_SECONDS:
        parser.error(f"--think must be 0..{HOP_TIMEOUT_SECONDS:.0f}")
    return Options(
        args.sessions, args.concurrency, args.database, args.people, args.think, args.redis_url
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    # A SIGTERM unwinds like Ctrl-C does, so everything started is stopped and dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="consulta-bench-") as folder:
        logs = Path(folder)
        try:
            ok = run(options, logs)
        except BaseException:
            show_logs(logs)  # the processes are stopped by now: their logs are whole
            raise
        if not ok:
            show_logs(logs)
    return 0 if ok else 1


def run(options: Options, logs: Path) -> bool:
    """The whole benchmark; everything it starts is stopped by the stack, in reverse order."""
    phases: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        with timed(phases, "database"):
            database_url = stack.enter_context(scratch_database(options.database, logs))
            upgrade(database_url)
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        # The registry holds keyed hashes and sealed copies: seed it with the gateway's secret.
        consulta_secret = secrets.token_urlsafe(48)
        privacy.install(consulta_secret)
        with timed(phases, "seed"):
            consultation_id, callers = seed(engine, options.people, options.sessions)
        stack.enter_context(flushed_redis(options.redis_url))
        port, secret = free_port(), secrets.token_urlsafe(16)
        env = gateway_env(database_url, port, secret) | {
            "CONSULTA_SECRET": consulta_secret,
            "REDIS_URL": options.redis_url,
        }
        with timed(phases, "start"):
            web = stack.enter_context(started("web", env, logs))
            wait_healthy(web, port)
            worker = stack.enter_context(started("worker", env, logs))
        url = f"http://127.0.0.1:{port}/ussd/africastalking/{secret}"
        before = cpu_snapshot(web.pid, worker.pid)
        with timed(phases, "load"):
            tally = drive(url, callers, options)
        cpu = cpu_used(before, cpu_snapshot(web.pid, worker.pid))
        with timed(phases, "drain"):
            # Only completed sessions cast a vote: waiting for more would only wait out the clock.
            stored = wait_for_votes(engine, consultation_id, tally.completed)
        return report(options, tally, phases, cpu, stored, count_ussd_inbound(engine))


@contextlib.contextmanager
def timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - started


# -- the scratch database and its consultation ----------------------------------------------


@contextlib.contextmanager
def scratch_database(kind: str, folder: Path) -> Iterator[str]:
    """A new, empty database, gone afterwards: a PostgreSQL database, or a file in `folder`."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'consulta.db'}"
        return
    name = f"consulta_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield POSTGRES_SERVER.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))


def seed(engine: Engine, people: int, sessions: int) -> tuple[int, list[Caller]]:
    """An open consultation, its circuits and ballots, and the registry, in a few statements.

    Returns the consultation and the callers who will dial: the first `sessions` people, who
    fall in every circuit in turn, each voting for an option every ballot has.
    """
    now = datetime.now(UTC)
    with engine.begin() as db:
        consultation_id = db.execute(
            insert(ConsultationRow).returning(ConsultationRow.id),
            [consultation_row(now)],
        ).scalar_one()
        circuit_ids = insert_returning_ids(db, CircuitRow, circuit_rows(consultation_id))
        db.execute(insert(OptionRow), option_rows(circuit_ids))
        person_ids = insert_returning_ids(
            db, PersonRow, person_rows(consultation_id, circuit_ids, people)
        )
        db.execute(insert(PhoneRow), phone_rows(consultation_id, person_ids))
    callers = [Caller(phone_of(i), 1 + i % 5) for i in range(sessions)]
    return consultation_id, callers


def consultation_row(now: datetime) -> dict[str, object]:
    return {
        "slug": "bench",
        "name": "Presupuesto 2026",
        "opens_at": now - timedelta(hours=1),
        "closes_at": now + timedelta(hours=8),
        "timezone": "America/Caracas",
        "min_age": 15,
        "winners": 1,
        "revote": "first",
        "require_id": False,
        "status": "open",  # only an open consultation takes votes
        "created_at": now,
    }


def circuit_rows(consultation_id: int) -> list[dict[str, object]]:
    return [
        {"consultation_id": consultation_id, "code": f"C{c:03d}", "name": f"Circuito {c}"}
        for c in range(CIRCUITS)
    ]


def option_rows(circuit_ids: list[int]) -> list[dict[str, object]]:
    """Five to seven options per circuit, titles of a realistic length (two ballot pages at 7)."""
    return [
        {"circuit_id": circuit_id, "number": n, "title": f"Proyecto {n} del circuito {c:03d}"}
        for c, circuit_id in enumerate(circuit_ids)
        for n in range(1, 6 + c % 3)
    ]


def person_rows(
    consultation_id: int, circuit_ids: list[int], people: int
) -> list[dict[str, object]]:
    return [
        {
            "consultation_id": consultation_id,
            "national_id_digest": f"V{10_000_000 + i}",  # hashed by the column's type
            "national_id_sealed": f"V{10_000_000 + i}",  # sealed by the column's type
            "circuit_id": circuit_ids[i % len(circuit_ids)],
            "birth_date": date(1950 + i % 50, 1 + i % 12, 1 + i % 28),
        }
        for i in range(people)
    ]


def phone_rows(consultation_id: int, person_ids: list[int]) -> list[dict[str, object]]:
    return [
        {"consultation_id": consultation_id, "person_id": person_id, "phone_digest": phone_of(i)}
        for i, person_id in enumerate(person_ids)
    ]


def phone_of(index: int) -> str:
    return f"+58414{index:07d}"  # E.164, as the registry keeps numbers and AT sends them


def insert_returning_ids(
    db: Connection, table: type[Base], rows: list[dict[str, object]]
) -> list[int]:
    """One batched INSERT (SQLAlchemy's insertmanyvalues) that hands back the IDs in row order."""
    key = table.__table__.c.id
    return list(
        db.execute(insert(table).returning(key, sort_by_parameter_order=True), rows).scalars()
    )


# -- the gateway's processes ----------------------------------------------------------------


def gateway_env(database_url: str, port: int, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=REDIS_URL,
        TWILIO_AUTH_TOKEN=secrets.token_hex(16),  # the web app refuses to start without one
        AFRICASTALKING_SECRET=secret,
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        PORT=str(port),
        WEB_CONCURRENCY="2",
    )
    return env


@contextlib.contextmanager
def flushed_redis(url: str) -> Iterator[Redis]:
    redis = Redis.from_url(url)
    redis.flushdb()
    try:
        yield redis
    finally:
        redis.flushdb()
        redis.close()


@contextlib.contextmanager
def started(command: str, env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`consulta COMMAND` in a process group of its own (gunicorn forks), stopped on the way out."""
    with (logs / f"{command}.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(web: subprocess.Popen[bytes], port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if web.poll() is not None:
            raise RuntimeError(f"consulta web exited with status {web.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"consulta web did not become healthy on port {port}")


def show_logs(folder: Path, lines: int = 20) -> None:
    for log in sorted(folder.glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- last {lines} lines of {log.name} ---", *tail, sep="\n", file=sys.stderr)


# -- the load -------------------------------------------------------------------------------


class KeepAlive:
    """One keep-alive HTTP connection, as one aggregator connection would hold."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "", parts.port or 80, parts.path
        self.http: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def post(self, form: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        reused = self.http is not None
        try:
            return self._exchange(body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            # The server closed an idle keep-alive connection before reading the request:
            # nothing was processed, so it is sent again on a new connection (and counted).
            self.reconnects += 1
            return self._exchange(body, headers)

    def _exchange(self, body: str, headers: dict[str, str]) -> tuple[int, str]:
        if self.http is None:
            self.http = http.client.HTTPConnection(
                self.host, self.port, timeout=HOP_TIMEOUT_SECONDS
            )
        self.http.request("POST", self.path, body, headers)
        answer = self.http.getresponse()
        return answer.status, answer.read().decode()

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
            self.http = None


def expected_screens(option: int) -> list[tuple[str, str, str]]:
    """(text sent, prefix expected, words expected) for each hop of one vote."""
    return [
        ("", "CON ", "1 Votar"),
        ("1", "CON ", "Elige tu proyecto"),
        (f"1*{option}", "CON ", f"Confirmas tu voto por {option} "),
        (f"1*{option}*1", "END ", "Voto enviado. Recibo "),
    ]


def one_session(
    connection: KeepAlive, voter: Caller, index: int, tally: Tally, pause: Callable[[], None]
) -> None:
    """One complete vote, every hop timed; stops at the first hop that is not what it should be."""
    form = {
        "sessionId": f"ATUid_bench{index:06d}",
        "phoneNumber": voter.phone,
        "networkCode": "73401",
        "serviceCode": "*123#",
    }
    for hop, (text, prefix, words) in zip(HOPS, expected_screens(voter.option), strict=True):
        if hop != "dial":
            pause()
        started = time.perf_counter()
        status, body = connection.post({**form, "text": text})
        tally.seconds[hop].append(time.perf_counter() - started)
        if status != 200:
            raise HopError(f"{hop}: HTTP {status}", body)
        if not body.startswith(prefix) or words not in body:
            raise HopError(f"{hop}: unexpected screen", body)
    tally.completed += 1


def load_thread(
    url: str,
    next_index: Callable[[], int | None],
    callers: list[Caller],
    tally: Tally,
    think: float,
    start: threading.Barrier,
) -> None:
    connection, jitter = KeepAlive(url), random.Random(id(tally))  # noqa: S311 - not a secret
    start.wait()
    # Voters do not all dial in the same instant, nor type in step: with a think time the
    # starts are spread over one think time and each pause is 0.5 to 1.5 times it.
    time.sleep(jitter.uniform(0, think))

    def pause() -> None:
        time.sleep(jitter.uniform(0.5 * think, 1.5 * think))

    try:
        while (index := next_index()) is not None:
            try:
                one_session(connection, callers[index], index, tally, pause)
            except HopError as error:
                kind, answer = error.args
                tally.errors[kind] += 1
                tally.examples.setdefault(kind, answer[:100])
            except (OSError, ValueError, http.client.HTTPException) as error:
                tally.errors[type(error).__name__] += 1
                connection.close()
    finally:
        tally.reconnects = connection.reconnects
        connection.close()


def dispenser(count: int, deadline: float) -> Callable[[], int | None]:
    """Hands out session numbers once each, and none after the deadline."""
    lock, issued = threading.Lock(), iter(range(count))

    def take() -> int | None:
        with lock:
            return None if time.monotonic() > deadline else next(issued, None)

    return take


def drive(url: str, callers: list[Caller], options: Options) -> Tally:
    """`concurrency` threads, each running sessions back to back on its own connection."""
    take = dispenser(options.sessions, time.monotonic() + LOAD_DEADLINE_SECONDS)
    threads = min(options.concurrency, options.sessions)
    start = threading.Barrier(threads)
    tallies = [Tally() for _ in range(threads)]
    workers = [
        # Daemons: a Ctrl-C or SIGTERM must not wait for them (their hops fail fast once the
        # gateway is stopped anyway).
        threading.Thread(
            target=load_thread, args=(url, take, callers, t, options.think, start), daemon=True
        )
        for t in tallies
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total


# -- after the load -------------------------------------------------------------------------


def wait_for_votes(engine: Engine, consultation_id: int, expected: int) -> int:
    """Votes stored, polled until there are `expected` or the drain deadline passes."""
    deadline = time.monotonic() + DRAIN_DEADLINE_SECONDS
    query = (
        select(func.count())
        .select_from(VoteRow)
        .where(VoteRow.consultation_id == consultation_id, VoteRow.replaced_at.is_(None))
    )
    while True:
        with engine.connect() as db:
            stored = int(db.execute(query).scalar_one())
        if stored >= expected or time.monotonic() > deadline:
            return stored
        time.sleep(0.2)


def count_ussd_inbound(engine: Engine) -> int:
    with engine.connect() as db:
        query = select(func.count()).select_from(InboundRow).where(InboundRow.channel == "ussd")
        return int(db.execute(query).scalar_one())


# -- CPU accounting: where the machine's time went during the load ---------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MACHINE = "machine (all processes)"


def process_stats() -> Iterator[tuple[int, str, int, float]]:
    """(pid, command, process group, CPU seconds) of every process we may read."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # it ended while we looked
        command = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # After the command: state, ppid, pgrp, ..., utime (14th field overall), stime (15th).
        cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        yield int(entry.name), command, int(fields[2]), cpu


def cpu_snapshot(web_group: int, worker_group: int) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each process that matters here, by pid, with what it is."""
    seen: dict[int, tuple[str, float]] = {}
    for pid, command, group, cpu in process_stats():
        if group == web_group:
            seen[pid] = ("consulta web (gunicorn)", cpu)
        elif group == worker_group:
            seen[pid] = ("consulta worker", cpu)
        elif command.startswith("postgres"):
            seen[pid] = ("postgresql (every backend)", cpu)
        elif command.startswith(("redis-server", "valkey-server")):
            seen[pid] = ("redis-server", cpu)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    seen[os.getpid()] = ("this load process", usage.ru_utime + usage.ru_stime)
    seen[0] = (MACHINE, machine_busy_seconds())
    return seen


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def cpu_used(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds spent between two snapshots, by what the processes are.

    Per process, so one that started in between counts whole; one that ended in between is
    missed (its time shows under "everything else").
    """
    used: defaultdict[str, float] = defaultdict(float)
    for pid, (name, seconds) in after.items():
        used[name] += seconds - before.get(pid, (name, 0.0))[1]
    # The machine may be shared: whatever it did beyond the processes named here was someone
    # else's work, competing for the same cores.
    ours = sum(seconds for name, seconds in used.items() if name != MACHINE)
    used["everything else"] = used[MACHINE] - ours
    return dict(used)


# -- the report -----------------------------------------------------------------------------


def percentile(sorted_seconds: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not sorted_seconds:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_seconds)))
    return sorted_seconds[rank - 1]


def latency_line(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    ms = [1000 * percentile(ordered, p) for p in (50, 95, 99, 100)]
    return f"  {name:<8} n={len(ordered):<6} " + "  ".join(
        f"{label} {value:7.1f}"
        for label, value in zip(("p50", "p95", "p99", "max"), ms, strict=True)
    )


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}"


def report(  # noqa: PLR0913 - everything the run measured
    options: Options,
    tally: Tally,
    phases: dict[str, float],
    cpu: dict[str, float],
    stored: int,
    ussd_inbound: int,
) -> bool:
    """Print the figures; True when every session completed and left exactly one vote."""
    ok = not tally.errors and tally.completed == options.sessions and stored == options.sessions
    lines = [
        "",
        *setup_lines(options),
        *load_lines(options, tally, phases["load"]),
        *cpu_lines(cpu, phases["load"]),
        "phases (s)  " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in phases.items()),
        f"votes       {stored} stored for {options.sessions} sessions "
        f"({ussd_inbound} USSD messages recorded): {'OK' if ok else 'FAILED'}",
    ]
    print("\n".join(lines), flush=True)
    return ok


def setup_lines(options: Options) -> list[str]:
    threads = webserver.threads()
    return [
        f"command     {shlex.join(['python', '-m', 'bench.ussd', *sys.argv[1:]])}",
        f"machine     {machine()}; Python {platform.python_version()}",
        f"gateway     gunicorn gthread, WEB_CONCURRENCY=2 x WEB_THREADS={threads}; 1 worker; "
        f"{options.database}; Redis {options.redis_url}; "
        f"ACK_AFTER={os.environ.get('ACK_AFTER') or 'database'}",
        f"load        {options.sessions} sessions, {options.concurrency} in flight, "
        f"think {options.think:g} s, {options.people} people in {CIRCUITS} circuits",
    ]


def load_lines(options: Options, tally: Tally, load: float) -> list[str]:
    hops = tally.all_seconds()
    return [
        f"sessions    {tally.completed} completed of {options.sessions}",
        f"hops        {len(hops)} in {load:.2f} s: {len(hops) / load:.0f} hops/s, "
        f"{tally.completed / load:.1f} sessions/s",
        "hop latency (ms)",
        latency_line("all", hops),
        *(latency_line(hop, tally.seconds[hop]) for hop in HOPS),
        f"errors      {sum(tally.errors.values())} {dict(tally.errors) or ''}".rstrip(),
        *(f"  {kind}: {answer!r}" for kind, answer in tally.examples.items()),
        f"reconnects  {tally.reconnects} (idle keep-alive connections the server had closed)",
    ]


def cpu_lines(cpu: dict[str, float], load: float) -> list[str]:
    cpus = os.cpu_count() or 1
    return [
        f"CPU during load (s, of {load:.2f} s x {cpus} CPUs = {load * cpus:.2f} s available)",
        *(f"  {name:<26} {seconds:6.2f}" for name, seconds in cpu.items()),
    ]


if __name__ == "__main__":
    sys.exit(main())
