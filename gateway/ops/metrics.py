"""`GET /metrics`: the gateway in Prometheus' text format, behind a token or an address list.

The figures are read from the database and Redis when Prometheus scrapes, not counted in this
process: the web workers, the RQ workers and the pump are separate processes, and the database
already holds every message. So any web worker answers a scrape with the same numbers. Each
scrape costs a few aggregate queries over the message tables; at national scale scrape every
30-60 s rather than every few seconds.
"""

from __future__ import annotations

import hmac
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from gateway import flood
from gateway.app import WebState
from gateway.models import ConsultationRow, InboundRow, OutboundRow, VoteRow
from gateway.ops import live
from gateway.ops.config import OpsConfig, ops_config
from gateway.ops.sqltime import LATENCY_EDGES, seconds_between
from gateway.providers.network import allowed_source
from voting.rules import Reason

blueprint = Blueprint("metrics", __name__)
REGISTRY = "consulta_metrics"
REJECTIONS = frozenset(reason.value for reason in Reason)


@blueprint.get("/metrics")
def scrape() -> Response:
    _require_access(ops_config(current_app))
    body = generate_latest(_registry())
    return Response(
        body, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
    )


def _require_access(config: OpsConfig) -> None:
    """A Bearer token or an allowed source address; with neither configured, nobody."""
    if not config.metrics_token and not config.metrics_networks:
        abort(403, "metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS")
    given = request.headers.get("Authorization", "")
    if config.metrics_token and hmac.compare_digest(
        given.encode(), f"Bearer {config.metrics_token}".encode()
    ):
        return
    if config.metrics_networks and allowed_source(request.remote_addr, config.metrics_networks):
        return
    abort(401 if config.metrics_token else 403, "a valid Bearer token is required")


def _registry() -> CollectorRegistry:
    """One registry per app, built on the first scrape; never a global one."""
    registry: CollectorRegistry | None = current_app.extensions.get(REGISTRY)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(GatewayCollector(current_app.extensions["consulta"]))
        current_app.extensions[REGISTRY] = registry
    return registry


class GatewayCollector(Collector):
    def __init__(self, state: WebState) -> None:
        self.state = state

    def describe(self) -> list[Metric]:
        return []  # so registering queries nothing; the names are only known at scrape time

    def collect(self) -> Iterator[Metric]:
        yield from queue_metrics(self.state)
        yield from flood_metrics(self.state)
        with self.state.sessions() as session:
            yield from inbound_metrics(session, self.state.dialect)
            yield from vote_metrics(session)
            yield from outbound_metrics(session)


def queue_metrics(state: WebState) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "consulta_queue_jobs", "Jobs in each RQ queue by state.", labels=["queue", "state"]
    )
    for depth in live.queue_depths(state.redis):
        for key in ("waiting", "started", "scheduled", "failed"):
            jobs.add_metric([depth["name"], key], depth[key])
    yield jobs
    alive = live.alive_workers(state.redis)
    yield GaugeMetricFamily(
        "consulta_workers_alive", "RQ workers with a live heartbeat.", len(alive)
    )


def flood_metrics(state: WebState) -> Iterator[Metric]:
    """Messages acknowledged but refused by flood control: counted in Redis as they are refused."""
    refused = CounterMetricFamily(
        "consulta_flood_refused",
        "Messages (USSD: hops) acknowledged but not stored, by channel and limit.",
        labels=["channel", "reason"],
    )
    counts = Counter(flood.refused_counts(state.redis))
    if state.ussd_sessions is not None:  # USSD_REDIS_URL: the hops' refusals are counted there
        counts.update(flood.refused_counts(state.ussd_sessions))
    for (channel, reason), count in sorted(counts.items()):
        refused.add_metric([channel, reason], count)
    yield refused


def _inbound_rows(session: Session, dialect: str) -> list[Any]:
    """One pass over the messages: counts by channel, status and outcome, with latency buckets."""
    seconds = seconds_between(InboundRow.received_at, InboundRow.processed_at, dialect)
    buckets = [func.coalesce(func.sum(case((seconds <= e, 1), else_=0)), 0) for e in LATENCY_EDGES]
    latency_sum = func.coalesce(func.sum(seconds), 0.0)
    query = select(
        InboundRow.channel,
        InboundRow.status,
        InboundRow.outcome,
        func.count(),
        latency_sum,
        *buckets,
    ).group_by(InboundRow.channel, InboundRow.status, InboundRow.outcome)
    return list(session.execute(query).all())


def inbound_metrics(session: Session, dialect: str) -> Iterator[Metric]:
    received = CounterMetricFamily(
        "consulta_inbound_received", "Messages acknowledged, by channel.", labels=["channel"]
    )
    processed = CounterMetricFamily(
        "consulta_inbound_processed", "Messages judged, by outcome.", labels=["channel", "outcome"]
    )
    rejected = CounterMetricFamily(
        "consulta_votes_rejected", "Votes refused, by reason.", labels=["channel", "reason"]
    )
    pending = GaugeMetricFamily(
        "consulta_inbound_pending", "Messages not yet judged.", labels=["channel"]
    )
    totals: dict[str, float] = defaultdict(float)
    latency: dict[str, list[float]] = {}
    for channel, status, outcome, count, seconds, *cumulative in _inbound_rows(session, dialect):
        totals[channel] += count
        if status == "pending":
            pending.add_metric([channel], count)
            continue
        processed.add_metric([channel, outcome or "none"], count)
        if outcome in REJECTIONS:
            rejected.add_metric([channel, outcome], count)
        sums = latency.setdefault(channel, [0.0] * (len(LATENCY_EDGES) + 2))
        for i, value in enumerate([*cumulative, count, seconds]):
            sums[i] += float(value)
    for channel, total in totals.items():
        received.add_metric([channel], total)
    yield from (received, processed, rejected, pending, _latency_histogram(latency))


def _latency_histogram(latency: dict[str, list[float]]) -> Metric:
    histogram = HistogramMetricFamily(
        "consulta_intake_latency_seconds",
        "From receipt to the stored vote (or other answer), per message.",
        labels=["channel"],
    )
    for channel, sums in sorted(latency.items()):
        *cumulative, count, total_seconds = sums
        buckets = [(str(edge), n) for edge, n in zip(LATENCY_EDGES, cumulative, strict=True)]
        histogram.add_metric([channel], [*buckets, ("+Inf", count)], sum_value=total_seconds)
    return histogram


def vote_metrics(session: Session) -> Iterator[Metric]:
    votes = GaugeMetricFamily(
        "consulta_votes_counted", "Votes that count now, by consultation.", labels=["consultation"]
    )
    rows = session.execute(
        select(ConsultationRow.slug, func.count(VoteRow.receipt))
        .join(VoteRow, VoteRow.consultation_id == ConsultationRow.id)
        .where(VoteRow.replaced_at.is_(None))
        .group_by(ConsultationRow.slug)
    )
    for slug, count in rows:
        votes.add_metric([slug], count)
    yield votes


def outbound_metrics(session: Session) -> Iterator[Metric]:
    labels = ["provider", "status"]
    messages = GaugeMetricFamily("consulta_outbound_messages", "Replies by status.", labels=labels)
    segments = GaugeMetricFamily(
        "consulta_outbound_segments",
        "SMS segments of those replies (what is billed).",
        labels=labels,
    )
    rows = session.execute(
        select(
            OutboundRow.provider,
            OutboundRow.status,
            func.count(),
            func.coalesce(func.sum(OutboundRow.segments), 0),
        ).group_by(OutboundRow.provider, OutboundRow.status)
    )
    for provider, status, count, billed in rows:
        messages.add_metric([provider, status], count)
        segments.add_metric([provider, status], billed)
    yield from (messages, segments)
