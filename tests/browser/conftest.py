"""Debian's Chromium, driven by Playwright, against a real `consulta web`, Redis and databases.

Playwright's own browser download is not available on these machines, so the browser is the
system's `/usr/bin/chromium` (`apt-get install chromium`). If it is missing the tests fail: CI
installs it, and nothing is skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from gateway.app import create_app
from gateway.models import OperatorRow
from gateway.ops.auth import hash_password
from gateway.settings import Settings
from tests.support import processes
from workers.runtime import Runtime

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-gpu",
]
PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]
# What `consulta web` needs beyond what processes.environment() forwards.
CONSOLE_ENV = {
    "OPS_SECRET_KEY": "browser-test-secret-key",
    # The cookie stays Secure: Chromium treats http://127.0.0.1 as a secure context.
    "METRICS_TOKEN": "browser-test-metrics-token",
}
# Until app.py lists the console's blueprints, serve the same gunicorn app with them added.
LAUNCHER = """
from gateway import webserver
from gateway.app import create_app
from gateway.ops import install
from gateway.settings import Settings

webserver.GatewayServer.load = lambda self: install(create_app(self.settings))
webserver.serve(Settings.from_env(), host="127.0.0.1")
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser profile per test; a script error or a CSP refusal fails the test."""
    context = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="en-GB")
    opened = context.new_page()
    problems: list[str] = []

    def note_csp(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            problems.append(message.text)

    opened.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    opened.on("console", note_csp)
    yield opened
    context.close()
    assert problems == []


def _app_registers_console(settings: Settings) -> bool:
    app = create_app(settings)
    try:
        return "ops" in app.blueprints
    finally:
        app.extensions["consulta"].engine.dispose()
        app.extensions["consulta"].redis.close()


def _spawn_web(settings: Settings, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if _app_registers_console(settings):
        return processes.spawn("web", env)
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so processes.stop reaches gunicorn's workers too
        )


@pytest.fixture
def console_env(settings: Settings) -> dict[str, str]:
    port = processes.free_port()
    return processes.environment(settings.with_(port=port), **CONSOLE_ENV)


@pytest.fixture
def console_url(
    settings: Settings, rt: Runtime, console_env: dict[str, str], tmp_path: Path
) -> Iterator[str]:
    """`consulta web` on a free port, sharing this test's database and Redis."""
    port = int(console_env["PORT"])
    process = _spawn_web(settings, console_env, tmp_path / "web.log")
    try:
        processes.wait_healthy(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        processes.stop(process)


@pytest.fixture
def worker(console_env: dict[str, str]) -> Iterator[None]:
    """A real `consulta worker`: counts votes, sends replies, and shows up as alive."""
    process = processes.spawn("worker", console_env)
    try:
        yield
    finally:
        processes.stop(process)


@pytest.fixture
def operators(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        session.add_all(
            OperatorRow(username=name, password_hash=hash_password(PASSWORD), role=name)
            for name in ("viewer", "operator", "admin")
        )


def sign_in(page: Page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/ops/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def screenshot(page: Page, tmp_path: Path, name: str, for_readme: bool = False) -> Path:
    """Under the test's own folder; the README's copy only when CONSOLE_SCREENSHOT=1."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if for_readme and os.environ.get("CONSOLE_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(path, ROOT / "docs" / "console.png")
    return path
