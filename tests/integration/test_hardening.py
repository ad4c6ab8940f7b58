"""Hardening at the HTTP edge: security headers, the console's cookie, and body size limits."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.models import ConsultationRow, InboundRow, OperatorRow
from gateway.ops.auth import hash_password
from gateway.ops.views import CSP as CONSOLE_CSP
from gateway.security_headers import CSP_BY_BLUEPRINT, NOTHING
from gateway.settings import Settings
from tests.support.factories import seed
from workers.runtime import Runtime

AT_SECRET = "at-secret-for-hardening"
HUBTEL_SECRET = "hubtel-secret-for-hardening"
PASSWORD = "correct horse battery"
EVERYWHERE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000",  # the test PUBLIC_URL is https
}


@pytest.fixture(autouse=True)
def console_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before an app is built: the console reads its settings when it is registered."""
    monkeypatch.setenv("OPS_SECRET_KEY", "test-secret-key-for-the-console")
    monkeypatch.delenv("OPS_COOKIE_SECURE", raising=False)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(africastalking_secret=AT_SECRET, hubtel_secret=HUBTEL_SECRET)


@pytest.fixture
def build(rt: Runtime) -> Iterator[Callable[[Settings], Flask]]:
    """Apps built under other settings or environment, closed afterwards."""
    built: list[Flask] = []

    def make(settings: Settings) -> Flask:
        built.append(create_app(settings))
        return built[-1]

    yield make
    for app in built:
        app.extensions["consulta"].engine.dispose()
        app.extensions["consulta"].redis.close()


@pytest.fixture
def signed_in(client: FlaskClient, rt: Runtime) -> FlaskClient:
    with rt.sessions() as session, session.begin():
        session.add(
            OperatorRow(username="ada", password_hash=hash_password(PASSWORD), role="admin")
        )
    form = {"username": "ada", "password": PASSWORD, "csrf_token": csrf_token(client)}
    assert client.post("/ops/login", data=form).status_code == 302
    return client


@pytest.fixture
def certified(rt: Runtime) -> str:
    seeded = seed(rt.sessions, slug="certified-2026")
    with rt.sessions() as session, session.begin():
        session.get(ConsultationRow, seeded.consultation_id).status = "certified"  # type: ignore[union-attr]
    return seeded.slug


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/ops/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page
    return found[1]


def inbound_rows(rt: Runtime) -> int:
    with rt.sessions() as session:
        return session.scalar(select(func.count()).select_from(InboundRow)) or 0


# --- security headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "csp"),
    [
        ("GET", "/healthz", 200, NOTHING),
        ("POST", "/sms/twilio", 403, NOTHING),
        ("POST", f"/ussd/africastalking/{AT_SECRET}", 400, NOTHING),
        ("GET", "/metrics", 403, NOTHING),
        ("GET", "/no-such-page", 404, NOTHING),
        ("GET", "/results/no-such-consultation", 404, CSP_BY_BLUEPRINT["public"]),
        ("GET", "/ops/login", 200, CONSOLE_CSP),
        ("GET", "/ops/static/ops/console.css", 200, CONSOLE_CSP),
        ("GET", "/ops/", 302, CONSOLE_CSP),
    ],
    ids=[
        "the health check",
        "a refused webhook",
        "a USSD callback",
        "metrics refused",
        "a page that does not exist",
        "a public results page that does not exist",
        "the console's login page",
        "the console's style sheet",
        "the console's redirect to sign in",
    ],
)
def test_every_response_carries_the_security_headers(
    client: FlaskClient, method: str, path: str, status: int, csp: str
) -> None:
    with client.open(path, method=method) as response:  # closes the static file it may send
        assert response.status_code == status
        assert response.headers["Content-Security-Policy"] == csp
        assert {name: response.headers.get(name) for name in EVERYWHERE} == EVERYWHERE


def test_the_console_and_rq_dashboard_pages_get_their_own_policies(signed_in: FlaskClient) -> None:
    for path in ("/ops/", "/ops/count", "/ops/consultations", "/ops/live.json"):
        response = signed_in.get(path)
        assert response.status_code == 200, path
        assert response.headers["Content-Security-Policy"] == CONSOLE_CSP, path
    dashboard = signed_in.get("/ops/rq/", follow_redirects=True)
    assert dashboard.status_code == 200
    assert dashboard.headers["Content-Security-Policy"] == CSP_BY_BLUEPRINT["rq_dashboard"]
    assert dashboard.headers["Referrer-Policy"] == "no-referrer"


def test_the_console_pages_load_nothing_their_policy_would_block(signed_in: FlaskClient) -> None:
    """Only files of our own: no inline script, no style attribute, no handler attribute."""
    for path in ("/ops/", "/ops/count", "/ops/consultations", "/ops/login"):
        page = signed_in.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), path
        assert not re.search(r"\sstyle=", page), path
        assert not re.search(r"\son[a-z]+=", page), path
        for url in re.findall(r'(?:src|href|action)="([^"]*)"', page):
            assert url.startswith("/"), (path, url)
            assert not url.startswith("//"), (path, url)


def test_the_public_results_page_style_is_allowed_by_its_hash_and_nothing_else(
    client: FlaskClient, certified: str
) -> None:
    response = client.get(f"/results/{certified}")
    assert response.status_code == 200
    page, csp = response.get_data(as_text=True), response.headers["Content-Security-Policy"]
    for style in re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp, f"put 'sha256-{digest}' in RESULTS_STYLE"
    assert "<script" not in page
    assert "script-src" not in csp  # default-src 'none' covers it


def test_hsts_is_sent_only_when_the_public_url_is_https(
    settings: Settings, build: Callable[[Settings], Flask]
) -> None:
    plain = build(settings.with_(public_url="http://gateway.internal:8000")).test_client()
    assert "Strict-Transport-Security" not in plain.get("/healthz").headers


# --- the console's session cookie -------------------------------------------------------------


@pytest.mark.parametrize(
    ("public_url", "cookie_secure", "secure"),
    [
        ("https://consulta.example.org", None, True),
        ("https://consulta.example.org", "0", True),
        ("http://10.0.0.5:8000", None, True),
        ("http://10.0.0.5:8000", "0", False),
    ],
    ids=[
        "over https the cookie is Secure",
        "over https OPS_COOKIE_SECURE=0 cannot turn Secure off",
        "Secure is the default even for a plain-http PUBLIC_URL",
        "OPS_COOKIE_SECURE=0 turns it off for plain http to another host",
    ],
)
def test_the_session_cookie_is_http_only_same_site_and_secure_over_https(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    build: Callable[[Settings], Flask],
    public_url: str,
    cookie_secure: str | None,
    secure: bool,
) -> None:
    if cookie_secure is not None:
        monkeypatch.setenv("OPS_COOKIE_SECURE", cookie_secure)
    client = build(settings.with_(public_url=public_url)).test_client()
    cookie = client.get("/ops/login").headers["Set-Cookie"]
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("consulta_ops=")
    assert {"httponly", "samesite", "path"} <= flags
    assert "SameSite=Lax" in cookie
    assert "Path=/ops" in cookie
    assert ("secure" in flags) is secure


# --- body size limits --------------------------------------------------------------------------

INBOUND_ROUTES = [
    "/sms/twilio",
    "/sms/twilio/status",
    f"/sms/africastalking/{AT_SECRET}",
    f"/sms/africastalking/{AT_SECRET}/status",
    f"/ussd/africastalking/{AT_SECRET}",
    f"/ussd/hubtel/{HUBTEL_SECRET}",
]


@pytest.mark.parametrize("path", INBOUND_ROUTES)
def test_every_inbound_route_refuses_a_body_over_the_limit_before_reading_it(
    client: FlaskClient, rt: Runtime, settings: Settings, path: str
) -> None:
    body = b"text=" + b"x" * settings.max_body_bytes
    response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
    assert inbound_rows(rt) == 0


@pytest.mark.parametrize("path", INBOUND_ROUTES)
def test_every_inbound_route_refuses_a_chunked_body_that_declares_no_length(
    client: FlaskClient, rt: Runtime, settings: Settings, path: str
) -> None:
    # Behind gunicorn such a body would be read up to the limit and silently cut there.
    response = client.post(
        path,
        input_stream=io.BytesIO(b"text=" + b"x" * 2 * settings.max_body_bytes),
        content_type="application/x-www-form-urlencoded",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 411
    assert inbound_rows(rt) == 0


@pytest.mark.parametrize("path", [p for p in INBOUND_ROUTES if p.startswith("/ussd/")])
def test_a_ussd_callback_has_a_smaller_limit_of_its_own(client: FlaskClient, path: str) -> None:
    body = b"text=" + b"1*" * 2500  # 5 KB: under the app's limit, over any real USSD callback
    response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413
