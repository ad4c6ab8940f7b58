"""The promises under pressure: duplicate storms, racing voters, killed workers, repeated jobs.

These start the real processes (gunicorn with `consulta web`, `consulta worker`) against real
Redis and the database, and print their N so the figures can be quoted.
"""

from __future__ import annotations

import random
import signal
import threading
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, insert, select

from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN
from tests.support import processes
from tests.support.factories import seed
from tests.support.pipeline import drain
from tests.support.twilio_requests import inbound_form, message_sid, signature
from workers import intake
from workers.runtime import Runtime

pytestmark = pytest.mark.slow
ANA = "+584141234567"


def count(rt: Runtime, table: type, *where: object) -> int:
    with rt.sessions() as session:
        query = select(func.count()).select_from(table)
        return session.scalar(query.where(*where) if where else query) or 0


def post_form(
    base_url: str, public_url: str, form: dict[str, str], token: str | None = AUTH_TOKEN
) -> int:
    """POST a form to a running `consulta web`, signed for its public URL."""
    sign = signature(token or "", public_url + "/sms/twilio", form)
    request = urllib.request.Request(  # noqa: S310 - a local test server
        base_url + "/sms/twilio",
        data=urllib.parse.urlencode(form).encode(),
        headers={"X-Twilio-Signature": sign},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return int(answer.status)


def concurrently(forms: list[dict[str, str]], base_url: str, public_url: str) -> list[int]:
    """Send every form at the same instant, one thread each."""
    start = threading.Barrier(len(forms))

    def send(form: dict[str, str]) -> int:
        start.wait()
        return post_form(base_url, public_url, form)

    with ThreadPoolExecutor(len(forms)) as pool:
        return list(pool.map(send, forms))


def test_the_same_signed_webhook_delivered_20_times_at_once_gives_one_vote_and_one_reply(
    settings: Settings, rt: Runtime
) -> None:
    rounds = 5
    people = [
        (f"V{10_000_000 + i}", "C1", date(1990, 1, 1), [f"+58414000{i:04d}"]) for i in range(rounds)
    ]
    seed(rt.sessions, people=people)
    statuses: list[int] = []
    with processes.web_server(settings) as base_url:
        for _, _, _, phones in people:
            form = inbound_form(phones[0], "VOTO 2")
            statuses += concurrently([form] * 20, base_url, settings.public_url or "")
    drain(rt)
    print(f"\nduplicate storm: {rounds} rounds x 20 deliveries, statuses {set(statuses)}")
    assert statuses == [200] * 20 * rounds
    assert count(rt, InboundRow) == rounds
    assert count(rt, VoteRow) == rounds
    assert count(rt, OutboundRow) == rounds


def test_one_voter_sending_different_votes_at_the_same_moment_has_one_counted(
    settings: Settings, rt: Runtime
) -> None:
    seed(rt.sessions, people=[("V12345678", "C1", date(1990, 1, 1), [ANA])])
    forms = [inbound_form(ANA, f"VOTO {option}") for option in (1, 2, 3, 4)]
    with processes.web_server(settings) as base_url:
        assert concurrently(forms, base_url, settings.public_url or "") == [200] * 4
    with rt.sessions() as session:
        ids = list(session.scalars(select(InboundRow.id)))
    rt.redis.delete("consulta:intake")
    # Each message in its own job, all at once: the unique constraint is the only judge.
    with ThreadPoolExecutor(len(ids)) as pool:
        list(pool.map(lambda one: intake.process_inbound([one]), ids))
    drain(rt)
    with rt.sessions() as session:
        outcomes = sorted(session.scalars(select(InboundRow.outcome)))
    assert count(rt, VoteRow) == 1
    assert count(rt, ParticipationRow) == 1
    assert outcomes == ["already_voted"] * 3 + ["confirmed"]


def test_a_job_run_twice_changes_nothing(settings: Settings, rt: Runtime) -> None:
    seed(rt.sessions, people=[("V12345678", "C1", date(1990, 1, 1), [ANA])])
    ids = record_directly(rt, [(ANA, "VOTO 3"), (ANA, "AYUDA"), ("+584269998877", "VOTO 1")])
    first = intake.process_inbound(ids)
    second = intake.process_inbound(ids)
    assert first["processed"] == 3
    assert second == {"processed": 0, "replies": 0}
    assert count(rt, VoteRow) == 1
    assert count(rt, OutboundRow) == 3


def record_directly(rt: Runtime, messages: list[tuple[str, str]]) -> list[int]:
    """What the webhook records, written in bulk: the worker side cannot tell the difference."""
    now = datetime.now(UTC)
    rows = [
        {
            "provider": "twilio",
            "external_id": message_sid(),
            "channel": "sms",
            "sender": sender,
            "recipient": "+582125550000",
            "body": body,
            "received_at": now,
            "enqueued_at": now,
            "status": "pending",
        }
        for sender, body in messages
    ]
    with rt.sessions() as session, session.begin():
        ids = list(session.scalars(insert(InboundRow).returning(InboundRow.id), rows))
    for start in range(0, len(ids), 1000):
        rt.redis.rpush("consulta:intake", *ids[start : start + 1000])
    return ids


def kill_during_a_batch(rt: Runtime, env: dict[str, str], seen: set[str]) -> str:
    """Start a worker, SIGKILL it while an intake job is running; that job's status after."""
    started = rt.queue("intake").started_job_registry

    def running() -> set[str]:
        fresh = set(started.get_job_ids()) - seen
        return {job_id for job_id in fresh if status(job_id) == "started"}

    def status(job_id: str) -> str:
        job = rt.queue("intake").fetch_job(job_id)
        return job.get_status().value if job and job.get_status() else "missing"

    worker = processes.spawn("worker", env)
    try:
        assert processes.wait_until(lambda: bool(running()), seconds=30, every=0.002)
        job_id = running().pop()
    finally:
        processes.stop(worker, signal.SIGKILL)
    seen.add(job_id)  # RQ keeps it as started until the dead worker's heartbeat expires
    return status(job_id)


def test_a_worker_killed_mid_batch_leaves_every_message_processed_exactly_once(
    settings: Settings, rt: Runtime
) -> None:
    voters = 3000
    people = [
        (f"V{20_000_000 + i}", "C1", date(1990, 1, 1), [f"+58424{i:07d}"]) for i in range(voters)
    ]
    seed(rt.sessions, people=people)
    # Every voter votes; one in six votes again, and a few strangers write in.
    messages = [(phones[0], f"VOTO {random.randint(1, 5)}") for _, _, _, phones in people]
    messages += [(phones[0], "VOTO 1") for _, _, _, phones in people[::6]]
    messages += [(f"+58416{i:07d}", "VOTO 2") for i in range(200)]
    random.shuffle(messages)
    ids = record_directly(rt, messages)
    env = processes.environment(settings.with_(batch_size=400, sweep_after_seconds=2))
    seen: set[str] = set()
    interrupted = [kill_during_a_batch(rt, env, seen) for _ in range(3)]
    done_at_last_kill = count(rt, InboundRow, InboundRow.status == "done")
    worker = processes.spawn("worker", env)
    try:
        finished = processes.wait_until(
            lambda: count(rt, InboundRow, InboundRow.status == "done") == len(ids),
            seconds=120,
            every=0.2,
        )
    finally:
        processes.stop(worker)
    print(
        f"\nkill test: {len(ids)} messages, {len(interrupted)} SIGKILLs mid-batch "
        f"(jobs left {interrupted}), {done_at_last_kill} done at the last kill, "
        f"finished={finished}"
    )
    assert interrupted == ["started"] * 3, "a kill did not land inside a running batch"
    assert done_at_last_kill < len(ids)
    assert finished
    assert count(rt, ParticipationRow) == voters
    assert count(rt, VoteRow) == voters
    assert count(rt, OutboundRow) == len(ids)
    with rt.sessions() as session:
        outcomes = dict(
            session.execute(
                select(InboundRow.outcome, func.count()).group_by(InboundRow.outcome)
            ).all()
        )
    assert outcomes == {
        "confirmed": voters,
        "already_voted": len(people[::6]),
        "not_registered": 200,
    }
