"""The benchmark's printed report: one block per load step, then markdown tables to paste."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.analysis import Figures
from bench.meter import Meter, Usage


@dataclass
class Step:
    label: str  # "2 workers" or "ceiling"
    workers: int
    figures: Figures
    usage: list[Usage]
    cpu_seconds: float  # the timed phase
    machine_busy: float  # CPU seconds the whole machine was busy meanwhile
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    rate: float | None = None  # webhooks/s the load was set to; None: --max


def ms(value: float) -> str:
    return (
        "-"
        if value is None or math.isnan(value)
        else f"{value:,.0f}"
        if value >= 100
        else f"{value:.1f}"
    )


def machine_lines() -> list[str]:
    lscpu = _run(["lscpu"]).splitlines()[:12]
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory = next((line for line in meminfo if line.startswith("MemTotal")), "")
    return [
        f"nproc       {_run(['nproc']).strip()}",
        *(f"lscpu       {line}" for line in lscpu),
        f"memory      {memory.split(':', 1)[-1].strip()}",
        f"python      {platform.python_version()}; {_run(['redis-server', '--version']).strip()}",
        f"load avg    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) at start",
    ]


def code_version() -> str:
    """The commit, and whether the working tree differs from it (others may be editing)."""
    head = _run(["git", "-C", str(Path(__file__).parent), "rev-parse", "--short", "HEAD"]).strip()
    changed = _run(["git", "-C", str(Path(__file__).parent), "status", "--porcelain"]).splitlines()
    return f"commit {head or '?'}" + (f" + {len(changed)} uncommitted paths" if changed else "")


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout  # noqa: S603
    except OSError:
        return ""


def meter_fields(meter: Meter) -> dict[str, object]:
    return {
        "usage": meter.usage(),
        "cpu_seconds": meter.seconds,
        "machine_busy": meter.machine_busy,
        "load_before": meter.load_start,
        "load_after": meter.load_stop,
    }


def step_lines(step: Step, rate_mode: bool) -> list[str]:
    f = step.figures
    lat, due = f.latency_ms, f.due_latency_ms
    cpus = os.cpu_count() or 1
    lines = [
        f"load avg    {_load(step.load_before)} before, {_load(step.load_after)} after; machine "
        f"busy {step.machine_busy / step.cpu_seconds:.2f} of {cpus} CPUs during the phase",
        f"webhook     {f.requests:,} requests in {f.seconds:.1f} s: {f.webhook_per_second:,.0f} "
        f"answered/s, {f.acked_per_second:,.0f} acknowledged (2xx)/s; "
        f"statuses {dict(sorted(f.statuses.items()))}",
        f"  latency   written->answered p50 {ms(lat['p50'])} p95 {ms(lat['p95'])} "
        f"p99 {ms(lat['p99'])} max {ms(lat['max'])} ms (n={lat['n']:,})",
    ]
    if rate_mode and due:
        lines.append(
            f"            due->answered (incl. waiting for a free connection) p50 "
            f"{ms(due['p50'])} p99 {ms(due['p99'])} max {ms(due['max'])} ms"
        )
    if step.workers:
        lines += _stored_lines(f) + _ussd_lines(f)
    lines += usage_lines(step) + cost_lines(step)
    lines += [
        f"check       {'ok  ' if c.ok else 'FAIL'} {c.name}: expected {c.expected}, "
        f"observed {c.observed}"
        for c in f.checks
    ]
    return lines


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.2f}" for x in load)


def _stored_lines(f: Figures) -> list[str]:
    a, v = f.ack_to_processed_ms, f.ack_to_visible_ms
    buckets = f.buckets or [0.0]
    return [
        f"stored      confirmed votes {f.confirmed:,} in the phase: "
        f"{f.confirmed_per_second:,.0f}/s "
        f"(per {len(buckets)} x 5 s: min {min(buckets):,.0f}, median "
        f"{sorted(buckets)[len(buckets) // 2]:,.0f}, max {max(buckets):,.0f}); all messages "
        f"processed {f.processed_per_second:,.0f}/s",
        "  each 5 s  " + " ".join(f"{x:,.0f}" for x in buckets) + " confirmed votes/s",
        f"  ack->processed_at (worker's stamp, before its commit) p50 {ms(a['p50'])} "
        f"p99 {ms(a['p99'])} max {ms(a['max'])} ms (n={a['n']:,})",
        f"  ack->visible as done (committed; sampled probes) p50 {ms(v['p50'])} "
        f"p99 {ms(v['p99'])} max {ms(v['max'])} ms (n={v['n']:,}; upper bounds, "
        f"{ms(f.probe_resolution_ms)} ms late at most on average)",
        f"  drain     {f.drain.get('seconds', 0):.1f} s after the load until nothing was pending "
        f"({f.drain.get('pending_left', '?')} left); replies by status {f.replies}",
        _batch_line(f),
    ]


def _batch_line(f: Figures) -> str:
    sizes = f.batch_sizes or [0]
    return (
        f"  batches   {len(f.batch_sizes):,} intake jobs for {f.processed:,} messages: "
        f"{f.processed / max(1, len(f.batch_sizes)):.1f} a job on average, median "
        f"{sizes[len(sizes) // 2]}, largest {sizes[-1]} (BATCH_SIZE is the most)"
    )


def cost_lines(step: Step) -> list[str]:
    """CPU milliseconds per message: the figure that holds whoever else shares the machine."""
    f = step.figures
    # USSD hops go through the same web processes as the webhooks.
    requests = f.webhook_per_second * f.seconds + f.ussd.get("hops", {}).get("n", 0)
    processed = max(1.0, f.processed_per_second * f.seconds)
    roles = {
        "web": ("web ",),
        "intake workers": ("worker ",),
        "replies workers": ("replies",),
        "postgres backends": ("postgres backends",),
        "redis": ("redis",),
        "load generator": ("load generator",),
    }
    spent = {
        name: sum(u.cpu_seconds for u in step.usage if u.role.startswith(prefixes))
        for name, prefixes in roles.items()
    }
    per_request = ", ".join(
        f"{name} {1000 * spent[name] / max(1.0, requests):.2f}"
        for name in ("web", "redis", "load generator")
    )
    lines = [
        f"CPU/request {per_request} ms per HTTP request answered ({requests:,.0f}: SMS "
        "webhooks and USSD hops)"
    ]
    if step.workers:
        per_message = ", ".join(
            f"{name} {1000 * spent[name] / processed:.2f}"
            for name in ("intake workers", "replies workers", "postgres backends")
        )
        lines.append(
            f"CPU/message {per_message} ms per message processed in the phase ({processed:,.0f})"
        )
        total = projected_cost_ms(step)
        cpus = os.cpu_count() or 1
        lines.append(
            f"projection  {total:.1f} ms of CPU per message, all processes but the load "
            f"generator: {cpus} CPUs of our own would carry about {1000 * cpus / total:,.0f} "
            "messages/s at these batch sizes (a projection from CPU costs, not a measurement)"
        )
    return lines


def projected_cost_ms(step: Step) -> float:
    """CPU ms one message costs end to end: its share of web and Redis, worker, reply, DB."""
    f = step.figures
    requests = max(1.0, f.webhook_per_second * f.seconds + f.ussd.get("hops", {}).get("n", 0))
    processed = max(1.0, f.processed_per_second * f.seconds)
    front = sum(u.cpu_seconds for u in step.usage if u.role.startswith(("web ", "redis")))
    back = sum(
        u.cpu_seconds
        for u in step.usage
        if u.role.startswith(("worker ", "replies", "postgres backends"))
    )
    return float(1000 * (front / requests + back / processed))


def _ussd_lines(f: Figures) -> list[str]:
    u = f.ussd
    if not u or not u.get("sessions"):
        return []
    h = u["hops"]
    lines = [
        f"USSD        {u['started']} sessions started, {u['completed']} completed, "
        f"{u['abandoned']} stopped by the end of the phase, errors {u['errors'] or 0}",
        f"  hop       p50 {ms(h['p50'])} p95 {ms(h['p95'])} p99 {ms(h['p99'])} "
        f"max {ms(h['max'])} ms (n={h['n']:,} hops); "
        + ", ".join(f"{hop} p99 {ms(p['p99'])}" for hop, p in u["by_hop"].items()),
    ]
    lines += [f"  example   {kind}: {text!r}" for kind, text in u["examples"].items()]
    return lines


def usage_lines(step: Step) -> list[str]:
    lines = [
        f"processes   CPU over the {step.cpu_seconds:.1f} s phase, peak RSS (VmHWM), and the"
        " time ready to run but waiting for a CPU (every thread's, added up)",
        "  | process | n | CPU s | % of one core | waited for a CPU s | peak RSS MB (largest) |",
        "  |---|---:|---:|---:|---:|---:|",
    ]
    ours = 0.0
    for u in step.usage:
        ours += u.cpu_seconds
        waited = "-" if u.waited_seconds is None else f"{u.waited_seconds:.1f}"
        lines.append(
            f"  | {u.role} | {u.processes} | {u.cpu_seconds:.1f} | "
            f"{100 * u.cpu_seconds / step.cpu_seconds:.0f} | {waited} | {u.rss_peak_mb:.0f} |"
        )
    other = step.machine_busy - ours
    lines.append(
        f"  | everything else on the machine | | {other:.1f} | "
        f"{100 * other / step.cpu_seconds:.0f} | | |"
    )
    return lines


def targets_table(step: Step, ceiling: Step | None, database: str, mode: str) -> list[str]:
    f = step.figures
    ratio = f.webhook_per_second / ceiling.figures.webhook_per_second if ceiling else math.nan
    votes_ratio = (
        f.confirmed_per_second / ceiling.figures.webhook_per_second if ceiling else math.nan
    )
    rss = worker_rss([step])
    ussd = ussd_p99(step)
    projected = 1000 * (os.cpu_count() or 1) / projected_cost_ms(step)
    sessions = f.ussd.get("sessions", 0) if f.ussd else 0
    rows = [
        (
            "confirmed votes/s sustained",
            "≥1,000 (PostgreSQL, 60 s)",
            f"{f.confirmed_per_second:,.0f} ({database}, {f.seconds:.0f} s)",
            f.confirmed_per_second >= 1000 and database == "postgresql" and f.seconds >= 60,
        ),
        (
            "messages/s projected from CPU costs, were the CPUs ours alone",
            "≥1,000",
            f"{projected:,.0f} messages/s ({projected_cost_ms(step):.1f} ms CPU each)",
            projected >= 1000,
        ),
        (
            "webhook answered/s ÷ ceiling",
            "≥0.6",
            f"{f.webhook_per_second:,.0f} ÷ {ceiling.figures.webhook_per_second:,.0f} = {ratio:.2f}"
            + (" (a set rate: a lower bound)" if mode != "max" else "")
            if ceiling
            else "not measured",
            ratio >= 0.6,
        ),
        ("confirmed votes/s ÷ ceiling", "-", f"{votes_ratio:.2f}", None),
        (
            "webhook p99",
            "≤50 ms at 1,000 votes/s",
            f"{ms(f.latency_ms['p99'])} ms at {f.webhook_per_second:,.0f} req/s, "
            f"{f.confirmed_per_second:,.0f} votes/s",
            f.latency_ms["p99"] <= 50 and f.confirmed_per_second >= 1000,
        ),
        (
            "ack→stored p99 (committed)",
            "≤2 s",
            f"{ms(f.ack_to_visible_ms['p99'])} ms at {f.confirmed_per_second:,.0f} votes/s",
            f.ack_to_visible_ms["p99"] <= 2000,
        ),
        (
            "USSD hop p99",
            "≤50 ms at 200 sessions",
            f"{ms(ussd)} ms ({sessions} sessions in flight)",
            ussd <= 50 and sessions >= 200,
        ),
        ("worker peak RSS", "≤200 MB with 1M registry", f"{rss:.0f} MB", rss <= 200),
    ]
    lines = ["| figure | target | measured | met |", "|---|---|---|---|"]
    for name, target, measured, met in rows:
        lines.append(f"| {name} | {target} | {measured} | {mark(met)} |")
    return lines


def mark(met: bool | None) -> str:
    """A target's verdict in a table: a miss stands out; None is a figure shown, not judged."""
    return "-" if met is None else ("yes" if met else "**no**")


def ussd_p99(step: Step) -> float:
    ussd = step.figures.ussd
    return float(ussd.get("hops", {}).get("p99", math.nan)) if ussd else math.nan


def worker_rss(steps: list[Step]) -> float:
    """The largest peak RSS of any worker process in these steps, MB."""
    workers = [u.rss_peak_mb for s in steps for u in s.usage if u.role.startswith("worker")]
    return max(workers, default=math.nan)


def sweep_table(steps: list[Step]) -> list[str]:
    lines = [
        "| intake workers | webhook answered/s | confirmed votes/s | ack→stored p99 ms "
        "| worker CPU s (all) | load avg 1 min after |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for s in steps:
        cpu = sum(u.cpu_seconds for u in s.usage if u.role.startswith("worker"))
        lines.append(
            f"| {s.workers} | {s.figures.webhook_per_second:,.0f} | "
            f"{s.figures.confirmed_per_second:,.0f} | {ms(s.figures.ack_to_visible_ms['p99'])} | "
            f"{cpu:.1f} | {s.load_after[0]:.2f} |"
        )
    return lines
