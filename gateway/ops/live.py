"""The live figures: queues, throughput, latency, workers, outbound outcomes and alerts.

The page polls every 2 s and several operators may watch at once, so one snapshot is computed
at a time and shared through Redis for a moment. Every database query is bounded by a time
window that an index can serve (status, enqueued_at) or (status, updated_at): a full scan of a
day's messages every 2 s would slow the very pipeline being watched.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from rq import Worker
from rq.serializers import JSONSerializer
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from gateway import inbox
from gateway.app import WebState
from gateway.models import InboundRow, OutboundRow
from gateway.ops import jobs
from gateway.ops.alerts import Signals, alerts
from gateway.ops.sqltime import LATENCY_EDGES, epoch_minute, quantile, seconds_between
from gateway.queues import INTAKE_LIST

SNAPSHOT_KEY = "consulta:ops:live"
SNAPSHOT_MILLISECONDS = 1500  # a little under the page's 2 s poll
BACKLOG_KEY = "consulta:ops:backlog"
BACKLOG_SAMPLES = 120
WINDOW_MINUTES = 60
INBOUND_STATUSES = ("pending", "done")
# Every status in OutboundRow's life, listed so the (status, updated_at) index can be used.
OUTBOUND_STATUSES = (
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "outbox",
    "opted_out",
    "capped",
    "blocked",
    "unknown",
)
OUTCOME_GROUPS = {  # what an operator asks about, in the order the page shows it
    "delivered": ("delivered",),
    "in flight": ("queued", "sending", "sent"),
    "failed": ("failed", "undelivered"),
    "opted out": ("opted_out",),
    "held back (cap, country)": ("capped", "blocked"),
    "unknown": ("unknown",),
    "outbox": ("outbox",),
}


def snapshot(state: WebState, latency_minutes: int) -> dict[str, Any]:
    """The figures, from the shared copy if one is fresh enough."""
    cached = state.redis.get(SNAPSHOT_KEY)
    if cached:
        return dict(json.loads(cached))
    figures = compute(state, latency_minutes)
    state.redis.set(SNAPSHOT_KEY, json.dumps(figures), px=SNAPSHOT_MILLISECONDS)
    return figures


def forget_snapshot(redis: Redis) -> None:
    """After an operator acts, the next poll must show the result, not the old copy."""
    redis.delete(SNAPSHOT_KEY)


def compute(state: WebState, latency_minutes: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    queues = queue_depths(state.redis)
    workers = alive_workers(state.redis)
    figures = _database_figures(state, now, latency_minutes)
    backlog = sum(q["waiting"] for q in queues)
    signals = Signals(
        workers_alive=len(workers),
        backlog_samples=_note_backlog(state.redis, now.timestamp(), backlog),
        failed_jobs=sum(q["failed"] for q in queues),
        oldest_pending_seconds=figures["oldest_pending_seconds"],
        sweep_after_seconds=state.settings.sweep_after_seconds,
    )
    return figures | {
        "generated_at": now.isoformat(timespec="seconds"),
        "queues": queues,
        "backlog": backlog,
        "workers": workers,
        "failed_jobs": [job.as_dict() for job in jobs.failed_jobs(state.redis)],
        "alerts": [{"level": a.level, "kind": a.kind, "text": a.text} for a in alerts(signals)],
    }


def _database_figures(state: WebState, now: datetime, latency_minutes: int) -> dict[str, Any]:
    with state.sessions() as session:
        return {
            "throughput": throughput(session, state.dialect, now),
            "latency": latency(session, state.dialect, now, latency_minutes),
            "outbound": outbound_outcomes(session, now),
            "oldest_pending_seconds": oldest_pending_seconds(session, now),
        }


# --- Redis and RQ ------------------------------------------------------------------------------


def queue_depths(redis: Redis) -> list[dict[str, Any]]:
    """New messages (IDs, and the Redis inbox), then each RQ queue and its registries."""
    ids, held = int(redis.llen(INTAKE_LIST)), inbox.waiting(redis)
    depths = [
        {"name": "new messages", "waiting": ids, "started": 0, "scheduled": 0, "failed": 0},
        # Acknowledged with ACK_AFTER=redis and not yet written to the database.
        {"name": "redis inbox", "waiting": held, "started": 0, "scheduled": 0, "failed": 0},
    ]
    for name in jobs.JOB_QUEUES:
        queue = jobs.job_queue(redis, name)
        depths.append(
            {
                "name": name,
                "waiting": queue.count,
                # cleanup=False: looking must not move jobs around.
                "started": queue.started_job_registry.get_job_count(cleanup=False),
                "scheduled": queue.scheduled_job_registry.get_job_count(cleanup=False),
                "failed": queue.failed_job_registry.get_job_count(cleanup=False),
            }
        )
    return depths


def alive_workers(redis: Redis) -> list[dict[str, Any]]:
    """RQ's registered workers; a dead one drops out when its heartbeat key expires."""
    workers = Worker.all(connection=redis, serializer=JSONSerializer)
    return sorted(
        (
            {
                "name": worker.name,
                "queues": ", ".join(worker.queue_names()),
                "state": str(worker.get_state()),
                "current_job": worker.get_current_job_id(),
                "jobs_done": worker.successful_job_count,
                "jobs_failed": worker.failed_job_count,
                "last_heartbeat": _iso(worker.last_heartbeat),
            }
            for worker in workers
        ),
        key=lambda w: str(w["name"]),
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _note_backlog(redis: Redis, at: float, backlog: int) -> list[tuple[float, int]]:
    """Keep a short history of the backlog, shared by all web workers; oldest first."""
    with redis.pipeline() as pipe:
        pipe.rpush(BACKLOG_KEY, json.dumps([at, backlog]))
        pipe.ltrim(BACKLOG_KEY, -BACKLOG_SAMPLES, -1)
        pipe.lrange(BACKLOG_KEY, 0, -1)
        *_, raw = pipe.execute()
    samples = [tuple(json.loads(item)) for item in raw]
    return [(float(t), int(size)) for t, size in samples if at - float(t) <= 300]


# --- the database ------------------------------------------------------------------------------


def _window_start(now: datetime) -> tuple[int, datetime]:
    """The first of the last 60 whole minutes, as a minute number and as a time."""
    first = int(now.timestamp()) // 60 - (WINDOW_MINUTES - 1)
    return first, datetime.fromtimestamp(first * 60, UTC)


def _recent_inbound(since: datetime) -> list[Any]:
    # enqueued_at >= received_at always, so this keeps every message received since `since`
    # while letting the (status, enqueued_at) index find them.
    return [
        InboundRow.status.in_(INBOUND_STATUSES),
        InboundRow.enqueued_at >= since,
        InboundRow.received_at >= since,
    ]


def throughput(session: Session, dialect: str, now: datetime) -> dict[str, Any]:
    """Messages in and replies out, per minute and channel, over the last hour."""
    first, since = _window_start(now)
    minute_in = epoch_minute(InboundRow.received_at, dialect).label("minute")
    arrived = session.execute(
        select(minute_in, InboundRow.channel, func.count())
        .where(*_recent_inbound(since))
        .group_by("minute", InboundRow.channel)
    ).all()
    minute_out = epoch_minute(OutboundRow.created_at, dialect).label("minute")
    replied = session.execute(
        select(minute_out, InboundRow.channel, func.count())
        .join(InboundRow, InboundRow.id == OutboundRow.inbound_id)
        .where(*_recent_inbound(since), OutboundRow.created_at >= since)
        .group_by("minute", InboundRow.channel)
    ).all()
    return _series(first, [("in", *row) for row in arrived] + [("out", *row) for row in replied])


def _series(first: int, rows: list[tuple[str, int, str, int]]) -> dict[str, Any]:
    """60 values per (direction, channel); SMS in and out always present so the chart is stable."""
    values: dict[tuple[str, str], list[int]] = {("in", "sms"): [0] * 60, ("out", "sms"): [0] * 60}
    for direction, minute, channel, count in rows:
        index = int(minute) - first
        if 0 <= index < WINDOW_MINUTES:
            values.setdefault((direction, channel), [0] * 60)[index] += int(count)
    names = {"in": "in", "out": "replies out"}
    return {
        "minutes": [(first + i) * 60 for i in range(WINDOW_MINUTES)],
        "series": [
            {"key": f"{d}:{c}", "label": f"{c.upper()} {names[d]}", "values": v}
            for (d, c), v in sorted(values.items())
        ],
    }


def latency(session: Session, dialect: str, now: datetime, minutes: int) -> dict[str, Any]:
    """Receipt to stored vote, for messages counted in the last few minutes."""
    _, since = _window_start(now)
    seconds = seconds_between(InboundRow.received_at, InboundRow.processed_at, dialect)
    buckets = [func.coalesce(func.sum(case((seconds <= e, 1), else_=0)), 0) for e in LATENCY_EDGES]
    row = session.execute(
        select(*buckets, func.count()).where(
            *_recent_inbound(since),
            InboundRow.status == "done",
            InboundRow.processed_at >= now - timedelta(minutes=minutes),
        )
    ).one()
    cumulative = [int(value) for value in row]
    return {
        "minutes": minutes,
        "count": cumulative[-1],
        "p50": quantile(LATENCY_EDGES, cumulative, 0.5),
        "p95": quantile(LATENCY_EDGES, cumulative, 0.95),
    }


def outbound_outcomes(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Replies by outcome over the last hour, with the segments the carriers bill."""
    _, since = _window_start(now)
    rows = session.execute(
        select(OutboundRow.status, func.count(), func.coalesce(func.sum(OutboundRow.segments), 0))
        .where(OutboundRow.status.in_(OUTBOUND_STATUSES), OutboundRow.updated_at >= since)
        .group_by(OutboundRow.status)
    ).all()
    by_status = {status: (int(count), int(segments)) for status, count, segments in rows}
    return [
        {
            "outcome": group,
            "messages": sum(by_status.get(s, (0, 0))[0] for s in statuses),
            "segments": sum(by_status.get(s, (0, 0))[1] for s in statuses),
        }
        for group, statuses in OUTCOME_GROUPS.items()
    ]


def oldest_pending_seconds(session: Session, now: datetime) -> float | None:
    oldest = session.scalar(
        select(func.min(InboundRow.received_at)).where(InboundRow.status == "pending")
    )
    return round((now - oldest).total_seconds(), 1) if oldest else None
