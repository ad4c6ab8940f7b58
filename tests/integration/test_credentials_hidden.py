"""Passwords in REDIS_URL and DATABASE_URL never reach a screen, a log or an HTTP answer.

The stores below are unreachable on purpose (port 1 refuses at once), so every path that reports
a storage failure runs: the health check, /metrics, a command's error, the demo's banner.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from flask import Flask

from gateway import demo
from gateway.app import create_app
from gateway.cli import main
from gateway.settings import Settings
from tests.conftest import SECRET

PASSWORD = "Pa55-in-the-url"
DATABASE = f"postgresql://consulta:{PASSWORD}@127.0.0.1:1/consulta"
REDIS = f"redis://default:{PASSWORD}@127.0.0.1:1/0"
METRICS_TOKEN = "metrics-token-for-this-test"


@pytest.fixture
def unreachable(settings: Settings) -> Settings:
    return settings.with_(database_url=DATABASE, redis_url=REDIS)


@pytest.fixture
def broken_app(unreachable: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)
    app = create_app(unreachable)
    yield app
    app.extensions["consulta"].engine.dispose()
    app.extensions["consulta"].redis.close()


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_the_health_check_names_the_failure_but_not_the_url(
    broken_app: Flask, every_log: pytest.LogCaptureFixture
) -> None:
    response = broken_app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json == {
        "status": "degraded",
        "database": "error: OperationalError",
        "redis": "error: ConnectionError",
    }
    assert PASSWORD not in every_log.text


def test_a_failed_metrics_scrape_logs_no_password(
    broken_app: Flask, every_log: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    response = broken_app.test_client().get("/metrics", headers=headers)
    assert response.status_code == 500
    assert PASSWORD not in response.get_data(as_text=True)
    assert every_log.text  # the failure was logged, with its traceback
    assert PASSWORD not in every_log.text


@pytest.mark.parametrize(
    "args",
    [
        ["operators", "list"],
        ["results", "cpn-2026"],
        ["reconcile", "cpn-2026", "--since", "2026-03-08T07:00", "--to", "+582125550000"],
    ],
    ids=["listing operators", "reading results", "reconciling"],
)
def test_a_command_that_cannot_reach_the_database_says_so_without_the_password(
    args: list[str], every_log: pytest.LogCaptureFixture
) -> None:
    env = {"DATABASE_URL": DATABASE, "REDIS_URL": REDIS, "CONSULTA_SECRET": SECRET}
    env |= {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "token"}
    result = CliRunner(env=env).invoke(main, args)
    assert result.exit_code == 1
    assert "the database refused" in result.output
    assert PASSWORD not in result.output
    assert PASSWORD not in str(result.exception)
    assert PASSWORD not in every_log.text


def test_the_demo_banner_shows_where_the_stores_are_but_not_their_passwords(
    unreachable: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    demo._print_banner(unreachable)
    shown = capsys.readouterr().out
    assert "redis://default:***@127.0.0.1:1/0" in shown
    assert "postgresql://consulta:***@127.0.0.1:1/consulta" in shown
    assert PASSWORD not in shown
