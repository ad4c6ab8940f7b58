"""The registry import at scale: the real `consulta registry import`, timed, with its peak memory.

    python -m bench.registry_import [--rows 1000000] [--database sqlite|postgresql]
                                    [--circuits 5400] [--phones e164|national|mixed]
                                    [--spoil-last-row] [--seed 7]

It writes a synthetic ballots file (`--circuits` circuits of 2 to 9 options) and a registry of
`--rows` people (IDs spelt as people write them, 0 to 3 phones each, some shared within a
family, an optional language), makes a scratch database (a new PostgreSQL database on
127.0.0.1:5432, dropped afterwards, or a SQLite file in a temporary folder), migrates it, and
loads the consultation and its ballots with the `consulta` command. Then it runs
`consulta registry import` as a child process and reports its wall time, its CPU time (wait4)
and its peak resident memory (the kernel's own high-water mark, VmHWM), with the same for the
processes it starts and for its PostgreSQL backend (read from /proc every 0.1 s), and checks that
the database holds exactly the people and phones generated. With `--spoil-last-row` the file's
last row is bad: the import must be refused, naming that line, and leave nothing.

The machine may be shared: the report says how busy it was during the import, and how much of
that was the import's own processes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import func, select

from bench.ussd import (
    CLOCK_TICKS,
    machine,
    machine_busy_seconds,
    process_stats,
    scratch_database,
)
from gateway.db import make_engine
from gateway.migrate import upgrade
from gateway.models import PersonRow, PhoneRow

SLUG = "bench-registry"
MOBILE_PREFIXES = ("412", "414", "416", "424", "426")
MAX_ROWS = 21_000_000  # a national registry
SAMPLE_SECONDS = 0.1  # how often the import's processes are looked at
PROCESS_NAMES = (("forkserver", "fork server"), ("resource_tracker", "resource tracker"))


@dataclass(frozen=True)
class Options:
    rows: int
    database: str
    circuits: int
    phones: str
    spoil: bool
    seed: int


@dataclass(frozen=True)
class Files:
    ballots: Path
    registry: Path
    phones: int  # distinct phones per person, summed: what the import must store
    megabytes: float
    seconds: float


@dataclass(frozen=True)
class Run:
    """What the import's processes did, as the kernel saw them."""

    status: int
    wall: float
    cpu: float  # the `consulta` process itself, from wait4
    helpers: dict[str, Helper]  # its descendants (the reading process, the fork server)
    tree_peak_rss_kib: int  # the most the whole tree held at one sample
    # The import process's own peak, as the kernel keeps it (VmHWM), read until it exits. Not
    # wait4's ru_maxrss: that counts this benchmark's own memory, which the child shared
    # between fork and exec.
    own_peak_rss_kib: int
    output: str
    machine_busy: float
    backend_cpu: float | None  # the import's own PostgreSQL backend
    load_before: float
    load_after: float


@dataclass
class Helper:
    """A descendant of the import process, as last sampled."""

    name: str
    cpu: float = 0.0
    peak_rss_kib: int = 0


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.registry_import", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="people in the registry")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--circuits", type=int, default=5_400)
    parser.add_argument(
        "--phones",
        choices=("e164", "national", "mixed"),
        default="mixed",
        help="how the numbers are written: +584141234567, 0414-123.45.67, or a mix of spellings",
    )
    parser.add_argument("--spoil-last-row", action="store_true", help="a bad row at the end")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not 1 <= args.rows <= MAX_ROWS:
        parser.error(f"--rows must be 1..{MAX_ROWS}")
    if not 1 <= args.circuits <= 99_999:
        parser.error("--circuits must be 1..99999")
    return Options(
        args.rows, args.database, args.circuits, args.phones, args.spoil_last_row, args.seed
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    # A SIGTERM unwinds like Ctrl-C does, so the scratch database is dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    files, run, stored = measure(options)
    ok = report(options, files, run, stored)
    return 0 if ok else 1


def measure(options: Options) -> tuple[Files, Run, tuple[int, int]]:
    """Write the files, make a scratch database, and run the import measured; returns the
    people and phones stored."""
    with tempfile.TemporaryDirectory(prefix="consulta-bench-") as folder:
        work = Path(folder)
        files = write_files(options, work)
        with scratch_database(options.database, work) as url:
            started = time.perf_counter()
            upgrade(url)
            env = command_env(url)
            consulta("consultation", "create", SLUG, "--name", "Bench", *window(), env=env)
            consulta("ballots", "import", SLUG, str(files.ballots), env=env)
            print(f"setup       {time.perf_counter() - started:.1f} s", flush=True)
            run = measured(["registry", "import", SLUG, str(files.registry)], env, work, url)
            return files, run, stored_counts(url)


# -- the files ------------------------------------------------------------------------------


def write_files(options: Options, folder: Path) -> Files:
    started = time.perf_counter()
    rng = random.Random(options.seed)  # noqa: S311 - test data, the same for every run
    ballots = folder / "ballots.csv"
    with ballots.open("w", encoding="utf-8") as out:
        out.write("circuit_code,circuit_name,option,title\n")
        for c in range(1, options.circuits + 1):
            for n in range(1, rng.randint(2, 9) + 1):
                out.write(f"CC-{c:05d},Circuito Comunal {c},{n},Proyecto {n} del circuito {c}\n")
    registry, phones = folder / "registry.csv", 0
    with registry.open("w", encoding="utf-8") as out:
        out.write("national_id,circuit_code,birth_date,phones,language\n")
        for lines, count in registry_chunks(options, rng):
            out.write("".join(lines))
            phones += count
        if options.spoil:
            out.write("V-1.234,CC-00001,1990-02-30,0414-123\n")
    size = registry.stat().st_size / 1e6
    return Files(ballots, registry, phones, size, time.perf_counter() - started)


def registry_chunks(options: Options, rng: random.Random) -> Iterator[tuple[list[str], int]]:
    """The registry's lines, 10,000 at a time, with how many distinct phones they hold."""
    numbers = rng.sample(range(1_000_000, 40_000_000), options.rows)
    first_day, days = date(1930, 1, 1).toordinal(), (date(2008, 12, 31) - date(1930, 1, 1)).days
    family: list[str] = []
    lines: list[str] = []
    count = 0
    for number in numbers:
        if rng.random() >= 0.03:  # 3% share the last person's first phone: one family phone
            family = [mobile(rng) for _ in range(rng.choices((0, 1, 2, 3), (10, 60, 25, 5))[0])]
        written = ";".join(spelt(digits, options.phones, rng) for digits in family)
        code = f"CC-{rng.randint(1, options.circuits):05d}"
        born = date.fromordinal(first_day + rng.randrange(days)).isoformat()
        language = rng.choices(("", "es", "en", "English"), (80, 14, 5, 1))[0]
        lines.append(f"{national_id(number, rng)},{code},{born},{written},{language}\n")
        count += len(set(family))
        if len(lines) == 10_000:
            yield lines, count
            lines, count = [], 0
    if lines:
        yield lines, count


def mobile(rng: random.Random) -> str:
    """A Venezuelan mobile number's ten national digits."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10_000_000):07d}"


def national_id(number: int, rng: random.Random) -> str:
    digits = f"{number:,}".replace(",", ".")
    letter = "E" if number >= 38_000_000 else "V"
    return rng.choice((f"{letter}-{digits}", f"{letter}{number}", f"{letter}{number}", f"{number}"))


def spelt(digits: str, style: str, rng: random.Random) -> str:
    """One number as a registry clerk might have typed it."""
    if style == "e164":
        return f"+58{digits}"
    national = (
        f"0{digits[:3]}-{digits[3:6]}.{digits[6:8]}.{digits[8:]}",
        f"0{digits[:3]} {digits[3:]}",
        f"0{digits}",
    )
    if style == "national":
        return rng.choice(national)
    return rng.choice(
        (f"+58{digits}", f"+58{digits}", f"+58 {digits[:3]} {digits[3:]}", f"58{digits}", *national)
    )


# -- the commands ---------------------------------------------------------------------------


def command_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        CONSULTA_SECRET=secrets.token_urlsafe(48),
        DEFAULT_REGION="VE",
    )
    return env


def window() -> list[str]:
    opens = date.today() + timedelta(days=30)
    return ["--opens", f"{opens}T07:00", "--closes", f"{opens}T19:00"]


def consulta_command() -> list[str]:
    """The installed `consulta` script next to this Python, else the same entry point."""
    script = Path(sys.executable).parent / "consulta"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]


def consulta(*args: str, env: dict[str, str]) -> None:
    subprocess.run([*consulta_command(), *args], env=env, check=True, stdout=subprocess.DEVNULL)


def measured(args: list[str], env: dict[str, str], folder: Path, database_url: str) -> Run:
    """Run `consulta ARGS`, sampling its process tree, and reap it with wait4 for its rusage."""
    backend = BackendWatch(database_url) if database_url.startswith("postgresql") else None
    load_before = os.getloadavg()[0]
    busy_before = machine_busy_seconds()
    helpers: dict[int, Helper] = {}
    tree_peak = own_peak = 0
    started = time.perf_counter()
    with (folder / "stdout").open("wb") as out, (folder / "stderr").open("wb") as err:
        child = subprocess.Popen([*consulta_command(), *args], env=env, stdout=out, stderr=err)
        try:
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                tree_peak = max(tree_peak, sample_tree(child.pid, helpers))
                own_peak = max(own_peak, proc_status(child.pid).get("VmHWM", 0))
                if backend is not None:
                    backend.sample()
                time.sleep(SAMPLE_SECONDS)
        except BaseException:
            child.kill()
            child.wait()
            raise
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    wall = time.perf_counter() - started
    output = (folder / "stdout").read_text() + tail(folder / "stderr")
    return Run(
        status=child.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        helpers={f"{h.name} {pid}": h for pid, h in helpers.items()},
        tree_peak_rss_kib=tree_peak,
        own_peak_rss_kib=own_peak,
        output=output.strip(),
        machine_busy=machine_busy_seconds() - busy_before,
        backend_cpu=backend.close() if backend is not None else None,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


class BackendWatch:
    """The CPU time of the PostgreSQL backend serving the import, found by its database."""

    def __init__(self, database_url: str) -> None:
        self.monitor = psycopg.connect(database_url, autocommit=True)
        self.seconds: dict[int, float] = {}

    def sample(self) -> None:
        if not self.seconds:
            query = (
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            self.seconds = {pid: 0.0 for (pid,) in self.monitor.execute(query)}
        for pid, seconds in self.seconds.items():
            self.seconds[pid] = max(seconds, proc_cpu(pid))

    def close(self) -> float:
        self.monitor.close()
        return sum(self.seconds.values())


def sample_tree(root: int, helpers: dict[int, Helper]) -> int:
    """Note each descendant's CPU and peak RSS; returns the RSS of the whole tree now (KiB)."""
    children: dict[int, list[int]] = {}
    for pid, _, _, _ in process_stats():
        with contextlib.suppress(OSError, ValueError):
            parent = int(
                (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1]
            )
            children.setdefault(parent, []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        stack += children.get(pid, [])
        status = proc_status(pid)
        total += status.get("VmRSS", 0)
        if pid != root and status:
            helper = helpers.setdefault(pid, Helper(proc_name(pid, root)))
            helper.peak_rss_kib = max(helper.peak_rss_kib, status.get("VmHWM", 0))
            helper.cpu = max(helper.cpu, proc_cpu(pid))
    return total


def proc_status(pid: int) -> dict[str, int]:
    """The kB figures of /proc/PID/status (VmRSS, VmHWM...); empty once the process is gone."""
    try:
        text = (Path("/proc") / str(pid) / "status").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            found[key] = int(value.split()[0])
    return found


def proc_cpu(pid: int) -> float:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def proc_name(pid: int, root: int) -> str:
    """What a descendant of the import process is there for."""
    try:
        words = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
        parent = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return "process"
    text = " ".join(w.decode(errors="replace") for w in words)
    if parent != root:  # forked by the fork server, so its command line is the server's
        return "reading process"
    return next((n for k, n in PROCESS_NAMES if k in text), "process")


def tail(path: Path, lines: int = 3) -> str:
    """The last progress line and any message after it (tqdm redraws with carriage returns)."""
    text = path.read_text(errors="replace").replace("\r", "\n").strip()
    return "\n" + "\n".join(text.splitlines()[-lines:]) if text else ""


def stored_counts(database_url: str) -> tuple[int, int]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as db:
            people = db.scalar(select(func.count()).select_from(PersonRow)) or 0
            phones = db.scalar(select(func.count()).select_from(PhoneRow)) or 0
    finally:
        engine.dispose()
    return people, phones


# -- the report -----------------------------------------------------------------------------


def report(
    options: Options,
    files: Files,
    run: Run,
    stored: tuple[int, int],
    argv: Sequence[str] | None = None,  # the options it ran with; default: this process's own
) -> bool:
    expected = (0, 0) if options.spoil else (options.rows, files.phones)
    refused_right = run.status == 1 and f"line {options.rows + 2}:" in run.output
    ok = stored == expected and (refused_right if options.spoil else run.status == 0)
    cores = os.cpu_count() or 1
    helpers_cpu = sum(h.cpu for h in run.helpers.values())
    backend = run.backend_cpu or 0.0
    others = run.machine_busy - run.cpu - helpers_cpu - backend
    lines = [
        "",
        "command     "
        + shlex.join(["python", "-m", "bench.registry_import", *(argv or sys.argv[1:])]),
        f"measured    {shlex.join(['consulta', 'registry', 'import', SLUG, 'registry.csv'])}",
        f"machine     {machine()}",
        f"file        {options.rows:,} rows, {files.phones:,} phones ({options.phones}), "
        f"{options.circuits:,} circuits, {files.megabytes:.1f} MB; written in {files.seconds:.1f} s"
        + ("; last row spoilt" if options.spoil else ""),
        f"database    {options.database}",
        f"wall        {run.wall:.1f} s ({options.rows / run.wall:,.0f} rows/s)",
        f"peak RSS    {run.own_peak_rss_kib / 1024:.0f} MiB the import process (VmHWM); "
        f"{run.tree_peak_rss_kib / 1024:.0f} MiB its whole process tree at its fullest "
        "(pages shared by the fork server and its child counted twice)",
        *(
            f"            {h.peak_rss_kib / 1024:.0f} MiB {name}"
            for name, h in sorted(run.helpers.items())
        ),
        f"CPU (s)     {run.cpu:.1f} the import process, {helpers_cpu:.1f} its helpers (sampled)"
        + (f", {backend:.1f} its PostgreSQL backend (sampled)" if run.backend_cpu else "")
        + f"; {others:.1f} everyone else's work on this machine meanwhile",
        f"machine     {run.machine_busy:.1f} of {run.wall * cores:.1f} core-seconds busy; "
        f"load average {run.load_before:.2f} before, {run.load_after:.2f} after",
        f"exit        {run.status}: {run.output.splitlines()[0] if run.output else ''}",
        *(f"            {line}" for line in run.output.splitlines()[1:4] if line.strip()),
        f"stored      {stored[0]:,} people, {stored[1]:,} phones; expected {expected[0]:,} "
        f"and {expected[1]:,}: {'OK' if ok else 'FAILED'}",
    ]
    print("\n".join(lines), flush=True)
    return ok


if __name__ == "__main__":
    sys.exit(main())
