"""The fault suite's fixtures and tools: our own Redis, a cut-able database link, a load of
signed Twilio webhooks that retries like Twilio's fallback, and the audit that counts what was
lost or doubled. Each test reports its N and its failures (tests/fault/scale.py).
"""

from __future__ import annotations

import heapq
import http.client
import itertools
import random
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.inbox import BATCH_PREFIX, BATCHES, INBOX
from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, SECRET, _empty_postgres
from tests.fault.scale import full
from tests.support.chaos import RedisServer, TcpProxy
from tests.support.factories import seed
from tests.support.twilio_requests import inbound_form, message_sid, signature
from workers.runtime import Runtime

OPTIONS = 5  # the seeded ballot: VOTO 1 .. VOTO 5
# What each kind of message must end as, once counted.
EXPECTED = {
    "vote": {"confirmed", "already_voted"},
    "unregistered": {"not_registered"},
    "garbage": {"unrecognised"},
    "bad_option": {"no_such_option"},
}
# The mix a load sends: about 10% redeliveries of an earlier MessageSid and a few invalid ones.
MIX = [("vote", 80), ("duplicate", 10), ("unregistered", 4), ("garbage", 2), ("bad_option", 2)]
MIX += [("forged", 2)]  # a wrong signature: 403, never recorded, never retried


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis of our own for the whole suite: these tests kill it."""
    server = RedisServer(tmp_path_factory.mktemp("fault-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fault_redis(own_redis: RedisServer) -> RedisServer:
    own_redis.ensure_running()  # a test before may have left it dead
    with own_redis.client() as client:
        client.flushall()
    return own_redis


@pytest.fixture
def postgres_only(postgres_url: str) -> Iterator[str]:
    """The session's scratch PostgreSQL database, emptied after the test."""
    yield postgres_url
    _empty_postgres(postgres_url)


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    """A relay to the shared PostgreSQL that a test may cut; the server itself never stops."""
    relay = TcpProxy("127.0.0.1", 5432)
    yield relay
    relay.close()


def matrix() -> list[pytest.ParameterSet]:
    """(database, ACK_AFTER) pairs: all four at full scale; at small, SQLite only as the default."""
    pairs = [("sqlite", "database"), ("postgresql", "database"), ("postgresql", "redis")]
    pairs += [("sqlite", "redis")] if full() else []
    return [pytest.param(db, ack, id=f"{db}-ack_after_{ack}") for db, ack in pairs]


def fault_settings(database_url: str, redis: RedisServer, **changes: object) -> Settings:
    base = Settings(
        database_url=database_url,
        secret=SECRET,
        redis_url=redis.url(),
        twilio_auth_token=AUTH_TOKEN,
        public_url=PUBLIC_URL,
        sweep_after_seconds=2,  # a message left behind by a kill is recovered within seconds
    )
    return base.with_(**changes)


def through(proxy: TcpProxy, url: str) -> str:
    """The same PostgreSQL URL, reached through the relay."""
    parts = urllib.parse.urlsplit(url)
    host = f"{parts.username}@" if parts.username else ""
    return parts._replace(netloc=f"{host}127.0.0.1:{proxy.port}").geturl()


BuildRuntime = Callable[[Settings], Runtime]


@pytest.fixture
def runtime_for() -> Iterator[BuildRuntime]:
    """Builds the runtime a test seeds and counts with, and closes it afterwards."""
    built: list[Runtime] = []

    def build(settings: Settings) -> Runtime:
        built.append(Runtime.build(settings))
        return built[-1]

    yield build
    for rt in built:
        rt.close()


def electorate(rt: Runtime, voters: int) -> list[str]:
    """A consultation open now, one circuit of five options, and `voters` registered phones."""
    phones = [f"+58414{i:07d}" for i in range(voters)]
    people = [(f"V{30_000_000 + i}", "C1", date(1990, 1, 1), [p]) for i, p in enumerate(phones)]
    seed(rt.sessions, people=people, ballots={"C1": OPTIONS})
    return phones


# --- the load: signed webhooks, retried until acknowledged ------------------------------------


def post_webhook(url: str, form: dict[str, str], token: str, timeout: float = 15) -> int | None:
    """One signed Twilio webhook on a fresh connection: the HTTP status, or None if none came."""
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature(token, PUBLIC_URL + "/sms/twilio", form),
    }
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request(
            "POST", "/sms/twilio", body=urllib.parse.urlencode(form), headers=headers
        )
        answer = connection.getresponse()
        answer.read()
        return answer.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


@dataclass
class Message:
    sid: str
    kind: str
    sender: str
    form: dict[str, str]
    token: str = AUTH_TOKEN


@dataclass
class Attempt:
    sid: str
    kind: str
    started: float  # time.monotonic()
    finished: float
    status: int | None  # None: no HTTP answer (refused, reset, timed out)


@dataclass
class Load:
    """Twilio, roughly: messages at a steady rate from a few connections; anything but a 2xx
    (a 503, a reset, a timeout) is delivered again with the same MessageSid after a backoff, as a
    fallback URL would, until acknowledged. Redeliveries of acknowledged messages are mixed in."""

    url: str
    voters: list[str]
    rate: float  # new messages per second
    senders: int = 8
    timeout: float = 15.0  # Twilio waits 15 s for a webhook
    seed: int = 7
    acked: dict[str, Message] = field(default_factory=dict)
    acked_at: dict[str, float] = field(default_factory=dict)  # sid -> when first acknowledged
    forged: dict[str, int | None] = field(default_factory=dict)  # sid -> the answer it got
    redeliveries: list[tuple[str, int | None]] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    sent: int = 0  # new messages (not redeliveries)
    votes_sent: int = 0  # of which votes from registered voters

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - test data
        self._lock = threading.Lock()
        self._due: list[tuple[float, int, Message, int]] = []  # (when, order, message, tries)
        self._order = itertools.count()
        self._producing = threading.Event()
        self._done = threading.Event()
        self._outstanding = 0
        self._threads: list[threading.Thread] = []
        self._votes = 0

    def start(self) -> Load:
        self._producing.set()
        self._threads = [threading.Thread(target=self._produce, name="load", daemon=True)]
        self._threads += [
            threading.Thread(target=self._deliver, name=f"sender-{i}", daemon=True)
            for i in range(self.senders)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, settle: float = 300) -> int:
        """No new messages; wait for every one in flight to be acknowledged. Left unacked: n."""
        self._producing.clear()
        # The producer may be past its check, about to schedule one more message: wait for it,
        # or that message counts as unacknowledged after the senders have gone.
        self._threads[0].join(timeout=self.timeout)
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and self._busy():
            time.sleep(0.05)
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        with self._lock:
            return self._outstanding

    def _busy(self) -> bool:
        with self._lock:
            return self._outstanding > 0

    # what is sent

    def _produce(self) -> None:
        gap = 1.0 / self.rate
        next_at = time.monotonic()
        while self._producing.is_set():
            self._schedule(self._next_message(), time.monotonic(), tries=0)
            next_at += gap
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _next_message(self) -> Message:
        kinds, weights = zip(*MIX, strict=True)
        kind = self._random.choices(kinds, weights)[0]
        with self._lock:
            earlier = list(self.acked.values())[-500:]
        if kind == "duplicate" and earlier:
            original = self._random.choice(earlier)
            return Message(original.sid, "duplicate", original.sender, dict(original.form))
        self.sent += 1
        if kind in ("vote", "duplicate", "forged"):
            sender = self.voters[self._votes % len(self.voters)]
            self._votes += 1
            self.votes_sent += kind != "forged"
            body = f"VOTO {self._random.randint(1, OPTIONS)}"
            token = "not-the-auth-token" if kind == "forged" else AUTH_TOKEN
            return Message(message_sid(), "forged" if kind == "forged" else "vote", sender,
                           inbound_form(sender, body), token)  # fmt: skip
        if kind == "unregistered":
            sender = f"+58416{self._random.randrange(10**7):07d}"
            return Message(message_sid(), kind, sender, inbound_form(sender, "VOTO 2"))
        sender = self._random.choice(self.voters)
        body = "hola que tal" if kind == "garbage" else f"VOTO {OPTIONS + 4}"
        return Message(message_sid(), kind, sender, inbound_form(sender, body))

    # how it is delivered

    def _schedule(self, message: Message, when: float, tries: int) -> None:
        message.form["MessageSid"] = message.sid
        with self._lock:
            if tries == 0:
                self._outstanding += 1
            heapq.heappush(self._due, (when, next(self._order), message, tries))

    def _take(self) -> tuple[Message, int] | None:
        with self._lock:
            if self._due and self._due[0][0] <= time.monotonic():
                _, _, message, tries = heapq.heappop(self._due)
                return message, tries
        return None

    def _deliver(self) -> None:
        while not self._done.is_set():
            taken = self._take()
            if taken is None:
                time.sleep(0.005)
                continue
            message, tries = taken
            status = self._post(message)
            self._settle(message, tries, status)

    def _settle(self, message: Message, tries: int, status: int | None) -> None:
        acknowledged = status is not None and 200 <= status < 300
        with self._lock:
            if message.kind == "duplicate":
                self.redeliveries.append((message.sid, status))
            elif message.kind == "forged":
                self.forged[message.sid] = status
            elif acknowledged and message.sid not in self.acked:
                self.acked[message.sid] = message
                self.acked_at[message.sid] = time.monotonic()
            final = acknowledged or message.kind in ("duplicate", "forged")
            if final:
                self._outstanding -= 1
        if not final:
            self._schedule(message, time.monotonic() + min(5.0, 0.5 * 2**tries), tries + 1)

    def _post(self, message: Message) -> int | None:
        started = time.monotonic()
        status = post_webhook(self.url, message.form, message.token, self.timeout)
        attempt = Attempt(message.sid, message.kind, started, time.monotonic(), status)
        with self._lock:
            self.attempts.append(attempt)
        return status

    # what the test reads

    def first_ack_after(self, moment: float) -> float | None:
        """When the first webhook sent after `moment` was acknowledged, if one was yet."""
        with self._lock:
            recent = self.attempts[-2000:]
        times = [a.finished for a in recent if a.started >= moment and a.status and a.status < 300]
        return min(times) if times else None

    def longest_ack_gap(self, start: float, end: float) -> float:
        """The longest time in [start, end] with no webhook acknowledged."""
        with self._lock:
            acked = [a.finished for a in self.attempts if a.status and a.status < 300]
        times = [start, *sorted(t for t in acked if start <= t <= end), end]
        return max(later - earlier for earlier, later in itertools.pairwise(times))

    def window(self, start: float, end: float) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if start <= a.started < end]


# --- the audit ------------------------------------------------------------------------------


@dataclass
class Audit:
    acknowledged: int
    votes: int  # acknowledged vote messages (a voter's second vote included)
    voters: int  # distinct voters with an acknowledged vote
    participations: int
    vote_rows: int
    lost: int
    double: int
    missing_replies: int
    wrong_outcomes: int
    forged_recorded: int
    redelivered: int
    outcomes: dict[str, int]

    @property
    def failures(self) -> int:
        return (
            self.lost
            + self.double
            + self.missing_replies
            + self.wrong_outcomes
            + self.forged_recorded
        )


def audit(rt: Runtime, load: Load) -> Audit:
    """Every acknowledged MessageSid done exactly once, each voter counted once, one reply each."""
    with rt.sessions() as session:
        rows = {
            sid: (row_id, status, outcome)
            for row_id, sid, status, outcome in session.execute(
                select(InboundRow.id, InboundRow.external_id, InboundRow.status, InboundRow.outcome)
            )
        }
        replies = dict(
            session.execute(
                select(OutboundRow.inbound_id, func.count()).group_by(OutboundRow.inbound_id)
            ).all()
        )
        participations = session.scalar(select(func.count()).select_from(ParticipationRow)) or 0
        vote_rows = session.scalar(select(func.count()).select_from(VoteRow)) or 0
    acked = load.acked
    lost = [sid for sid in acked if sid not in rows or rows[sid][1] != "done"]
    voters = {m.sender for m in acked.values() if m.kind == "vote"}
    outcomes = Counter(rows[sid][2] for sid in acked if sid in rows)
    wrong = [
        sid for sid, m in acked.items() if sid in rows and rows[sid][2] not in EXPECTED[m.kind]
    ]
    done_ids = {row_id for row_id, status, _ in rows.values() if status == "done"}
    counted_twice = (
        max(0, participations - len(voters))
        + max(0, vote_rows - participations)
        + max(0, outcomes["confirmed"] - participations)
        + sum(n - 1 for n in replies.values() if n > 1)
    )
    return Audit(
        acknowledged=len(acked),
        votes=sum(m.kind == "vote" for m in acked.values()),
        voters=len(voters),
        participations=participations,
        vote_rows=vote_rows,
        lost=len(lost) + max(0, len(voters) - participations),
        double=counted_twice,
        missing_replies=sum(1 for row_id in done_ids if row_id not in replies),
        wrong_outcomes=len(wrong),
        forged_recorded=sum(1 for sid in load.forged if sid in rows),
        redelivered=len(load.redeliveries),
        outcomes=dict(outcomes),
    )


def audit_counts(rt: Runtime) -> dict[str, int]:
    """Rows in each table the promises are about."""
    tables = {
        "inbound": InboundRow,
        "votes": VoteRow,
        "participations": ParticipationRow,
        "replies": OutboundRow,
    }
    with rt.sessions() as session:
        counts = {
            name: session.scalar(select(func.count()).select_from(table)) or 0
            for name, table in tables.items()
        }
    counts["pending"] = pending(rt)
    return counts


def orphaned_batches(rt: Runtime) -> int:
    """ACK_AFTER=redis: batch keys the sweep cannot see (not registered in the batches set)."""
    registered = {key.decode() for key in rt.redis.zrange(BATCHES, 0, -1)}
    keys = {key.decode() for key in rt.redis.scan_iter(match=BATCH_PREFIX + "*")}
    return len(keys - registered)


def pending(rt: Runtime) -> int:
    with rt.sessions() as session:
        query = select(func.count()).select_from(InboundRow).where(InboundRow.status == "pending")
        return session.scalar(query) or 0


def done_sids(rt: Runtime) -> set[str]:
    with rt.sessions() as session:
        query = select(InboundRow.external_id).where(InboundRow.status == "done")
        return set(session.scalars(query))


def counted(rt: Runtime, sids: set[str]) -> bool:
    """Every one of these MessageSids judged, and nothing else left waiting anywhere."""
    waiting = rt.redis.llen(INBOX) + rt.redis.zcard(BATCHES)  # ACK_AFTER=redis: not yet written
    return not waiting and pending(rt) == 0 and sids <= done_sids(rt)


def wait_drained(rt: Runtime, load: Load, seconds: float) -> float | None:
    """Seconds until every acknowledged message is counted, or None if one still is not."""
    start = time.monotonic()
    sids = set(load.acked)
    while time.monotonic() - start < seconds:
        try:
            if counted(rt, sids):
                return time.monotonic() - start
        except Exception:  # noqa: BLE001, S110 - a store may be coming back
            pass
        time.sleep(0.2)
    return None


def last_processed(rt: Runtime) -> datetime | None:
    with rt.sessions() as session:
        return session.scalar(select(func.max(InboundRow.processed_at)))


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def wall_now() -> datetime:
    return datetime.now(UTC)


def logs_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"
