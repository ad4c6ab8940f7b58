"""A stand-in for Twilio's REST API: a real HTTP server on 127.0.0.1 that answers like Twilio.

It takes `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic auth, records
every request, and answers 201 with a fresh message SID, unless a test planned otherwise:

    fake.plan(429, code=20429)        # a refusal, with Twilio's JSON error body
    fake.plan(500)                    # a server error: the message may or may not exist
    fake.plan(429, problem=True)      # the same refusal as an RFC 9457 problem document
    fake.plan("hang", seconds=5)      # no answer until the client gives up (a read timeout)
    fake.plan(201, before=callback)   # run something (a status callback, say) before answering

Planned answers are used one per request, in order; after them every request succeeds.
A test module gets the `fake_twilio` fixture by importing it:

    from tests.support.fake_twilio import fake_twilio_fixture  # noqa: F401 - a fixture
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl

import pytest

from gateway.models import utcnow
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN

HOST = "127.0.0.1"
ACCOUNT_SID = "AC" + "5" * 32
TWILIO_FROM = "+582125550000"
MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")

# Twilio's own error codes and wording for the answers a test is likely to plan.
ERRORS: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service is unavailable. Please try again",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
}
DEFAULT_CODES = {401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


@dataclass(frozen=True)
class SeenRequest:
    """One request as the fake received it: where, with which credentials, and what form."""

    method: str
    path: str
    username: str | None
    password: str | None
    form: dict[str, str]

    @property
    def to(self) -> str | None:
        return self.form.get("To")

    @property
    def from_(self) -> str | None:
        return self.form.get("From")

    @property
    def messaging_service_sid(self) -> str | None:
        return self.form.get("MessagingServiceSid")

    @property
    def body(self) -> str | None:
        return self.form.get("Body")

    @property
    def status_callback(self) -> str | None:
        return self.form.get("StatusCallback")


@dataclass(frozen=True)
class Planned:
    """One scripted answer. `status` "hang" waits `seconds` before answering at all."""

    status: int | Literal["hang"]
    code: int | None = None
    message: str | None = None
    seconds: float = 5.0
    before: Callable[[], None] | None = None
    problem: bool = False  # answer in RFC 9457 form (type, title, status, code) instead


@dataclass
class _Answer:
    status: int
    payload: dict[str, Any] = field(default_factory=dict)


class FakeTwilio:
    """Twilio's Messages endpoint on a local port, scripted per call and thread-safe."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.errors: list[BaseException] = []  # raised inside the server: the fixture re-raises
        self._lock = threading.Lock()
        self._plans: deque[Planned] = deque()
        self._seen: list[SeenRequest] = []
        self._created: list[str] = []
        self._stopping = threading.Event()
        self._server = _Server((HOST, 0), _Handler, fake=self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeTwilio:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()  # wakes any "hang" first, so shutdown does not wait for it
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """What TWILIO_API_BASE_URL should be: the SDK appends /2010-04-01/Accounts/..."""
        return f"http://{HOST}:{self._server.server_port}"

    # -- scripting and inspection ---------------------------------------------------------

    def plan(
        self,
        status: int | Literal["hang"],
        *,
        code: int | None = None,
        message: str | None = None,
        seconds: float = 5.0,
        before: Callable[[], None] | None = None,
        problem: bool = False,
    ) -> None:
        """Answer the next request this way (plans are used in the order they were made)."""
        with self._lock:
            self._plans.append(Planned(status, code, message, seconds, before, problem))

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._seen)

    @property
    def created(self) -> list[str]:
        """The SIDs of the messages this fake accepted (answered 201), in order."""
        with self._lock:
            return list(self._created)

    # -- what the handler calls -----------------------------------------------------------

    def _answer(self, seen: SeenRequest) -> _Answer:
        with self._lock:
            self._seen.append(seen)
        match = MESSAGES_PATH.match(seen.path)
        if seen.method != "POST" or not match:
            return _error(404, 20404)
        if (seen.username, seen.password) != (self.account_sid, self.auth_token):
            return _error(401, 20003)
        if match["account"] != self.account_sid:
            return _error(404, 20404)
        return self._planned_answer(seen)

    def _planned_answer(self, seen: SeenRequest) -> _Answer:
        with self._lock:
            planned = self._plans.popleft() if self._plans else Planned(201)
        if planned.before:
            planned.before()
        if planned.status == "hang":
            answer = self._created_answer(seen)  # Twilio made the message; only the answer is late
            self._stopping.wait(planned.seconds)
            return answer
        if planned.status != HTTPStatus.CREATED:
            error = _error(planned.status, planned.code, planned.message)
            return _as_problem(error, seen.path) if planned.problem else error
        return _refusal_of(seen.form) or self._created_answer(seen)

    def _created_answer(self, seen: SeenRequest) -> _Answer:
        sid = "SM" + secrets.token_hex(16)
        with self._lock:
            self._created.append(sid)
        return _Answer(201, _message_resource(self.account_sid, sid, seen.form))


def _refusal_of(form: dict[str, str]) -> _Answer | None:
    """Twilio's validation of a create, in the order it checks."""
    if not form.get("To"):
        return _error(400, 21604)
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return _error(400, 21603)
    if not form.get("Body"):
        return _error(400, 21602)
    return None


def _error(status: int, code: int | None = None, message: str | None = None) -> _Answer:
    code = code or DEFAULT_CODES.get(status)
    text = message or ERRORS.get(code or 0) or HTTPStatus(status).phrase
    return _Answer(
        status,
        {
            "code": code,
            "message": text,
            "more_info": f"https://www.twilio.com/docs/errors/{code}" if code else None,
            "status": status,
        },
    )


def _as_problem(error: _Answer, path: str) -> _Answer:
    """The same error as an RFC 9457 problem document, the shape Twilio's newer APIs use."""
    code, text = error.payload["code"], error.payload["message"]
    problem = {
        "type": f"https://www.twilio.com/docs/errors/{code}",
        "title": text,
        "status": error.status,
        "code": code,
        "detail": text,
        "instance": path,
    }
    return _Answer(error.status, problem)


def _message_resource(account_sid: str, sid: str, form: dict[str, str]) -> dict[str, Any]:
    """The Message resource as Twilio returns it from a create."""
    now = format_datetime(utcnow(), usegmt=True)
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
    service = form.get("MessagingServiceSid")
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": form.get("Body"),
        "date_created": now,
        "date_sent": None,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": form.get("From"),
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "accepted" if service and not form.get("From") else "queued",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "to": form.get("To"),
        "uri": f"{uri}.json",
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, fake: FakeTwilio) -> None:
        super().__init__(address, handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if not isinstance(error, ConnectionError):  # a client that gave up is expected
            self.fake.errors.append(error or RuntimeError("unknown server error"))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after a test

    def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
        self._handle()

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8")
        username, password = _basic_auth(self.headers.get("Authorization"))
        seen = SeenRequest(self.command, self.path, username, password, dict(parse_qsl(raw)))
        try:
            answer = self.server.fake._answer(seen)
        except Exception as error:  # a test's `before` hook failed: tell the test, answer 500
            self.server.fake.errors.append(error)
            answer = _error(500)
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        payload = json.dumps(answer.payload).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the tests inspect `requests` instead."""


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        username, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return username, password


def settings_with_twilio(settings: Settings, fake: FakeTwilio, **changes: object) -> Settings:
    """These settings, sending through the fake (with a From number unless told otherwise)."""
    twilio: dict[str, object] = {
        "twilio_account_sid": fake.account_sid,
        "twilio_auth_token": fake.auth_token,
        "twilio_from": TWILIO_FROM,
        "twilio_api_base_url": fake.url,
    }
    return settings.with_(**(twilio | changes))


@pytest.fixture(name="fake_twilio")
def fake_twilio_fixture() -> Iterator[FakeTwilio]:
    """A running fake Twilio for one test; anything that went wrong inside it fails the test."""
    with FakeTwilio() as fake:
        yield fake
    if fake.errors:
        raise fake.errors[0]
