"""The whole path as an operator runs it: CLI set-up, `consulta web`, `consulta worker`, Twilio.

Every step is a real process: the consultation, ballots and registry come in through the
`consulta` command; a Twilio-format client posts a signed vote to gunicorn; the worker counts
it and sends the confirmation to a local Twilio-compatible server; `consulta results` shows it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.settings import Settings
from tests.integration.test_faults import post_form
from tests.support import processes
from tests.support.fake_twilio import FakeTwilio, fake_twilio_fixture, settings_with_twilio
from tests.support.twilio_requests import inbound_form

__all__ = ["fake_twilio_fixture"]  # the fixture, imported so pytest finds it here
pytestmark = pytest.mark.slow
VOTER = "+584141234567"


def consulta(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def set_up_consultation(env: dict[str, str], folder: Path) -> None:
    ballots, registry = folder / "ballots.csv", folder / "registry.csv"
    ballots.write_text(
        "circuit_code,circuit_name,option,title\n"
        + "".join(f"C1,Circuito Uno,{n},Proyecto {n}\n" for n in range(1, 6))
    )
    registry.write_text(
        "national_id,circuit_code,birth_date,phones\nV-12.345.678,C1,1980-01-31,0414-123.45.67\n"
    )
    consulta(
        env,
        "consultation",
        "create",
        "cpn",
        "--name",
        "Consulta Popular",
        "--opens",
        "2020-01-01T00:00",
        "--closes",
        "2099-12-31T23:59",
    )
    consulta(env, "ballots", "import", "cpn", str(ballots))
    consulta(env, "registry", "import", "cpn", str(registry))
    consulta(env, "consultation", "open", "cpn")  # a new consultation is a draft until opened


def test_a_signed_vote_through_web_and_worker_is_stored_once_confirmed_once_and_in_results(
    settings: Settings, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    live = settings_with_twilio(settings, fake_twilio).with_(sweep_after_seconds=5)
    env = processes.environment(
        live,
        TWILIO_ACCOUNT_SID=fake_twilio.account_sid,
        TWILIO_FROM="+582125550000",
        TWILIO_API_BASE_URL=fake_twilio.url,
    )
    set_up_consultation(env, tmp_path)
    form = inbound_form(VOTER, "VOTO 4")
    worker = processes.spawn("worker", env)
    try:
        with processes.web_server(live) as base_url:
            for _ in range(3):  # Twilio retries; a replay must change nothing
                assert (
                    post_form(base_url, live.public_url or "", form, live.twilio_auth_token) == 200
                )
            assert processes.wait_until(lambda: len(fake_twilio.created) >= 1, seconds=30)
    finally:
        processes.stop(worker)
    [sent] = fake_twilio.requests
    assert sent.to == VOTER
    assert "voto registrado" in (sent.body or "")
    assert sent.status_callback == f"{live.public_url}/sms/twilio/status"
    results = json.loads(consulta(env, "results", "cpn", "--format", "json"))
    [circuit] = results["circuits"]
    assert results["consultation"] == "cpn"
    assert (circuit["code"], circuit["eligible"], circuit["votes"]) == ("C1", 1, 1)
    assert [o["votes"] for o in circuit["options"]] == [0, 0, 0, 1, 0]
