"""Replay: old requests delivered again, after a second, a minute, an hour and every TTL.

Twilio's signature carries no timestamp or nonce, so a captured request stays valid for ever;
Africa's Talking signs nothing and retries an SMS for about ten minutes; a USSD aggregator may
repeat a hop. The only guard is the database's unique key (provider, external ID), which lasts
as long as the data. Nothing here freezes a clock: time passes by moving every stored timestamp
back, and by expiring each Redis key whose TTL would have run out (all of them, at the end).

Each original is sent once and processed; then, at each stage, all are replayed byte for byte
and processed again. The replays must be acknowledged (a provider retries anything else) and
change no row of any table: no new inbound message, vote, participation or reply.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select, update

from gateway import inbox
from gateway.models import InboundRow, OutboundRow, ParticipationRow, VoteRow
from gateway.queues import INTAKE_LIST, INTAKE_QUEUE, REPLIES_QUEUE
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.fault.scale import report
from tests.support.factories import seed
from tests.support.pipeline import drain
from tests.support.twilio_requests import signature
from tests.support.webhooks import (
    Sent,
    africastalking_sms,
    africastalking_ussd,
    changes,
    encode,
    snapshot,
    twilio_sms,
    without_flood_limits,
)
from workers import pump
from workers.runtime import Runtime

pytestmark = [pytest.mark.fault]

AT_SECRET = "replay-at-secret"
ANA, BETO, CARLA = "+584141234567", "+584161234567", "+584241234567"
STRANGER = "+584269998877"
STATUS_SID = "SM" + "5" * 32  # the provider SID given to Ana's reply, for its status callback

# (label, seconds that pass, whether Redis loses everything, as after every TTL or a restart)
STAGES = [
    ("a second later", 1, False),
    ("a minute later", 60, False),
    ("an hour later", 3600, False),
    ("after every TTL", 8 * 86400, True),  # RQ keeps a failed job 7 days: the longest TTL
]
# Every stored time the workers or the sweep read, per table.
TIMESTAMPS = {
    InboundRow: ("received_at", "enqueued_at", "processed_at"),
    OutboundRow: ("created_at", "updated_at"),
    VoteRow: ("cast_at", "replaced_at"),
    ParticipationRow: ("voted_at",),
}


@pytest.fixture(params=["database", "redis"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Both ways to acknowledge: after the commit, or once in the Redis inbox (ACK_AFTER)."""
    changed = settings.with_(africastalking_secret=AT_SECRET, ack_after=request.param)
    return without_flood_limits(changed)


@pytest.fixture(params=["first", "last"])
def revote(request: pytest.FixtureRequest, rt: Runtime) -> str:
    people = [
        ("V12345678", "C1", date(1990, 5, 1), [ANA]),
        ("V20111222", "C1", date(1991, 6, 2), [BETO]),
        ("V25333444", "C1", date(1992, 7, 3), [CARLA]),
    ]
    seed(rt.sessions, revote=request.param, people=people)
    return str(request.param)


def status_callback(status: str) -> Sent:
    form = {"MessageSid": STATUS_SID, "MessageStatus": status, "AccountSid": "AC" + "0" * 32}
    url = PUBLIC_URL + "/sms/twilio/status"
    return Sent("/sms/twilio/status", encode(form.items()), {
        "X-Twilio-Signature": signature(AUTH_TOKEN, url, form)
    })  # fmt: skip


def originals() -> list[tuple[str, Sent]]:
    """One of each kind of request that has an effect, labelled."""
    session = "ATreplay1"
    ussd = [
        (f"USSD hop {path or 'dial'}", africastalking_ussd(AT_SECRET, session, CARLA, path))
        for path in ("", "1", "1*4", "1*4*1")
    ]
    return [
        ("Twilio SMS vote", twilio_sms(ANA, "VOTO 3")),
        ("Twilio SMS ESTADO", twilio_sms(ANA, "ESTADO")),
        ("Twilio SMS from a stranger", twilio_sms(STRANGER, "VOTO 2")),
        ("Twilio SMS AYUDA", twilio_sms(STRANGER, "AYUDA")),
        ("Africa's Talking SMS vote", africastalking_sms(AT_SECRET, BETO, "VOTO 2")),
        *ussd,
    ]


def give_ana_reply_a_provider_sid(rt: Runtime) -> None:
    """As if Ana's first reply had gone out through Twilio, so its status callbacks apply."""
    with rt.sessions() as session, session.begin():
        first = session.scalar(select(OutboundRow.id).order_by(OutboundRow.id).limit(1))
        session.execute(
            update(OutboundRow)
            .where(OutboundRow.id == first)
            .values(provider="twilio", provider_sid=STATUS_SID, status="sent")
        )


def age(rt: Runtime, seconds: int) -> None:
    """Move every stored time back, as if `seconds` had passed (row by row: some are sealed)."""
    shift = timedelta(seconds=seconds)
    with rt.sessions() as session, session.begin():
        for table, names in TIMESTAMPS.items():
            for row in session.scalars(select(table)):
                for name in names:
                    value = getattr(row, name)
                    if value is not None:
                        setattr(row, name, value - shift)


def expire(redis: Redis, seconds: int, everything: bool) -> Counter[str]:
    """Delete each key whose TTL runs out within `seconds` (every key if `everything`).

    Returns the families of keys that went, for the report ("consulta:ussd:session", "rq:job").
    """
    gone: Counter[str] = Counter()
    for key in redis.scan_iter(count=1000):
        ttl = redis.ttl(key)
        if everything or 0 <= ttl <= seconds:
            redis.delete(key)
            gone[_family(key.decode())] += 1
    return gone


def anything_queued(rt: Runtime) -> bool:
    waiting = [rt.queue(name).count for name in (INTAKE_QUEUE, REPLIES_QUEUE)]
    return bool(rt.redis.llen(INTAKE_LIST) or inbox.waiting(rt.redis) or any(waiting))


def _family(key: str) -> str:
    return ":".join(key.split(":")[:3] if key.startswith("consulta:") else key.split(":")[:2])


def test_replayed_requests_change_nothing_after_a_minute_an_hour_and_every_ttl(
    client: FlaskClient, rt: Runtime, revote: str
) -> None:
    sent = originals()
    for label, request in sent:
        assert request.send(client).status_code == 200, label
    # Redelivered at once, while the originals are still pending: nothing new is even queued.
    queued, before = rt.redis.llen(INTAKE_LIST), snapshot(rt.engine)
    for label, request in sent:
        assert request.send(client).status_code == 200, label
    assert changes(before, snapshot(rt.engine)) == {}
    assert rt.redis.llen(INTAKE_LIST) == queued
    drain(rt)
    give_ana_reply_a_provider_sid(rt)
    for status in ("sent", "delivered"):
        assert status_callback(status).send(client).status_code == 204
    sent += [(f"Twilio status {s}", status_callback(s)) for s in ("sent", "delivered")]

    replays, effects, expired = 0, Counter[str](), Counter[str]()
    for stage, seconds, everything in STAGES:
        age(rt, seconds)
        expired += expire(rt.redis, seconds, everything)
        assert sum(pump.sweep_once(rt).values()) == 0, "the sweep found work: nothing was pending"
        before = snapshot(rt.engine)
        refused = [label for label, request in sent if request.send(client).status_code >= 300]
        replays += len(sent)
        if anything_queued(rt):
            drain(rt)
        pump.sweep_once(rt)
        changed = changes(before, snapshot(rt.engine))
        effects[stage] = len(refused) + sum(changed.values())
        if effects[stage]:
            print(f"\nreplay {stage}: refused {refused}, rows changed {changed}")
    report(
        f"replay ({revote}, {rt.engine.dialect.name}, ack after {rt.settings.ack_after})",
        n=replays,
        failures=sum(effects.values()),  # rows changed, and replays not acknowledged
        requests=len(sent),
        stages=len(STAGES),
        expired_keys=dict(expired),
    )
    assert sum(effects.values()) == 0, dict(effects)
