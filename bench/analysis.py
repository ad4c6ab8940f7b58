"""What one load step measured, and whether the database agrees with what was acknowledged.

The load process's records say what was sent and answered; the database says what was stored.
Only columns that carry no personal data are read (MessageSid, status, outcome, times and
counts), with plain SQL, so the checks hold whatever the gateway seals or hashes.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench import plan as plans
from gateway.db import sqlalchemy_url

BUCKET_SECONDS = 5.0
VALID_VOTES = (plans.VOTE, plans.REVOTE)


@dataclass(frozen=True)
class Sent:
    position: int
    kind: int
    duplicate: bool
    sid: str
    person: int
    option: int
    status: int  # HTTP status; -1 for no answer
    due: float  # wall times
    sent: float
    done: float


@dataclass
class Check:
    name: str
    expected: object
    observed: object
    info: bool = False  # reported, never a failure

    @property
    def ok(self) -> bool:
        return self.info or self.expected == self.observed


@dataclass
class Figures:
    seconds: float
    requests: int
    statuses: Counter[int]
    webhook_per_second: float  # answered requests
    acked_per_second: float
    latency_ms: dict[str, float]  # written -> answered
    due_latency_ms: dict[str, float]  # due (open loop) -> answered
    confirmed: int
    confirmed_per_second: float
    processed_per_second: float
    buckets: list[float]  # confirmed votes/s per BUCKET_SECONDS of the timed phase
    ack_to_processed_ms: dict[str, float]
    ack_to_visible_ms: dict[str, float]
    ussd: dict[str, Any]
    drain: dict[str, Any]
    checks: list[Check] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)  # messages per intake job
    probe_resolution_ms: float = math.nan  # mean uncertainty of ack_to_visible_ms
    processed: int = 0  # messages of this step processed, during the phase or the drain
    voters: int = 0  # distinct people with a counted vote in this step (SMS and USSD)
    replies: dict[str, int] = field(default_factory=dict)


def percentiles(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """Nearest-rank p50, p95, p99 and the maximum, times `scale` (seconds to ms by default)."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": math.nan, "p95": math.nan, "p99": math.nan, "max": math.nan}

    def rank(p: float) -> float:
        return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1] * scale

    return {
        "n": len(ordered),
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "max": ordered[-1] * scale,
    }


def read_sent(path: Path) -> list[Sent]:
    rows = []
    for line in path.read_text().splitlines():
        p, k, d, sid, person, option, status, due, sent, done = line.split("\t")
        rows.append(
            Sent(
                int(p),
                int(k),
                d == "1",
                sid,
                int(person),
                int(option),
                int(status),
                float(due),
                float(sent),
                float(done),
            )
        )
    return rows


def epoch(value: Any) -> float | None:
    """A stored UTC time (naive, or text on SQLite) as seconds since the epoch."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC).timestamp()


class Database:
    def __init__(self, url: str) -> None:
        # A plain engine: the gateway's SQLite engine takes the write lock on every BEGIN.
        self.engine = create_engine(sqlalchemy_url(url))

    def rows(self, where: str, **params: Any) -> dict[str, tuple[str, str | None, float | None]]:
        # `where` is always one of this module's literals; the values are bound parameters.
        columns = "SELECT external_id, status, outcome, processed_at FROM inbound_messages"
        query = text(f"{columns} WHERE {where}")  # noqa: S608
        with self.engine.connect() as db:
            return {r[0]: (r[1], r[2], epoch(r[3])) for r in db.execute(query, params)}

    def scalar(self, query: str) -> int:
        with self.engine.connect() as db:
            return int(db.execute(text(query)).scalar() or 0)

    def counts(self) -> dict[str, int]:
        consultation = "(SELECT id FROM consultations WHERE slug = 'bench')"
        return {
            "participations": self.scalar(
                f"SELECT count(*) FROM participations WHERE consultation_id = {consultation}"  # noqa: S608
            ),
            "votes": self.scalar(
                f"SELECT count(*) FROM votes WHERE consultation_id = {consultation}"  # noqa: S608
            ),
            "standing_votes": self.scalar(
                f"SELECT count(*) FROM votes WHERE consultation_id = {consultation} "  # noqa: S608
                "AND replaced_at IS NULL"
            ),
            "inbound_duplicates": self.scalar(
                "SELECT count(*) FROM (SELECT provider, external_id FROM inbound_messages "
                "GROUP BY provider, external_id HAVING count(*) > 1) AS d"
            ),
        }

    def replies(self) -> dict[str, int]:
        with self.engine.connect() as db:
            query = text("SELECT status, count(*) FROM outbound_messages GROUP BY status")
            return {status: int(n) for status, n in db.execute(query)}

    def close(self) -> None:
        self.engine.dispose()


def analyse(out: Path, db: Database, ussd_tag: str, rate_mode: bool) -> Figures:
    summary = json.loads((out / "summary.json").read_text())
    sent = read_sent(out / "requests.tsv")
    start, end = summary["start_wall"], summary["end_wall"]
    seconds = end - start
    stored = db.rows("provider = 'twilio'")
    ussd_rows = db.rows("channel = 'ussd' AND external_id LIKE :p", p=f"ussd-ATUid_{ussd_tag}_%")
    first_ack = _first_acks(sent)
    answered = [s for s in sent if s.status > 0]
    confirmed_times = [
        t
        for sid in first_ack
        if (row := stored.get(sid)) and row[1] == "confirmed" and (t := row[2]) is not None
    ] + [t for status, outcome, t in ussd_rows.values() if outcome == "confirmed" and t]
    processed = [row[2] for sid in first_ack if (row := stored.get(sid)) and row[2]]
    processed += [t for _, _, t in ussd_rows.values() if t]
    in_window = [t for t in confirmed_times if start <= t <= end]
    probes = summary["probes"] or {"seen": []}
    # A job stamps every message of its batch with one processed_at: equal stamps, one batch.
    stamps = [row[2] for sid, row in stored.items() if sid in first_ack and row[2]]
    stamps += [t for _, _, t in ussd_rows.values() if t]
    figures = Figures(
        seconds=seconds,
        requests=len(sent),
        statuses=Counter(s.status for s in sent),
        webhook_per_second=len(answered) / seconds,
        acked_per_second=sum(s.status == 200 for s in sent) / seconds,
        latency_ms=percentiles([s.done - s.sent for s in answered]),
        due_latency_ms=percentiles([s.done - s.due for s in answered]) if rate_mode else {},
        confirmed=len(in_window),
        confirmed_per_second=len(in_window) / seconds,
        processed_per_second=sum(start <= t <= end for t in processed) / seconds,
        buckets=_buckets(in_window, start, end),
        ack_to_processed_ms=percentiles(
            [
                t - at
                for sid, at in first_ack.items()
                if (t := stored.get(sid, ("", None, None))[2]) is not None
            ]
        ),
        ack_to_visible_ms=percentiles([seen[1] - seen[0] for seen in probes["seen"]]),
        ussd=_ussd(summary.get("ussd"), ussd_rows),
        drain=summary.get("drain") or {},
    )
    figures.batch_sizes = sorted(Counter(stamps).values())
    # How late the prober may have been: from the poll before the one that saw each message.
    gaps = [seen[1] - seen[2] for seen in probes["seen"] if len(seen) > 2]
    figures.probe_resolution_ms = 1000 * sum(gaps) / len(gaps) if gaps else math.nan
    figures.processed = len(stamps)
    return figures


def wait_until_done(db: Database, out: Path, seconds: float, stall: float = 60.0) -> float:
    """Poll until every acknowledged MessageSid is done (or no progress for `stall` s)."""
    acked = set(_first_acks(read_sent(out / "requests.tsv")))
    started = time.perf_counter()
    best, progressed = -1, started
    while time.perf_counter() - started < seconds and time.perf_counter() - progressed < stall:
        done = sum(
            row[0] == "done" for sid, row in db.rows("provider = 'twilio'").items() if sid in acked
        )
        if done == len(acked):
            break
        if done > best:
            best, progressed = done, time.perf_counter()
        time.sleep(1.0)
    return time.perf_counter() - started


def _first_acks(sent: list[Sent]) -> dict[str, float]:
    """sid -> wall time of its first 2xx, for every acknowledged MessageSid."""
    acks: dict[str, float] = {}
    for s in sorted(sent, key=lambda s: s.done):
        if s.status == 200 and s.sid not in acks:
            acks[s.sid] = s.done
    return acks


def _buckets(times: list[float], start: float, end: float) -> list[float]:
    count = max(1, int((end - start) // BUCKET_SECONDS))
    per = [0] * count
    for t in times:
        index = int((t - start) // BUCKET_SECONDS)
        if 0 <= index < count:
            per[index] += 1
    return [n / BUCKET_SECONDS for n in per]


def _ussd(record: dict[str, Any] | None, rows: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
    if not record:
        return {}
    every_hop = [s for hop in record["hops"].values() for s in hop]
    return {
        "sessions": record.get("sessions", 0),
        "started": record["started"],
        "completed": record["completed"],
        "abandoned": record["abandoned"],
        "errors": record["errors"],
        "examples": record["examples"],
        "hops": percentiles(every_hop),
        "by_hop": {hop: percentiles(values) for hop, values in record["hops"].items()},
        "stored": sum(r[0] == "done" and r[1] == "confirmed" for r in rows.values()),
        "recorded": len(rows),
        "completed_voters": record["completed_voters"],
    }


def check(figures: Figures, out: Path, db: Database, before: dict[str, int]) -> dict[str, int]:
    """Every acknowledged message ended counted or rejected exactly once; returns the counts."""
    sent = read_sent(out / "requests.tsv")
    stored = db.rows("provider = 'twilio'")
    acked = _first_acks(sent)
    by_sid = {s.sid: s for s in sent}  # a duplicate carries its original's kind and voter
    refused = {s.sid for s in sent if s.kind == plans.BAD_SIGNATURE}
    unanswered = {s.sid for s in sent if s.status != 200} - set(acked) - refused
    not_done = [sid for sid in acked if stored.get(sid, ("missing",))[0] != "done"]
    wrong = [
        sid
        for sid in acked
        if (k := by_sid[sid].kind) in plans.EXPECTED_OUTCOME
        and stored.get(sid, ("", ""))[1] != plans.EXPECTED_OUTCOME[k]
    ]
    voters = _voter_outcomes(acked, by_sid, stored)
    ussd_voters = len(set(figures.ussd.get("completed_voters", [])))
    counts = db.counts()
    figures.voters = len(voters) + ussd_voters
    figures.replies = db.replies()
    figures.checks = [
        Check(
            "acknowledged SMS stored and done, once each", len(acked), len(acked) - len(not_done)
        ),
        Check(
            "bad-signature requests answered 403",
            sum(1 for s in sent if s.kind == plans.BAD_SIGNATURE),
            sum(1 for s in sent if s.kind == plans.BAD_SIGNATURE and s.status == 403),
        ),
        Check("bad signatures stored", 0, len(refused & set(stored))),
        Check("invalid messages with the expected outcome", 0, len(wrong)),
        Check(
            "voters with exactly one 'confirmed' (rest already_voted)",
            len(voters),
            sum(1 for outcomes in voters.values() if _one_confirmed(outcomes)),
        ),
        Check(
            "USSD completed sessions stored as confirmed",
            figures.ussd.get("completed", 0),
            figures.ussd.get("stored", 0),
        ),
        Check(
            "participations (all steps) = voters with a valid vote",
            before["participations"] + figures.voters,
            counts["participations"],
        ),
        Check(
            "votes = participations (no duplicate votes)", counts["participations"], counts["votes"]
        ),
        Check(
            "standing votes = votes (none replaced under `first`)",
            counts["votes"],
            counts["standing_votes"],
        ),
        Check("inbound rows sharing a MessageSid", 0, counts["inbound_duplicates"]),
        Check(
            "unanswered requests (no 2xx) whose message was stored anyway",
            len(unanswered),
            len(unanswered & set(stored)),
            info=True,
        ),
    ]
    return counts


def _voter_outcomes(
    acked: dict[str, float], by_sid: dict[str, Sent], stored: dict[str, tuple[Any, ...]]
) -> dict[int, list[str | None]]:
    outcomes: defaultdict[int, list[str | None]] = defaultdict(list)
    for sid in acked:
        request = by_sid[sid]
        if request.kind in VALID_VOTES:
            outcomes[request.person].append(stored.get(sid, (None, None))[1])
    return dict(outcomes)


def _one_confirmed(outcomes: list[str | None]) -> bool:
    return outcomes.count("confirmed") == 1 and all(
        o in ("confirmed", "already_voted") for o in outcomes
    )


def ceiling_figures(out: Path) -> Figures:
    """The load process's records of a ceiling run: throughput and latency, nothing stored."""
    sent = read_sent(out / "requests.tsv")
    seconds = json.loads((out / "summary.json").read_text())["seconds"]
    answered = [s for s in sent if s.status > 0]
    return Figures(
        seconds=seconds,
        requests=len(sent),
        statuses=Counter(s.status for s in sent),
        webhook_per_second=len(answered) / seconds,
        acked_per_second=sum(s.status == 200 for s in sent) / seconds,
        latency_ms=percentiles([s.done - s.sent for s in answered]),
        due_latency_ms={},
        confirmed=0,
        confirmed_per_second=0.0,
        processed_per_second=0.0,
        buckets=[],
        ack_to_processed_ms={},
        ack_to_visible_ms={},
        ussd={},
        drain={},
    )
