"""The whole SMS pipeline under load, as production runs it, against its ceiling.

    python -m bench.pipeline [--database postgresql|sqlite] [--workers N | --workers 1,2,4]
                             [--rate R | --max] [--seconds 60] [--people 1000000]
                             [--ack-after database|redis] [--ussd-sessions 200] [--ussd-web 1]
                             [--profile]

See docs/performance.md for every option, how each figure is measured, and results.

It starts a Redis of its own (AOF, `appendfsync everysec` unless --appendfsync always,
`maxmemory-policy noeviction`) and a scratch PostgreSQL database (or a SQLite file); loads a
synthetic consultation of 5,400 circuits with 5-7 options and --people voters through the real
`consulta` commands, and checkpoints the database (the registry of a real vote is on disk long
before it opens: the import's own checkpoint, spread over the next minutes, would flush it
beside the phases); then measures, in this order:

1. the ceiling: a Flask app doing one Redis RPUSH per POST (bench/ceiling.py) under the same
   gunicorn settings and the same load, as fast as it answers;
2. for each worker count: `consulta web` (gunicorn gthread, WEB_CONCURRENCY x WEB_THREADS),
   N `consulta worker --queue intake` and one `consulta worker --queue replies`, driven by a
   separate load process (bench/load.py) with signed Twilio webhooks at --rate per second (or
   --max) for --seconds, ~5% re-sent MessageSids and ~5% invalid messages mixed in, while
   --ussd-sessions Africa's Talking sessions vote at a human pace alongside, on a gunicorn of
   their own with --ussd-web processes (as docs/capacity.md deploys them: the load balancer routes
   /ussd/ to a pool of its own), or on the SMS webhooks' one with --ussd-web 0 (every run before
   2026-12-01's run 103).

For each step it prints webhook throughput and latency, confirmed votes/s counted from the
database, acknowledgement-to-stored latency, USSD hop latency, CPU and peak RSS per process, and
checks that every acknowledged message ended counted or rejected exactly once. The whole output
is also written to docs/performance/ under a timestamped name. Everything it started is stopped
and the scratch database dropped, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from bench import analysis, report, send_cpu, stack, synthetic
from bench.report import Step
from bench.steps import Output, StepRun, measure_ceiling
from gateway import webserver

ROOT = Path(__file__).resolve().parent.parent
RAW_FOLDER = ROOT / "docs" / "performance"
CEILING_SECONDS = 20


class Phase(NamedTuple):
    """One measured phase: its intake workers, its webhooks/s (None: --max), and its USSD
    sessions in flight (None: the run's --ussd-sessions)."""

    workers: int
    rate: float | None
    ussd_sessions: int | None = None


@dataclass(frozen=True)
class Options:
    database: str
    workers: tuple[int, ...]
    reply_workers: int
    rate: float | None  # None: --max
    seconds: float
    people: int
    connections: int
    ussd_sessions: int
    ussd_think: float
    ceiling_seconds: float
    appendfsync: str
    drain_seconds: float
    profile: bool
    out: Path
    ack_after: str
    send_replies: bool = False
    ussd_web: int = 1  # gunicorn processes of a pool of USSD's own; 0: it shares the SMS one
    load_nice: int = 0  # the load process's niceness: below 0, it is served before the gateway
    ussd_nice: int = 0  # the USSD pool's niceness (with --ussd-web)
    ussd_redis: str = "own"  # "own": USSD sessions on a Redis without AOF; "shared": the inbox's
    worker_nice: int = 0  # the intake and replies workers' niceness: above 0, the web goes first
    # The sessions the registry's slices are cut for, when a phase runs fewer than the others
    # (bench.targets' SMS-only --max): every phase's slice of voters stays the same and disjoint.
    slice_ussd_sessions: int | None = None

    @property
    def mode(self) -> str:
        return "max" if self.rate is None else "rate"


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--workers", default="1", help="intake workers: N, or a sweep 1,2,4")
    parser.add_argument("--reply-workers", type=int, default=1)
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--rate", type=float, help="webhooks per second (default 1000; a sweep: --max)"
    )
    pace.add_argument(
        "--max", action="store_true", help="each connection sends as soon as answered"
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=64, help="keep-alive SMS connections")
    parser.add_argument("--ussd-sessions", type=int, default=200, help="USSD sessions in flight")
    parser.add_argument("--ussd-think", type=float, default=5.0, help="mean seconds between keys")
    parser.add_argument(
        "--ussd-web",
        type=int,
        default=1,
        help="USSD on a gunicorn of its own with N processes, as docs/capacity.md deploys it "
        "(default 1; 0: one gunicorn for everything, as every run before 2026-12-01's run 103)",
    )
    parser.add_argument(
        "--load-nice",
        type=int,
        default=0,
        help="the load process's niceness, in every phase (-10: it is served before the gateway, "
        "as the provider's own servers would be; needs root)",
    )
    parser.add_argument(
        "--ussd-nice",
        type=int,
        default=0,
        help="the USSD pool's niceness (-5: its hops are served before the SMS and the workers, "
        "as on CPUs of its own; needs root)",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="the intake and replies workers' niceness (5: the webhooks, which answer in "
        "milliseconds, go before the workers, which have 2 s)",
    )
    parser.add_argument(
        "--ussd-redis",
        choices=("own", "shared"),
        default="own",
        help="USSD sessions on a redis-server of their own without AOF (USSD_REDIS_URL), as "
        "docs/capacity.md deploys them (default), or on the inbox's, as every run before "
        "2026-12-01's run 120",
    )
    parser.add_argument("--ceiling-seconds", type=float, default=CEILING_SECONDS, help="0: skip")
    parser.add_argument(
        "--appendfsync",
        choices=("everysec", "always"),
        help="Redis AOF fsync (default everysec; always with --ack-after redis)",
    )
    parser.add_argument(
        "--ack-after",
        choices=("database", "redis"),
        default="database",
        help="the gateway's ACK_AFTER: when the webhook answers 2xx",
    )
    parser.add_argument(
        "--drain-seconds", type=float, default=900.0, help="at most, after the load (60 s stalled)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the web and worker processes (slower; for where time goes)",
    )
    parser.add_argument(
        "--send-replies",
        action="store_true",
        help="send the replies to a local stand-in for Twilio's API (its CPU metered apart) "
        "instead of keeping them in the outbox",
    )
    parser.add_argument("--out", type=Path, default=RAW_FOLDER)
    args = parser.parse_args(argv)
    workers = tuple(int(n) for n in args.workers.split(","))
    if not all(1 <= n <= 16 for n in workers):
        parser.error("--workers must be 1..16, or a list such as 1,2,4")
    if not 1_000 <= args.people <= synthetic.MAX_PEOPLE:
        parser.error(f"--people must be 1000..{synthetic.MAX_PEOPLE}")
    if args.seconds <= 0 or args.connections < 1 or args.ussd_sessions < 0 or args.ussd_think < 0:
        parser.error("--seconds and --connections must be positive, the USSD options not negative")
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    if not 0 <= args.ussd_web <= 8:
        parser.error("--ussd-web must be 0..8")
    rate = None if args.max or (args.rate is None and len(workers) > 1) else (args.rate or 1000.0)
    return Options(
        args.database,
        workers,
        args.reply_workers,
        rate,
        args.seconds,
        args.people,
        args.connections,
        args.ussd_sessions,
        args.ussd_think,
        args.ceiling_seconds,
        args.appendfsync or ("always" if args.ack_after == "redis" else "everysec"),
        args.drain_seconds,
        args.profile,
        args.out,
        args.ack_after,
        args.send_replies,
        args.ussd_web,
        args.load_nice,
        args.ussd_nice,
        args.ussd_redis,
        args.worker_nice,
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop and drop everything
    out, stamp = Output(), datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    ok = False
    try:
        ok = run(options, out)
    finally:
        name = f"{stamp}-{options.database}-ack-{options.ack_after}-{options.mode}.txt"
        write_raw(out.lines, options.out / name)
    return 0 if ok else 1


def write_raw(lines: Sequence[str], raw: Path) -> None:
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text("\n".join(lines) + "\n")
    shown = raw.relative_to(ROOT) if raw.is_relative_to(ROOT) else raw
    print(f"raw output written to {shown}")


def run(options: Options, out: Output) -> bool:
    out(f"command     {shlex.join(['python', '-m', 'bench.pipeline', *sys.argv[1:]])}")
    measured = measure(options, [Phase(workers, options.rate) for workers in options.workers], out)
    out("", "## Results", "")
    for step in measured.steps:
        out(
            f"### {step.label}",
            "",
            *report.targets_table(step, measured.ceiling, options.database, options.mode),
            "",
        )
    if len(measured.steps) > 1:
        out("### Scale-out sweep", "", *report.sweep_table(measured.steps), "")
    out(f"correctness {'every check passed' if measured.ok else 'SOME CHECKS FAILED (see above)'}")
    return measured.ok


@dataclass(frozen=True)
class Measured:
    """What one stack measured: its ceiling, then each phase in order."""

    ceiling: Step | None
    steps: list[Step]
    # With `bracket_max`: the ceiling measured just before and just after each --max phase.
    around_max: list[tuple[Step, Step]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for s in self.steps for c in s.figures.checks)


def measure(
    options: Options,
    phases: Sequence[Phase],
    out: Output,
    bracket_max: bool = False,
) -> Measured:
    """Start the stack once, load the registry, measure the ceiling, then each phase. Everything
    started is stopped, the scratch database dropped, also on failure or Ctrl-C.

    With `bracket_max`, the ceiling is measured again just before and just after each --max
    phase. This machine's speed drifts by 15% or more within minutes (every process's CPU per
    operation moves together); a ceiling from minutes earlier then moves the ratio more than the
    code does. The two around the phase bound it from both sides; between two --max phases
    back to back, one ceiling is the one after the first and the one before the second."""
    out(f"date        {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC", *report.machine_lines())
    with tempfile.TemporaryDirectory(prefix="consulta-pipeline-") as folder:
        try:
            return _measure(options, phases, Path(folder), out, bracket_max)
        except BaseException as error:
            out(f"ABORTED: {type(error).__name__}: {error}")
            stack.show_logs(Path(folder))
            raise


def _measure(
    options: Options,
    phases: Sequence[Phase],
    folder: Path,
    out: Output,
    bracket_max: bool,
) -> Measured:
    # Each phase votes with a slice of the registry of its own, one of as many as there are.
    sessions = [
        options.ussd_sessions if p.ussd_sessions is None else p.ussd_sessions for p in phases
    ]
    options = replace(
        options,
        workers=tuple(phase.workers for phase in phases),
        slice_ussd_sessions=max(sessions, default=options.ussd_sessions),
    )
    with contextlib.ExitStack() as stack_:
        redis_url, redis = stack_.enter_context(stack.redis_server(folder, options.appendfsync))
        database_url, database_name = stack_.enter_context(
            stack.scratch_database(options.database, folder)
        )
        env = stack.gateway_env(database_url, redis_url, stack.free_port())
        env["ACK_AFTER"] = options.ack_after
        ussd_redis_pid = None
        if options.ussd_redis == "own":
            env["USSD_REDIS_URL"], ussd_redis = stack_.enter_context(
                stack.redis_server(folder, None, name="redis-ussd")
            )
            ussd_redis_pid = ussd_redis.pid
        provider_pid = None
        if options.send_replies:
            url, provider_pid = stack_.enter_context(
                send_cpu.twilio_stand_in(env["TWILIO_AUTH_TOKEN"])
            )
            env.update(
                TWILIO_ACCOUNT_SID=send_cpu.STAND_IN_ACCOUNT,
                TWILIO_FROM=send_cpu.STAND_IN_FROM,
                TWILIO_API_BASE_URL=url,
            )
        out(*settings_lines(options, env, phases))
        load_registry(options, env, folder, out)
        ceiling = measure_ceiling(options, env, folder, redis.pid, out)
        db = analysis.Database(database_url)
        stack_.callback(db.close)
        counts, steps, around_max = db.counts(), [], []
        after: Step | None = None  # the ceiling measured just after the phase before, if any
        for index, (phase, ussd_sessions) in enumerate(zip(phases, sessions, strict=True)):
            bracket = bracket_max and phase.rate is None and ceiling is not None
            before = None
            if bracket:  # back to back, the ceiling after one --max phase is the one before this
                before = after if after is not None else measure_ceiling(
                    options, env, folder, redis.pid, out, 100 + 2 * index,
                    " just before the next phase",
                )  # fmt: skip
            run_ = StepRun(
                replace(options, rate=phase.rate, ussd_sessions=ussd_sessions), env, folder,
                index, phase.workers, redis.pid, database_name, provider_pid, ussd_redis_pid,
            )  # fmt: skip
            step, counts = run_.measure(db, counts, out)
            steps.append(step)
            after = measure_ceiling(options, env, folder, redis.pid, out, 101 + 2 * index,
                                    " just after that phase") if bracket else None  # fmt: skip
            if before is not None and after is not None:
                around_max.append((before, after))
        return Measured(ceiling, steps, around_max)


def settings_lines(options: Options, env: dict[str, str], phases: Sequence[Phase]) -> list[str]:
    replies = (
        "replies sent to a local stand-in for Twilio's API (`--send-replies`; its CPU is "
        "metered apart, as the load generator's)"
        if options.send_replies
        else "replies stay in the outbox (no provider credentials)"
    )
    return [
        f"code        {report.code_version()}",
        f"gateway     gunicorn gthread WEB_CONCURRENCY={env.get('WEB_CONCURRENCY', '2')} x "
        f"WEB_THREADS={env.get('WEB_THREADS', webserver.DEFAULT_THREADS)}; "
        f"ACK_AFTER={env['ACK_AFTER']}; "
        f"BATCH_SIZE={env.get('BATCH_SIZE', '200')}; intake workers "
        f"{','.join(str(phase.workers) for phase in phases)} + {options.reply_workers} replies "
        "worker(s); " + replies,
        f"stores      {options.database} (PostgreSQL 127.0.0.1:5432 shared server, scratch DB)"
        if options.database == "postgresql"
        else "stores      SQLite file (WAL, synchronous=FULL)",
        f"            Redis: own redis-server, appendonly yes, appendfsync {options.appendfsync}, "
        "maxmemory-policy noeviction"
        + (
            "; USSD sessions and hop counters on a second one without AOF (USSD_REDIS_URL)"
            if options.ussd_redis == "own"
            else "; USSD sessions on the same one"
        ),
        f"load        {', then '.join(pace(phase) for phase in phases)} for "
        f"{options.seconds:g} s over {options.connections} keep-alive connections; "
        f"{options.ussd_sessions} USSD sessions in flight, think {options.ussd_think:g} s"
        + (
            f", on a gunicorn of their own (WEB_CONCURRENCY={options.ussd_web}, "
            f"nice {options.ussd_nice})"
            if options.ussd_web
            else ", on the same gunicorn"
        )
        + f"; load process at nice {options.load_nice}; workers at nice {options.worker_nice}",
    ]


def pace(phase: Phase) -> str:
    shown = "--max" if phase.rate is None else f"{phase.rate:g} webhooks/s"
    if phase.ussd_sessions is not None:
        shown += f" with {phase.ussd_sessions} USSD sessions"
    return shown


def load_registry(options: Options, env: dict[str, str], folder: Path, out: Output) -> None:
    """The consultation, its ballots and its registry, through the real commands."""
    log = folder / "setup.log"
    ballots, registry = folder / "ballots.csv", folder / "registry.csv"
    options_written = synthetic.write_ballots(ballots)
    synthetic.write_registry(registry, options.people)
    now = datetime.now(UTC)
    timings = {}
    for name, args in (
        ("upgrade", ["db", "upgrade"]),
        (
            "create",
            [
                "consultation",
                "create",
                synthetic.SLUG,
                "--name",
                synthetic.NAME,
                "--opens",
                (now - timedelta(hours=1)).isoformat(),
                "--closes",
                (now + timedelta(days=1)).isoformat(),
            ],
        ),
        ("ballots", ["ballots", "import", synthetic.SLUG, str(ballots)]),
        ("registry", ["registry", "import", synthetic.SLUG, str(registry)]),
        ("open", ["consultation", "open", synthetic.SLUG]),
    ):
        _, timings[name] = stack.consulta(args, env, log)
    flushed = stack.checkpoint(env["DATABASE_URL"])
    out(
        f"setup       {synthetic.CIRCUITS:,} circuits, {options_written:,} options, "
        f"{options.people:,} people; `consulta registry import` {timings['registry']:.1f} s, "
        f"ballots {timings['ballots']:.1f} s, migrations {timings['upgrade']:.1f} s; "
        f"then a checkpoint, {flushed:.1f} s (the setup's writes on disk before any phase)"
    )


if __name__ == "__main__":
    sys.exit(main())
