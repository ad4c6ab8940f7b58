"""`consulta simulate ussd` against the real `consulta web`: the screens a handset shows, a vote.

The simulator runs as its own process, as an operator would run it, and talks HTTP to gunicorn;
the worker side is drained in-process afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.models import InboundRow, VoteRow
from gateway.settings import Settings
from gateway.simulate_ussd import Dial, Reply, Shown, next_text, run_session, scripted, shown
from tests.support import processes
from tests.support.factories import seed
from tests.support.pipeline import drain
from workers.runtime import Runtime

AT_SECRET = "at-simulator-secret"
VOTER = "+584141234567"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(africastalking_secret=AT_SECRET)


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(rt.sessions, ballots={"C1": 5}, people=[("V12345678", "C1", date(1990, 5, 1), [VOTER])])


@contextmanager
def web_with_ussd(settings: Settings) -> Iterator[str]:
    """`consulta web` with the USSD secret, which processes.environment() does not forward."""
    port = processes.free_port()
    env = processes.environment(
        settings.with_(port=port), AFRICASTALKING_SECRET=settings.africastalking_secret or ""
    )
    web = processes.spawn("web", env)
    try:
        processes.wait_healthy(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop(web)


def consulta(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`consulta ...` in a folder with no var/demo.json, and no secret in the environment."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        input=stdin,
        env={**os.environ, "AFRICASTALKING_SECRET": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def simulate(
    base_url: str, *inputs: str, cwd: Path, secret: str = AT_SECRET
) -> subprocess.CompletedProcess[str]:
    flags = [arg for entry in inputs for arg in ("--input", entry)]
    command = ["simulate", "ussd", "--from", VOTER, "--url", base_url, "--secret", secret]
    return consulta(*command, *flags, cwd=cwd)


@pytest.mark.slow
def test_a_simulated_session_shows_every_screen_and_its_vote_is_stored(
    settings: Settings, rt: Runtime, registry: None, tmp_path: Path
) -> None:
    with web_with_ussd(settings) as base_url:
        done = simulate(base_url, "1", "3", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Consulta Consulta de prueba\n1 Votar" in out  # the welcome screen
    assert "Elige tu proyecto:" in out
    assert "3 Proyecto C1-3" in out  # the ballot
    assert "Confirmas tu voto por 3 Proyecto C1-3?" in out  # the confirmation
    assert "Voto enviado. Recibo" in out
    assert out.rstrip().endswith("[session ended]")
    assert "CON " not in out
    assert "END " not in out  # the handset never shows the prefixes
    assert [line for line in out.splitlines() if line.startswith("> ")] == ["> 1", "> 3", "> 1"]
    drain(rt)
    with rt.sessions() as session:
        [vote] = session.scalars(select(VoteRow)).all()
        [inbound] = session.scalars(select(InboundRow)).all()
    assert vote.option == 3
    assert f"Recibo {vote.receipt}." in out  # the receipt shown is the one the vote is filed under
    assert (inbound.channel, inbound.sender) == ("ussd", VOTER)


@pytest.mark.slow
def test_keys_piped_on_stdin_are_typed_until_the_input_ends(
    settings: Settings, rt: Runtime, registry: None, tmp_path: Path
) -> None:
    with web_with_ussd(settings) as base_url:
        command = ["simulate", "ussd", "--from", VOTER, "--url", base_url, "--secret", AT_SECRET]
        done = consulta(*command, cwd=tmp_path, stdin="1\n")
    assert done.returncode == 0, done.stderr
    assert "> 1\n" in done.stdout  # what was piped is shown as typed
    assert "Elige tu proyecto:" in done.stdout
    assert done.stdout.rstrip().endswith("[hung up]")  # the end of the input hangs up


@pytest.mark.slow
def test_a_wrong_secret_ends_the_session_with_the_gateways_refusal(
    settings: Settings, tmp_path: Path
) -> None:
    with web_with_ussd(settings) as base_url:
        done = simulate(base_url, "1", cwd=tmp_path, secret="wrong")
    assert done.returncode == 1
    assert "[session ended]" in done.stdout
    assert "403" in done.stderr


def test_without_a_demo_or_flags_it_says_what_to_pass(tmp_path: Path) -> None:
    done = consulta("simulate", "ussd", "--from", VOTER, cwd=tmp_path)
    assert done.returncode == 1
    assert "--url and --secret" in done.stderr


@pytest.mark.parametrize(
    ("previous", "entry", "expected"),
    [
        pytest.param("", "1", "1", id="the first input"),
        pytest.param("1", "3", "1*3", id="a second input"),
        pytest.param("1*3", "1", "1*3*1", id="a third input"),
        pytest.param("1*3", "0", "1*3*0", id="a back key is kept in the path"),
        pytest.param("1", "", "1*", id="an empty input"),
        pytest.param("1", "2*5", "1*2*5", id="a star typed by the user"),
    ],
)
def test_next_text_builds_the_path_as_africastalking_does(
    previous: str, entry: str, expected: str
) -> None:
    assert next_text(previous, entry) == expected


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        pytest.param(Reply(200, "CON a\nb"), Shown("a\nb", ends=False), id="continue"),
        pytest.param(Reply(200, "END bye"), Shown("bye", ends=True), id="end"),
    ],
)
def test_the_handset_shows_the_screen_without_its_prefix(reply: Reply, expected: Shown) -> None:
    assert shown(reply) == expected


FAKE_DIAL = Dial("http://gateway.invalid/ussd/africastalking/s", VOTER, session_id="ATUid_1")


class FakeGateway:
    """Answers CON until the third input, then END; remembers every `text` it was sent."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, dial: Dial, text: str) -> Reply:
        self.texts.append(text)
        inputs = text.split("*") if text else []
        return Reply(200, f"END done {text}" if len(inputs) >= 3 else f"CON screen {len(inputs)}")


def test_a_session_sends_the_whole_path_on_every_hop_and_stops_at_end() -> None:
    gateway, screens = FakeGateway(), list[str]()
    typed = scripted(["1", "3", "1", "9"], screens.append)
    ended = run_session(FAKE_DIAL, typed, screens.append, post=gateway)
    assert ended
    assert gateway.texts == ["", "1", "1*3", "1*3*1"]  # the 9 is never typed: the session ended
    assert screens[-2:] == ["-" * 32 + "\ndone 1*3*1\n" + "-" * 32, "[session ended]"]


def test_running_out_of_input_hangs_up_without_another_hop() -> None:
    gateway, screens = FakeGateway(), list[str]()
    ended = run_session(FAKE_DIAL, scripted(["1"], screens.append), screens.append, post=gateway)
    assert not ended
    assert gateway.texts == ["", "1"]
    assert screens[-1] == "[hung up]"
