"""The measured phases of `bench.pipeline`: the ceiling, and one step per worker count.

Each phase starts its servers, hands a spec to a separate load process (`bench.load`), meters
every process while the load runs, and stops everything before the next phase starts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import analysis, priority, report, stack
from bench.meter import Meter, QueueWatch
from bench.report import Step

if TYPE_CHECKING:
    from bench.pipeline import Options

MAX_MODE_CAP = 2_500  # requests/s a --max plan is sized for (it stops early if used up)
PROBE_EVERY = 10  # every 10th acknowledged message is watched until it is stored


class Output:
    """Prints, and keeps every line for the raw file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, *lines: str) -> None:
        for line in lines:
            print(line, flush=True)
            self.lines.append(line)


def measure_ceiling(
    options: Options,
    env: dict[str, str],
    folder: Path,
    redis_pid: int,
    out: Output,
    index: int = 99,  # its load folder's number: one of its own each time it is measured
    when: str = "",
) -> Step | None:
    if options.ceiling_seconds <= 0:
        return None
    port = stack.free_port()
    ceiling_env = {**env, "PORT": str(port)}
    argv = [sys.executable, "-m", "bench.ceiling"]
    with stack.started(argv, ceiling_env, folder / "ceiling.log") as server:
        stack.wait_healthy(server, port, "/")
        spec = load_spec(
            options,
            port,
            index=index,
            workers=0,
            env=env,
            folder=folder,
            mode="max",
            seconds=options.ceiling_seconds,
        )
        roots = {"web": server.pid, "redis": redis_pid}
        meter, out_dir, _ = drive(spec, roots, None, folder, out)
    figures = analysis.ceiling_figures(out_dir)
    step = Step("ceiling", 0, figures, **report.meter_fields(meter))  # type: ignore[arg-type]
    out(
        "",
        f"## Ceiling{when}: one RPUSH per POST, same gunicorn settings, --max, "
        f"{options.connections} connections",
        *report.step_lines(step, False),
    )
    return step


class StepRun:
    """One load step: fresh web and worker processes, a disjoint slice of voters."""

    def __init__(
        self,
        options: Options,
        env: dict[str, str],
        folder: Path,
        index: int,
        workers: int,
        redis_pid: int,
        database_name: str | None,
        provider_pid: int | None = None,  # the stand-in for Twilio's API, with --send-replies
        ussd_redis_pid: int | None = None,  # the USSD sessions' redis-server, if one of their own
    ) -> None:
        self.options, self.env, self.folder, self.index = options, env, folder, index
        self.workers, self.redis_pid, self.database_name = workers, redis_pid, database_name
        self.provider_pid, self.ussd_redis_pid = provider_pid, ussd_redis_pid
        self.redis_url = env["REDIS_URL"]

    def measure(
        self, db: analysis.Database, before: dict[str, int], out: Output
    ) -> tuple[Step, dict[str, int]]:
        port = stack.free_port()
        env = {**self.env, "PORT": str(port)}
        plural = "s" if self.workers > 1 else ""
        label = f"{self.workers} intake worker{plural}, {self.options.database}"
        with contextlib.ExitStack() as processes:
            web = processes.enter_context(
                stack.started(self._web_argv(), env, self.folder / f"web-{self.index}.log")
            )
            stack.wait_healthy(web, port)
            roots = {"web": web.pid, "redis": self.redis_pid}
            if self.ussd_redis_pid:  # "redis …": its CPU counts with Redis's
                roots["redis ussd"] = self.ussd_redis_pid
            ussd_port = port
            if self.options.ussd_web and self.options.ussd_sessions:
                # The same `consulta web`, another port: what a load balancer sending /ussd/ to
                # a pool of its own would put behind it. Its role starts with "web ", so its CPU
                # counts with the web's.
                ussd_port = stack.free_port()
                ussd_env = {
                    **env,
                    "PORT": str(ussd_port),
                    "WEB_CONCURRENCY": str(self.options.ussd_web),
                }
                ussd_log = self.folder / f"web-ussd-{self.index}.log"
                ussd_web = processes.enter_context(
                    stack.started(self._web_argv(), ussd_env, ussd_log)
                )
                stack.wait_healthy(ussd_web, ussd_port)
                if self.options.ussd_nice:  # the master and its workers: one session
                    priority.set_niceness(ussd_web.pid, self.options.ussd_nice)
                roots["web ussd"] = ussd_web.pid
            if self.provider_pid:
                roots["provider stand-in"] = self.provider_pid
            for n in range(1, self.workers + 1):
                worker = processes.enter_context(
                    stack.started(
                        self._worker_argv(f"intake-{n}"),
                        env,
                        self.folder / f"worker-{self.index}-{n}.log",
                    )
                )
                roots[f"worker {n}"] = worker.pid
                self._renice(worker.pid)
            for n in range(1, self.options.reply_workers + 1):
                replies = processes.enter_context(
                    stack.started(
                        stack.consulta_argv("worker", "--queue", "replies"),
                        env,
                        self.folder / f"replies-{self.index}-{n}.log",
                    )
                )
                roots[f"replies worker {n}"] = replies.pid
                self._renice(replies.pid)
            time.sleep(2)  # the workers register with RQ and start their pumps
            spec = load_spec(
                self.options,
                port,
                self.index,
                self.workers,
                env,
                self.folder,
                self.options.mode,
                self.options.seconds,
                ussd_port,
            )
            meter, out_dir, queues = drive(
                spec, roots, self.database_name, self.folder, out, self.redis_url
            )
            # The load process waited for nothing pending in the database; with ACK_AFTER=redis
            # messages may still wait in Redis, so wait for every acknowledged one to be done.
            waited = analysis.wait_until_done(db, out_dir, self.options.drain_seconds)
        figures = analysis.analyse(out_dir, db, spec["ussd"]["tag"], self.options.rate is not None)
        figures.drain["seconds"] = figures.drain.get("seconds", 0.0) + waited
        counts = analysis.check(figures, out_dir, db, before)
        metered = report.meter_fields(meter)
        step = Step(label, self.workers, figures, **metered, rate=self.options.rate)  # type: ignore[arg-type]
        out(
            "",
            f"## {label}: "
            + (f"{self.options.rate:g} webhooks/s" if self.options.rate else "--max")
            + f" for {self.options.seconds:g} s",
            *report.step_lines(step, self.options.rate is not None),
            queues,
            worker_errors(self.folder, self.index),
        )
        if self.options.profile:
            out(*profile_lines(self.folder, self.index))
        return step, counts

    def _renice(self, pid: int) -> None:
        """The worker's session (it and what it forks) at --worker-nice."""
        if self.options.worker_nice:
            priority.set_niceness(pid, self.options.worker_nice)

    def _web_argv(self) -> list[str]:
        if self.options.profile:
            folder = self.folder / f"prof-{self.index}"
            return [sys.executable, "-m", "bench.profiled", "web", str(folder)]
        return stack.consulta_argv("web")

    def _worker_argv(self, name: str) -> list[str]:
        if self.options.profile:
            target = self.folder / f"prof-{self.index}" / f"worker-{name}.prof"
            target.parent.mkdir(exist_ok=True)
            profiled = [sys.executable, "-m", "bench.profiled", "worker", str(target)]
            return [*profiled, "--queue", "intake"]
        return stack.consulta_argv("worker", "--queue", "intake")


def worker_errors(folder: Path, index: int) -> str:
    """What the phase's workers logged going wrong: a failed job is retried, and the checks say
    whether anything was lost, but a deadlock or a timeout costs throughput unseen otherwise."""
    logs = [*folder.glob(f"worker-{index}-*.log"), *folder.glob(f"replies-{index}-*.log")]
    text = "\n".join(log.read_text(errors="replace") for log in logs)
    return (
        f"errors      in the workers' logs: {text.count('Traceback (most recent call last)')} "
        f"tracebacks, {text.count('deadlock detected')} deadlocks, "
        f"{text.count('JobTimeoutException')} job timeouts"
    )


def load_spec(
    options: Options,
    port: int,
    index: int,
    workers: int,
    env: dict[str, str],
    folder: Path,
    mode: str,
    seconds: float,
    ussd_port: int | None = None,
) -> dict[str, Any]:
    """What the load process sends in one step, and which slice of the registry it votes with."""
    count = math.ceil((options.rate if mode == "rate" and options.rate else MAX_MODE_CAP) * seconds)
    steps = len(options.workers)
    # Cut for the sessions of the phase that runs the most, so that every slice stays disjoint.
    sliced = (
        options.ussd_sessions
        if options.slice_ussd_sessions is None
        else options.slice_ussd_sessions
    )
    ussd_each = sliced * (int(seconds / max(1.5 * options.ussd_think, 0.25)) + 2)
    ussd_each = min(ussd_each, options.people // (4 * steps))
    sms_each = min(count, (options.people - steps * ussd_each) // steps)
    step = index if index < steps else 0
    out_dir = folder / f"load-{index}"
    out_dir.mkdir()
    spec: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "mode": mode,
        "rate": options.rate,
        "seconds": seconds,
        "connections": options.connections,
        "out": str(out_dir),
        "plan": {
            "count": count,
            "first_voter": step * sms_each,
            "voters": sms_each,
            "people": options.people,
            "token": env["TWILIO_AUTH_TOKEN"],
            "public_url": stack.PUBLIC_URL,
            "seed": index + 1,
        },
        "ussd": None,
        "probes": None,
        "drain_seconds": 0,
        "nice": options.load_nice,
    }
    if workers:
        spec["ussd"] = {
            "path": f"/ussd/africastalking/{env['AFRICASTALKING_SECRET']}",
            "port": ussd_port or port,
            "sessions": options.ussd_sessions,
            "think": options.ussd_think,
            "tag": f"s{index}",
            "first_voter": options.people - (step + 1) * ussd_each,
            "voters": ussd_each,
        }
        spec["probes"] = {"database_url": env["DATABASE_URL"], "every": PROBE_EVERY}
        spec["drain_seconds"] = options.drain_seconds
    return spec


def drive(
    spec: dict[str, Any],
    roots: dict[str, int],
    database_name: str | None,
    folder: Path,
    out: Output,
    redis_url: str | None = None,
) -> tuple[Meter, Path, str]:
    """Run the load process through its phases, metering the processes in `roots` meanwhile
    (and the depth of the gateway's queues, given its Redis)."""
    spec_path = Path(spec["out"]) / "spec.json"
    spec_path.write_text(json.dumps(spec))
    log = (folder / f"{Path(spec['out']).name}.log").open("ab")
    with load_process(spec_path, log) as load:
        ready = expect(load, "READY")
        if ready["nice"] != spec["nice"]:
            out(f"note        the load process runs at nice {ready['nice']}, not {spec['nice']}")
        if ready["reused_voters"]:
            out(
                f"note        {ready['reused_voters']:,} first votes reuse a voter: the registry "
                "is too small for this load; they count as already_voted"
            )
        meter = Meter(
            {**roots, "load generator": load.pid, "orchestrator": os.getpid()}, database_name
        )
        queues = QueueWatch(redis_url) if redis_url else None
        meter.start()
        if queues:
            queues.start()
        assert load.stdin is not None  # noqa: S101 - opened with a pipe
        load.stdin.write(b"go\n")
        load.stdin.flush()
        expect(load, "LOADED")
        meter.stop()
        if queues:
            queues.stop()
        expect(load, "DONE")
    return meter, Path(spec["out"]), queues.line() if queues else ""


@contextlib.contextmanager
def load_process(spec_path: Path, log: Any) -> Iterator[subprocess.Popen[bytes]]:
    argv = [sys.executable, "-m", "bench.load", str(spec_path)]
    # A session of its own, as every other process here: its niceness, the provider's
    # precedence, then weighs it against the gateway's sessions (bench/priority.py).
    process = subprocess.Popen(  # noqa: S603
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


def expect(process: subprocess.Popen[bytes], word: str) -> dict[str, Any]:
    assert process.stdout is not None  # noqa: S101
    while line := process.stdout.readline().decode():
        if line.startswith(word + " "):
            return dict(json.loads(line[len(word) + 1 :]))
    raise RuntimeError(f"the load process ended before saying {word} (status {process.wait()})")


def profile_lines(folder: Path, index: int, top: int = 25) -> list[str]:
    import io
    import pstats

    lines = []
    for name, pattern in (
        ("web, CPU of the request threads of every gunicorn worker", "web-*.prof"),
        ("intake worker, CPU of its main thread (the jobs)", "worker-*.prof"),
    ):
        files = sorted(str(p) for p in (folder / f"prof-{index}").glob(pattern))
        if not files:
            lines.append(f"profile     {name}: no profile written")
            continue
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            pstats.Stats(*files, stream=text).strip_dirs().sort_stats(order).print_stats(top)
            lines += [f"profile     {name}, by {order}", *text.getvalue().splitlines()]
    return lines
