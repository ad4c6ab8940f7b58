"""Racing voter: one person sends 2 to 10 different votes at the same moment, by SMS and USSD.

Every message goes through the real webhook (the Flask app, in-process), all at once from one
thread each; then the intake jobs run all at once, in threads, the messages split among them as
hypothesis chooses. Exactly one vote may count, as the consultation's re-vote policy says:

- `first`: the first vote stored stands, every other message is answered "already voted" with its
  receipt;
- `last`: the vote with the latest receive time stands; every vote it replaced is marked
  replaced, so exactly one vote row of this person is not.

Both ways of acknowledging run (ACK_AFTER): with `redis` the SMS wait in the Redis inbox and are
written by the same jobs that judge them, and so do the USSD votes. SQLite
takes one writer at a time, so there the jobs queue up; PostgreSQL runs them truly at once, and
only there does the unique key of `participations` have to settle a tie.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from urllib.parse import parse_qsl

import pytest
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway import inbox
from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow
from gateway.queues import INTAKE_LIST
from gateway.settings import Settings
from tests.fault.scale import n, report
from tests.support.factories import seed
from tests.support.webhooks import Sent, africastalking_ussd, twilio_sms
from workers import intake
from workers.runtime import Runtime

pytestmark = [pytest.mark.fault]

OPTIONS = 10  # so that ten different votes fit on one ballot
AT_SECRET = "race-at-secret"
POOL = 60  # voters registered at a time; a fresh batch is seeded when they run out
T = TypeVar("T")


@pytest.fixture(params=["database", "redis"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Both ways to acknowledge: after the commit, or once in the Redis inbox (ACK_AFTER)."""
    return settings.with_(africastalking_secret=AT_SECRET, ack_after=request.param)


@dataclass(frozen=True)
class Message:
    channel: str  # sms | ussd
    option: int
    job: int  # which concurrent intake job takes it


@st.composite
def races(draw: st.DrawFn) -> list[Message]:
    """2 to 10 different options, each sent by SMS or USSD, spread over up to as many jobs."""
    k = draw(st.integers(2, 10))
    options = draw(st.permutations(range(1, OPTIONS + 1)))[:k]
    channels = draw(st.lists(st.sampled_from(["sms", "ussd"]), min_size=k, max_size=k))
    jobs = draw(st.lists(st.integers(0, k - 1), min_size=k, max_size=k))
    # On a two-page ballot, 9 typed on the first page means "more": USSD votes avoid it.
    return [
        Message("sms" if option == 9 else channel, option, job)
        for option, channel, job in zip(options, channels, jobs, strict=True)
    ]


class Voters:
    """People who have never voted, one per example; more are registered when they run out.

    Each batch is a consultation of its own that opens a second after the one before, so the
    newest batch's consultation is the open one every message is judged against.
    """

    def __init__(self, sessions: sessionmaker[Session], revote: str) -> None:
        self.sessions, self.revote, self.batches = sessions, revote, 0
        self.free: list[str] = []

    def take(self) -> str:
        """The phone of someone who has not voted."""
        if not self.free:
            self._register_batch()
        return self.free.pop()

    def _register_batch(self) -> None:
        batch, self.batches = self.batches, self.batches + 1
        people = [
            (f"V{40_000_000 + batch * 1000 + i}", "C1", date(1990, 1, 1), [_phone(batch, i)])
            for i in range(POOL)
        ]
        opens = datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=batch)
        seed(
            self.sessions, slug=f"race-{self.revote}-{batch}", opens=opens, revote=self.revote,
            ballots={"C1": OPTIONS}, people=people,
        )  # fmt: skip
        self.free = [phones[0] for _, _, _, phones in people]


def _phone(batch: int, i: int) -> str:
    return f"+58414{batch:03d}{i:04d}"


def all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run every call in its own thread, released together."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def prepare(app: Flask, phone: str, message: Message) -> tuple[str, Sent]:
    """The message's external ID, and the request that sends it.

    A USSD vote is walked to its confirmation screen first: only the last key, 1 (yes), races.
    Its first hop carries the whole path so far (`1*option`), as a crafted path may: a first hop
    with no input would resume the person's previous session, still open at its confirmation.
    """
    if message.channel == "sms":
        request = twilio_sms(phone, f"VOTO {message.option}")
        return dict(parse_qsl(request.body.decode()))["MessageSid"], request
    session = f"race-{uuid.uuid4().hex[:12]}"
    client = app.test_client()
    path = f"1*{message.option}"
    screen = (
        africastalking_ussd(AT_SECRET, session, phone, path).send(client).get_data(as_text=True)
    )
    assert screen.startswith("CON Confirmas"), screen
    return f"ussd-{session}", africastalking_ussd(AT_SECRET, session, phone, f"{path}*1")


@dataclass(frozen=True)
class Outcome:
    option: int
    outcome: str
    received_at: datetime
    replies: tuple[str, ...]


def race(app: Flask, rt: Runtime, phone: str, messages: list[Message]) -> dict[str, Outcome]:
    """Send every message at once, then run the intake jobs at once; what each message became."""
    prepared = [prepare(app, phone, m) for m in messages]
    answers = all_at_once([lambda r=r: r.send(app.test_client()) for _, r in prepared])
    assert [a.status_code for a in answers] == [200] * len(messages)
    for answer, message in zip(answers, messages, strict=True):
        if message.channel == "ussd":
            assert answer.get_data(as_text=True).startswith("END "), answer.get_data(as_text=True)
    external = {ext: m for (ext, _), m in zip(prepared, messages, strict=True)}
    all_at_once(jobs(rt, external))
    ids = recorded(rt, external)
    assert len(ids) == len(messages), "an acknowledged message was not recorded"
    return _outcomes(rt, ids, external)


def recorded(rt: Runtime, external: dict[str, Message]) -> dict[str, int]:
    """External ID -> inbound row ID, for the messages the database holds."""
    with rt.sessions() as session:
        query = select(InboundRow.external_id, InboundRow.id)
        return dict(session.execute(query.where(InboundRow.external_id.in_(external))).all())


def jobs(rt: Runtime, external: dict[str, Message]) -> list[Callable[[], object]]:
    """The intake jobs, as hypothesis split the messages among them, ready to run at once.

    Messages already in the database (every message when ACK_AFTER=database) go by
    row ID; those waiting in the Redis inbox go in batches taken from it, one per job, of the
    sizes the split gives (which messages is the order they arrived in).
    """
    in_database = recorded(rt, external)
    rt.redis.delete(INTAKE_LIST)  # the jobs are ours to run
    by_id: dict[int, list[int]] = {}
    inbox_sizes: Counter[int] = Counter()
    for ext, message in external.items():
        if ext in in_database:
            by_id.setdefault(message.job, []).append(in_database[ext])
        else:
            inbox_sizes[message.job] += 1
    calls: list[Callable[[], object]] = [
        lambda ids=ids: intake.process_inbound(ids) for ids in by_id.values()
    ]
    for size in inbox_sizes.values():
        batch = take_exactly(rt, size)
        calls.append(lambda batch=batch: intake.process_inbox_batch(batch))
    assert not rt.redis.llen(inbox.INBOX), "more in the inbox than was acknowledged"
    return calls


def take_exactly(rt: Runtime, size: int) -> str:
    """A batch of the next `size` inbox entries, registered as `inbox.take_batch` registers one.

    Not `take_batch` itself: asked for one entry it takes the whole inbox (its second step
    moves `size - 1` more with LRANGE 0 -1), and the split among jobs is what is drawn here.
    """
    batch = inbox.BATCH_PREFIX + uuid.uuid4().hex
    for _ in range(size):
        moved = rt.redis.lmove(inbox.INBOX, batch, "LEFT", "RIGHT")
        assert moved is not None, "an acknowledged message is not in the inbox"
    rt.redis.zadd(inbox.BATCHES, {batch: time.time()})
    return batch


def _outcomes(rt: Runtime, ids: dict[str, int], external: dict[str, Message]) -> dict[str, Outcome]:
    with rt.sessions() as session:
        found = session.scalars(select(InboundRow).where(InboundRow.id.in_(ids.values())))
        rows = {row.id: row for row in found}
        replies: dict[int, list[str]] = {}
        sent = session.scalars(select(OutboundRow).where(OutboundRow.inbound_id.in_(ids.values())))
        for reply in sent:
            replies.setdefault(reply.inbound_id or 0, []).append(reply.body)
    return {
        ext: Outcome(
            external[ext].option,
            rows[row_id].outcome or "",
            rows[row_id].received_at,
            tuple(replies.get(row_id, [])),
        )
        for ext, row_id in ids.items()
    }


def votes(rt: Runtime) -> dict[str, VoteRow]:
    with rt.sessions() as session:
        return {v.receipt: v for v in session.scalars(select(VoteRow))}


def participations(rt: Runtime) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(ParticipationRow)) or 0


def check_first(outcomes: dict[str, Outcome], new_votes: list[VoteRow]) -> None:
    """The first vote stored stands; every other message hears "already voted" and its receipt."""
    kinds = Counter(o.outcome for o in outcomes.values())
    assert kinds == {"confirmed": 1, "already_voted": len(outcomes) - 1}, kinds
    assert len(new_votes) == 1, new_votes
    [vote] = new_votes
    [winner] = [o for o in outcomes.values() if o.outcome == "confirmed"]
    assert vote.replaced_at is None
    assert vote.option == winner.option
    for o in outcomes.values():
        assert len(o.replies) == 1, o
        assert vote.receipt in o.replies[0], o


def check_last(outcomes: dict[str, Outcome], new_votes: list[VoteRow]) -> None:
    """The latest receive time stands; every vote stored before it is marked replaced."""
    kinds = Counter(o.outcome for o in outcomes.values())
    assert set(kinds) <= {"confirmed", "replaced", "already_voted"}, kinds
    assert kinds["confirmed"] == 1, kinds
    assert len(new_votes) == kinds["confirmed"] + kinds["replaced"]
    standing_votes = [v for v in new_votes if v.replaced_at is None]
    assert len(standing_votes) == 1, standing_votes
    [standing] = standing_votes
    latest = max(o.received_at for o in outcomes.values())
    assert standing.cast_at == latest, (standing.cast_at, latest)
    newest = [o for o in outcomes.values() if o.received_at == latest]
    assert standing.option in {o.option for o in newest}
    winners = [o for o in newest if o.outcome in {"confirmed", "replaced"}]
    assert len(winners) == 1, winners
    assert standing.receipt in winners[0].replies[0]


@pytest.mark.parametrize("revote", ["first", "last"])
def test_one_voter_racing_votes_on_sms_and_ussd_has_exactly_one_counted(
    app: Flask, rt: Runtime, revote: str
) -> None:
    voters = Voters(rt.sessions, revote)
    seen: Counter[str] = Counter()

    @hypothesis_settings(
        max_examples=n(8, 200),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(messages=races())
    def one_race(messages: list[Message]) -> None:
        phone = voters.take()
        before, counted = votes(rt), participations(rt)
        seen["examples"] += 1
        seen["messages"] += len(messages)
        seen["ussd"] += sum(m.channel == "ussd" for m in messages)
        try:
            outcomes = race(app, rt, phone, messages)
            new_votes = [v for receipt, v in votes(rt).items() if receipt not in before]
            assert participations(rt) == counted + 1, "not exactly one participation"
            (check_first if revote == "first" else check_last)(outcomes, new_votes)
        except AssertionError:
            seen["failures"] += 1
            raise

    try:
        one_race()
    finally:
        report(
            f"racing voter ({revote}, {rt.engine.dialect.name}, ack after {rt.settings.ack_after})",
            n=seen["examples"],
            failures=seen["failures"],
            messages=seen["messages"],
            ussd_messages=seen["ussd"],
        )
