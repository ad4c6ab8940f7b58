"""`consulta web` and `consulta worker` under cProfile, for one run of `bench.pipeline --profile`.

    python -m bench.profiled web OUT_FOLDER
    python -m bench.profiled worker OUT_FILE [consulta worker options]

The profilers count CPU time of the thread they run in (`time.thread_time`), not wall time, so
the figures say where the processors go, not how long requests waited on a loaded machine.
The gateway is served by `gateway.webserver.serve` itself; only the app is wrapped. gunicorn's
gthread workers answer on a pool of threads and cProfile follows one thread, so each thread
gets its own profiler, switched on for the length of each request; when a gunicorn worker
exits, its threads' profiles are merged into OUT_FOLDER/web-PID.prof. A worker's jobs run on
its main thread, which is the one profiled (the pump thread is not).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gateway import webserver
from gateway.settings import Settings

_profiles: list[cProfile.Profile] = []
_local = threading.local()
_lock = threading.Lock()


class Profiled:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        profile = getattr(_local, "profile", None)
        if profile is None:
            profile = _local.profile = cProfile.Profile(time.thread_time)
            with _lock:
                _profiles.append(profile)
        profile.enable()
        try:
            return list(self.app(environ, start_response))  # the whole body, inside the profile
        finally:
            profile.disable()


def _dump(folder: Path) -> Callable[[Any, Any], None]:
    def worker_exit(_server: Any, _worker: Any) -> None:
        with _lock:
            profiles = [p for p in _profiles if p.getstats()]
        if profiles:
            stats = pstats.Stats(profiles[0])
            for profile in profiles[1:]:
                stats.add(profile)
            stats.dump_stats(str(folder / f"web-{os.getpid()}.prof"))

    return worker_exit


def web(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    original = webserver.GatewayServer

    class ProfiledServer(original):  # type: ignore[misc, valid-type]
        def load(self) -> Any:
            return Profiled(super().load())

        def load_config(self) -> None:
            super().load_config()
            self.cfg.set("worker_exit", _dump(folder))

    webserver.GatewayServer = ProfiledServer  # type: ignore[misc]
    webserver.serve(Settings.from_env())


def worker(target: Path, args: list[str]) -> None:
    from gateway.cli import main

    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        main(["worker", *args], standalone_mode=False)  # returns on SIGTERM (RQ's warm stop)
    finally:
        profile.disable()
        profile.dump_stats(str(target))


if __name__ == "__main__":
    if sys.argv[1] == "web":
        web(Path(sys.argv[2]))
    else:
        worker(Path(sys.argv[2]), sys.argv[3:])
