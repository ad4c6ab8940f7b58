"""Acknowledgement to stored, as the database shows it: a sample of acknowledged messages watched
until the worker's commit makes each one visible as done.

The worker stamps `processed_at` when it starts judging a batch, before its commit, so that
stamp alone would flatter the figure by up to a batch's duration. The prober asks the database
itself, every `interval` seconds, which of the watched MessageSids are now `done`. A message's
stored time is the start of the first poll that saw it: an upper bound. The start of the poll
before it is the lower bound, and the gap between the two (the poll interval plus the query, more
on a loaded machine) is reported as the resolution. Only a sample is watched (every `every`-th
request) to keep the queries small.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

# One probe of the unique key (provider, external_id) per watched SID, the status read back (as
# `gateway.sql.by_unique_key` does). With `status = 'done' AND external_id IN (…)` the planner,
# whose statistics still showed an empty table, walked an index through every row of the run
# and tested each against the list: 20 to 55 ms a poll, twenty polls a second, on the CPUs the
# pipeline was being measured on (pg_stat_statements, runs 83 and 84).
WATCHED = {
    "postgresql": (
        "SELECT wanted.sid, one.status FROM unnest(%s::text[]) AS wanted(sid) "
        "JOIN LATERAL (SELECT status FROM inbound_messages WHERE provider = 'twilio' "
        "AND external_id = wanted.sid LIMIT 1) AS one ON true"
    ),
    "sqlite": (
        "SELECT external_id, status FROM inbound_messages WHERE provider = 'twilio' "
        "AND external_id IN ({})"
    ),
}
PENDING = "SELECT count(*) FROM inbound_messages WHERE status = 'pending'"
MIN_INTERVAL, MAX_INTERVAL = 0.05, 0.25
STALL_SECONDS = 60.0  # a drain that makes no progress this long is given up


class Prober:
    def __init__(self, database_url: str, every: int, wall: Callable[[float], float]) -> None:
        self.database_url, self.every, self.wall = database_url, every, wall
        self.watched: dict[str, float] = {}  # sid -> perf time of its 2xx, until seen done
        self.seen: list[tuple[float, float, float]] = []  # ack, stored by, not stored at (wall)
        self.previous_poll = 0.0
        self.polls, self.query_seconds, self.interval = 0, 0.0, MIN_INTERVAL
        self.task: asyncio.Task[None] | None = None
        self.connection: Any = None

    @classmethod
    def create(cls, config: dict[str, Any] | None, wall: Callable[[float], float]) -> Prober | None:
        if not config:
            return None
        prober = cls(config["database_url"], config["every"], wall)
        prober.task = asyncio.create_task(prober.poll_forever())
        return prober

    def watch(self, sid: str, acked_perf: float) -> None:
        self.watched[sid] = acked_perf

    async def poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self.watched:
                await self.poll_once()

    async def poll_once(self) -> None:
        started = time.perf_counter()
        sids = list(self.watched)
        if self.database_url.startswith("sqlite"):
            query = WATCHED["sqlite"].format(", ".join(["%s"] * len(sids)))
            found = await self._query(query, sids)
        else:
            found = await self._query(WATCHED["postgresql"], [sids])
        for sid, status in found:
            if status != "done":
                continue
            acked = self.watched.pop(sid, None)
            if acked is not None:
                lower = max(acked, self.previous_poll)
                self.seen.append((self.wall(acked), self.wall(started), self.wall(lower)))
        self.previous_poll = started
        took = time.perf_counter() - started
        self.polls += 1
        self.query_seconds += took
        # A growing backlog makes the query longer: poll less often rather than load the DB.
        self.interval = min(MAX_INTERVAL, max(MIN_INTERVAL, 2 * took))

    async def drain(self, seconds: float) -> dict[str, Any]:
        """Wait until nothing is pending and every watched message was seen; how long it took.

        Gives up after `seconds`, or sooner if the backlog stops shrinking for STALL_SECONDS.
        """
        started, deadline = time.perf_counter(), time.perf_counter() + seconds
        pending, lowest, progressed = -1, None, time.perf_counter()
        while time.perf_counter() < deadline and time.perf_counter() - progressed < STALL_SECONDS:
            rows = await self._query(PENDING, [])
            pending = int(rows[0][0])
            if pending == 0 and not self.watched:
                break
            if lowest is None or pending < lowest:
                lowest, progressed = pending, time.perf_counter()
            await asyncio.sleep(0.2)
        if self.task is not None:
            self.task.cancel()
        if self.watched:
            await self.poll_once()
        return {
            "seconds": time.perf_counter() - started,
            "pending_left": pending,
            "unseen_probes": len(self.watched),
        }

    def result(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "seen": self.seen,
            "unseen": len(self.watched),
            "polls": self.polls,
            "mean_query_ms": 1000 * self.query_seconds / max(1, self.polls),
        }

    async def _query(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        if self.database_url.startswith("sqlite"):
            return await asyncio.to_thread(self._sqlite, query.replace("%s", "?"), params)
        if self.connection is None:
            import psycopg

            self.connection = await psycopg.AsyncConnection.connect(
                self.database_url, autocommit=True
            )
        cursor = await self.connection.execute(query, params)
        return list(await cursor.fetchall())

    def _sqlite(self, query: str, params: list[str]) -> list[tuple[Any, ...]]:
        path = self.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            return list(db.execute(query, params).fetchall())
