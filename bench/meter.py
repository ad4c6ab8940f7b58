"""CPU seconds and peak memory of every process in the benchmark, sampled with psutil.

Each process is given a role: the gunicorn master and each of its workers, each `consulta
worker` (with any process it forks, such as RQ's scheduler), Redis, this database's PostgreSQL
backends, PostgreSQL's own server processes (shared with anyone else using that server), the
load process and the orchestrator. CPU is counted between `start()` and `stop()`; a process
born in between counts whole, one that ended in between counts up to its last sample. Peak RSS
is the kernel's high-water mark (VmHWM) where it can be read, else the largest sample.

Beside its CPU, each process's time spent ready to run but waiting for a CPU (the kernel's
run-queue delay, /proc/PID/task/*/schedstat, all threads added up): on 2 CPUs shared by a dozen
processes, that wait, not the work, is where a request's tail goes.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psutil

PG_SERVER_WORDS = ("checkpointer", "background writer", "walwriter", "autovacuum", "logical")


@dataclass
class Seen:
    role: str
    cpu_start: float | None  # None: born after start()
    wait_start: float | None  # run-queue delay at start(); None: born after it
    cpu_last: float = 0.0
    wait_last: float | None = None  # None: never read
    rss_peak: int = 0


@dataclass(frozen=True)
class Usage:
    role: str
    processes: int
    cpu_seconds: float
    rss_peak_mb: float  # the largest single process of the role
    rss_sum_mb: float  # the peaks added up (an upper bound of the role's total)
    waited_seconds: float | None = None  # ready to run, waiting for a CPU; None: not readable


class Meter:
    def __init__(self, roots: dict[str, int], database_name: str | None, interval: float = 1.0):
        self.roots = roots  # role -> pid whose descendants share its role ("web": gunicorn)
        self.database_name = database_name
        self.interval = interval
        self.seen: dict[int, Seen] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="meter", daemon=True)
        self.started_at = self.stopped_at = 0.0
        self.busy_start = self.busy_stop = 0.0
        self.load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.load_stop: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def start(self) -> None:
        self.started_at, self.busy_start, self.load_start = (
            time.perf_counter(),
            machine_busy_seconds(),
            os.getloadavg(),
        )
        self._sample(first=True)
        self.thread.start()

    def stop(self) -> None:
        self._sample(final=True)
        self.stopped_at, self.busy_stop, self.load_stop = (
            time.perf_counter(),
            machine_busy_seconds(),
            os.getloadavg(),
        )
        self.stopping.set()
        self.thread.join()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self._sample()

    def _sample(self, first: bool = False, final: bool = False) -> None:
        with self.lock:
            for pid, role in self._processes().items():
                try:
                    process = psutil.Process(pid)
                    times = process.cpu_times()
                    cpu = times.user + times.system
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                waited = run_queue_seconds(pid)
                seen = self.seen.setdefault(
                    pid, Seen(role, cpu if first else None, waited if first else None)
                )
                seen.cpu_last, seen.rss_peak = cpu, max(seen.rss_peak, rss)
                if waited is not None:  # else the process ended between the two reads
                    seen.wait_last = waited
                if final:
                    seen.rss_peak = max(seen.rss_peak, high_water_mark(pid))

    def _processes(self) -> dict[int, str]:
        """pid -> role. A root's descendants share its role, except where they have their own
        (the orchestrator started everything, but is only itself)."""
        found: dict[int, str] = {root: role for role, root in self.roots.items()}
        for role, root in self.roots.items():
            if role == "orchestrator":
                continue
            try:
                children = psutil.Process(root).children(recursive=True)
            except psutil.Error:
                continue
            if role == "web":  # gunicorn's master and each of its workers apart
                found[root] = "web master"
            for index, child in enumerate(sorted(children, key=lambda c: c.pid), start=1):
                found.setdefault(child.pid, f"web worker {index}" if role == "web" else role)
        found.update(self._postgres())
        return found

    def _postgres(self) -> dict[int, str]:
        if not self.database_name:
            return {}
        found = {}
        for process in psutil.process_iter(["cmdline"]):
            line = " ".join(process.info["cmdline"] or [])
            if not line.startswith("postgres: "):
                continue
            if f" {self.database_name} " in line:
                found[process.pid] = "postgres backends (this DB)"
            elif any(word in line for word in PG_SERVER_WORDS):
                found[process.pid] = "postgres server processes (shared)"
        return found

    def usage(self) -> list[Usage]:
        by_role: defaultdict[str, list[Seen]] = defaultdict(list)
        for seen in self.seen.values():
            by_role[seen.role].append(seen)
        rows = []
        for role, group in by_role.items():
            cpu = sum(s.cpu_last - (s.cpu_start or 0.0) for s in group)
            peaks = [s.rss_peak / 2**20 for s in group]
            read = [s for s in group if s.wait_last is not None]
            waited = sum((s.wait_last or 0.0) - (s.wait_start or 0.0) for s in read)
            shown = waited if read else None
            rows.append(Usage(role, len(group), cpu, max(peaks), sum(peaks), shown))
        return sorted(rows, key=lambda u: u.role)

    @property
    def seconds(self) -> float:
        return self.stopped_at - self.started_at

    @property
    def machine_busy(self) -> float:
        return self.busy_stop - self.busy_start


def high_water_mark(pid: int) -> int:
    """The kernel's peak resident set of a process, in bytes (0 if it cannot be read)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_queue_seconds(pid: int) -> float | None:
    """Seconds the process's threads, all added up, spent ready to run but not running.

    The second field of each thread's /proc schedstat (nanoseconds); None where the kernel does
    not keep it. A thread that ended takes its share with it, so this undercounts a process that
    starts and ends threads; gunicorn's and RQ's live as long as the process.
    """
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # a thread that ended meanwhile (or a line not as expected)
    except OSError:
        return None
    return total / 1e9


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle and iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


FSYNC_EVENT = "aof-fsync-always"
FSYNC_THRESHOLD_MS = 1


class QueueWatch:
    """Depth of the gateway's Redis queues, sampled every second: where a backlog waits."""

    def __init__(self, redis_url: str, interval: float = 1.0) -> None:
        from redis import Redis

        from gateway.queues import INTAKE_LIST, INTAKE_QUEUE, REPLIES_QUEUE

        self.redis = Redis.from_url(redis_url)
        inbox = "consulta:inbox"  # gateway.inbox.INBOX, when ACK_AFTER=redis
        self.keys = {
            "intake IDs": INTAKE_LIST,
            "inbox messages": inbox,
            "intake jobs": f"rq:queue:{INTAKE_QUEUE}",
            "reply jobs": f"rq:queue:{REPLIES_QUEUE}",
        }
        self.interval = interval
        self.peak = dict.fromkeys(self.keys, 0)
        self.started, self.seconds = 0.0, 0
        self.fsyncs: list[int] = []  # per second of the phase, the slowest fsync, if slow
        self.fsync_policy = ""
        self.threshold_before = "0"
        self.last = dict.fromkeys(self.keys, 0)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="queues", daemon=True)

    def start(self) -> None:
        # Redis's own latency monitor: for each second, its slowest AOF fsync over the threshold
        # (with `appendfsync always` every reply waits for one; this says how long they took).
        threshold = "latency-monitor-threshold"
        self.threshold_before = self.redis.config_get(threshold).get(threshold, "0")
        self.redis.config_set(threshold, FSYNC_THRESHOLD_MS)
        self.redis.execute_command("LATENCY", "RESET")
        config = self.redis.config_get("append*")
        aof = config.get("appendonly") == "yes"
        self.fsync_policy = str(config.get("appendfsync", "")) if aof else "off (no AOF)"
        self.started = time.time()
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self._sample()
        self.seconds = int(time.time()) - int(self.started) + 1  # the seconds it touched
        history = self.redis.execute_command("LATENCY", "HISTORY", FSYNC_EVENT)
        self.fsyncs = [int(ms) for at, ms in history if int(at) >= int(self.started)]
        self.redis.config_set("latency-monitor-threshold", self.threshold_before)
        self.redis.close()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for key in self.keys.values():
            pipe.llen(key)
        for name, depth in zip(self.keys, pipe.execute(), strict=True):
            self.last[name] = int(depth)
            self.peak[name] = max(self.peak[name], int(depth))

    def line(self) -> str:
        peak = ", ".join(f"{name} {n:,}" for name, n in self.peak.items())
        last = ", ".join(f"{name} {n:,}" for name, n in self.last.items())
        return (
            f"queues      deepest during the phase: {peak}; at its end: {last}\n"
            + self.fsync_line()
        )

    def fsync_line(self) -> str:
        """How long Redis's fsyncs took during the phase, by its latency monitor."""
        slow = sorted(self.fsyncs)
        if self.fsync_policy != "always":
            return f"redis fsync appendfsync {self.fsync_policy}: no reply waits for an fsync"
        if not slow:
            return f"redis fsync no second with an AOF fsync of {FSYNC_THRESHOLD_MS} ms or more"
        median = slow[len(slow) // 2]
        return (
            f"redis fsync the slowest AOF fsync of each second, where {FSYNC_THRESHOLD_MS} ms or "
            f"more: {len(slow)} of the {self.seconds} seconds of the phase, median {median} ms, "
            f"worst {slow[-1]} ms (Redis's latency monitor)"
        )
