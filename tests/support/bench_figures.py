"""A benchmark phase's figures, as `bench.analysis` computes them, for tests of its reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from bench.analysis import Figures


def figures(**changed: Any) -> Figures:
    base = Figures(
        seconds=60.0,
        requests=70_000,
        statuses=Counter({200: 70_000}),
        webhook_per_second=1_200.0,
        acked_per_second=1_190.0,
        latency_ms={"n": 70_000, "p50": 1.0, "p95": 5.0, "p99": 13.0, "max": 90.0},
        due_latency_ms={},
        confirmed=63_000,
        confirmed_per_second=1_050.0,
        processed_per_second=1_150.0,
        buckets=[1_020.0, 1_080.0],
        ack_to_processed_ms={},
        ack_to_visible_ms={"n": 6_000, "p50": 160.0, "p95": 300.0, "p99": 320.0, "max": 500.0},
        ussd={"sessions": 200, "hops": {"p99": 21.5}},
        drain={},
    )
    return replace(base, **changed)
