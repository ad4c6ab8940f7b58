"""Time arithmetic in SQL, which SQLite and PostgreSQL spell differently.

The figures are aggregated in the database: at a national peak the last hour holds millions of
messages, far too many to fetch and bucket in Python.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Integer, cast, func

Column = Any  # a SQLAlchemy column expression of UTCDateTime

LATENCY_EDGES = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def epoch_minute(column: Column, dialect: str) -> Any:
    """Whole minutes since 1970 (UTC): one integer per minute, the same on both databases."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / 60), Integer)
    # Naive UTC text in SQLite: strftime('%s') reads it as UTC.
    return cast(func.strftime("%s", column), Integer) // 60


def seconds_between(start: Column, end: Column, dialect: str) -> Any:
    if dialect == "postgresql":
        return cast(func.extract("epoch", end - start), Float)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def quantile(edges: tuple[float, ...], cumulative: list[int], q: float) -> float | None:
    """Estimate a quantile from cumulative bucket counts, as Prometheus' histogram_quantile.

    `cumulative[i]` counts values <= edges[i]; the last entry counts everything (+Inf). Within a
    bucket values are taken as evenly spread; beyond the last edge the answer is that edge.
    """
    total = cumulative[-1] if cumulative else 0
    if total == 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for edge, count in zip(edges, cumulative, strict=False):
        if count >= rank:
            share = (rank - below) / (count - below) if count > below else 1.0
            return lower + (edge - lower) * share
        lower, below = edge, count
    return edges[-1]
