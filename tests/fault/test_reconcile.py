"""Lost webhooks: Twilio received every message, the gateway never heard of a random share.

N voters each send one vote. Twilio logs all of them, but the webhooks of a random share never
reach the gateway (Twilio gave up: our 5xx, a dead fallback URL, a cut link). The rest arrive and
are counted. Then `consulta reconcile` reads Twilio's list, records and queues what is missing,
and the worker counts it. Unaccounted: a message Twilio received that is not stored and judged,
or a voter whose vote is not counted exactly once. FAULT_SEED=<seed> replays a reported run.
"""

from __future__ import annotations

import os
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gateway.cli import main
from gateway.models import InboundRow, ParticipationRow
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, SECRET
from tests.fault.conftest import electorate
from tests.fault.scale import n, report
from tests.support.fake_twilio import FakeTwilio, fake_twilio_fixture, webhook_form
from tests.support.pipeline import drain
from tests.support.twilio_requests import signed_headers
from workers.runtime import Runtime

__all__ = ["fake_twilio_fixture"]  # the fixture, imported so pytest finds it here
pytestmark = [pytest.mark.fault, pytest.mark.timeout(n(300, 1800))]  # full N is minutes

N = n(200, 5000)
LOST_SHARE = 0.2  # about one webhook in five never arrives


def test_reconcile_leaves_no_message_unaccounted_when_webhooks_are_lost(
    settings: Settings, client: FlaskClient, rt: Runtime, fake_twilio: FakeTwilio
) -> None:
    seed = int(os.environ.get("FAULT_SEED") or random.randrange(2**32))  # reported: replayable
    rng = random.Random(seed)
    received = [
        fake_twilio.receive(phone, f"VOTO {rng.randint(1, 5)}") for phone in electorate(rt, N)
    ]
    lost = {message["sid"] for message in received if rng.random() < LOST_SHARE}
    url = PUBLIC_URL + "/sms/twilio"
    for message in received:
        if message["sid"] not in lost:
            form = webhook_form(message)
            headers = signed_headers(AUTH_TOKEN, url, form)
            assert client.post("/sms/twilio", data=form, headers=headers).status_code == 200
    drain(rt)

    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url or ""}
    consulta = CliRunner(env={**env, "CONSULTA_SECRET": SECRET, **fake_twilio.env()})
    result = consulta.invoke(main, ["reconcile", "cpn-2026", "--since", since])
    assert result.exit_code == 0, result.output
    drain(rt)

    with rt.sessions() as session:
        judged = set(
            session.scalars(select(InboundRow.external_id).where(InboundRow.status == "done"))
        )
        counted = session.scalar(select(func.count()).select_from(ParticipationRow)) or 0
    found = re.search(r"missing at the gateway: (\d+)\n", result.output)
    assert found, result.output
    unaccounted = len({m["sid"] for m in received} - judged) + abs(N - counted)
    report(
        f"reconcile [{rt.engine.dialect.name}]",
        n=N,
        failures=unaccounted,  # what went wrong; the lost webhooks are the fault injected
        lost_webhooks=len(lost),
        missing_found=int(found[1]),
        unaccounted=unaccounted,
        seed=seed,
    )
    assert int(found[1]) == len(lost)
    assert f"recorded and queued: {len(lost)}\n" in result.output
    assert unaccounted == 0
