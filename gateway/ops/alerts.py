"""What should catch an operator's eye, decided from plain figures (no framework, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GROWING_MIN_BACKLOG = 100  # below this a queue "growing" is noise, not news
GROWING_MIN_SECONDS = 20  # compare with a sample at least this old
GROWING_FACTOR = 1.2


@dataclass(frozen=True)
class Alert:
    level: str  # "critical" (act now) or "warning" (look soon)
    kind: str  # which figure it is about, so the page can colour that tile too
    text: str


@dataclass(frozen=True)
class Signals:
    workers_alive: int
    backlog_samples: Sequence[
        tuple[float, int]
    ]  # (unix time, messages and jobs waiting), oldest first
    failed_jobs: int
    oldest_pending_seconds: float | None
    sweep_after_seconds: int


def alerts(signals: Signals) -> list[Alert]:
    """Critical first: with no worker alive nothing else on the page will move."""
    found = [
        _no_worker(signals),
        _growing(signals.backlog_samples),
        _stuck(signals.oldest_pending_seconds, signals.sweep_after_seconds),
        _failed(signals.failed_jobs),
    ]
    present = [alert for alert in found if alert is not None]
    return sorted(present, key=lambda alert: alert.level != "critical")


def _no_worker(signals: Signals) -> Alert | None:
    if signals.workers_alive:
        return None
    return Alert(
        "critical", "workers", "No worker is alive: messages are recorded but nobody counts them."
    )


def _growing(samples: Sequence[tuple[float, int]]) -> Alert | None:
    if not samples:
        return None
    now, latest = samples[-1]
    older = [(at, size) for at, size in samples if now - at >= GROWING_MIN_SECONDS]
    if not older or latest < GROWING_MIN_BACKLOG:
        return None
    at, before = older[-1]  # the most recent sample that is old enough
    if latest < before * GROWING_FACTOR or latest == before:
        return None
    return Alert(
        "warning", "backlog", f"Backlog growing: {before:,} → {latest:,} in {now - at:.0f} s."
    )


def _stuck(oldest_seconds: float | None, sweep_after: int) -> Alert | None:
    # The sweep re-queues a message after `sweep_after`; twice that means it is not catching up.
    if oldest_seconds is None or oldest_seconds < 2 * sweep_after:
        return None
    return Alert("warning", "stuck", f"A message has waited {oldest_seconds:.0f} s to be counted.")


def _failed(count: int) -> Alert | None:
    if not count:
        return None
    noun = "job has" if count == 1 else "jobs have"
    return Alert("warning", "failed", f"{count} {noun} failed: retry or discard below.")
