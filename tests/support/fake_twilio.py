"""A stand-in for Twilio's REST API: a real HTTP server on 127.0.0.1 that answers like Twilio.

It takes `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP Basic auth, records
every request, and answers 201 with a fresh message SID, unless a test planned otherwise:

    fake.plan(429, code=20429)        # a refusal, with Twilio's JSON error body
    fake.plan(500)                    # a server error: the message may or may not exist
    fake.plan(429, problem=True)      # the same refusal as an RFC 9457 problem document
    fake.plan("hang", seconds=5)      # no answer until the client gives up (a read timeout)
    fake.plan("drop")                 # the message is made, the connection closed unanswered
    fake.plan(201, raw="not JSON")    # exactly this body, for answers Twilio should never give
    fake.plan(201, before=callback)   # run something (a status callback, say) before answering

Planned answers are used one per request, in order; after them every request succeeds.

`GET` on the same path is Twilio's Message list: every message the fake created, and every
message a test says a voter sent (`fake.receive(sender, body)`, direction `inbound`), newest
first, filtered by `To`, `From` and `DateSent` (`DateSent>` and `DateSent<` are Twilio's `>=` and
`<=`, a date or a date and time), in pages of `PageSize` (at most `max_page_size`, 1000 as at
Twilio) linked by `next_page_uri`. A planned error answers a list request too.
A test module gets the `fake_twilio` fixture by importing it:

    from tests.support.fake_twilio import fake_twilio_fixture  # noqa: F401 - a fixture
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import ssl
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from gateway.models import utcnow
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN

HOST = "127.0.0.1"
ACCOUNT_SID = "AC" + "5" * 32
TWILIO_FROM = "+582125550000"
MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/Messages\.json$")
MAX_PAGE_SIZE = 1000  # Twilio's own cap on PageSize

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
    path: str  # without the query string
    username: str | None
    password: str | None
    form: dict[str, str]
    query: dict[str, str] = field(default_factory=dict)
    peer: int = 0  # the client's port: which connection the request came on

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
    """One scripted answer. `status` "hang" waits `seconds` before answering at all; "drop"
    closes the connection without an answer."""

    status: int | Literal["hang", "drop"]
    code: int | None = None
    message: str | None = None
    seconds: float = 5.0
    before: Callable[[], None] | None = None
    problem: bool = False  # answer in RFC 9457 form (type, title, status, code) instead
    raw: str | None = None  # this body, as it is


DROPPED = 0  # the status of an "answer" that closes the connection instead


@dataclass
class _Answer:
    status: int
    payload: dict[str, Any] = field(default_factory=dict)
    raw: str | None = None  # sent instead of the payload's JSON


@dataclass(frozen=True)
class _Logged:
    """A message in the account's log: the resource as the API shows it, and when it was sent."""

    resource: dict[str, Any]
    sent_at: datetime | None


class FakeTwilio:
    """Twilio's Messages endpoint on a local port, scripted per call and thread-safe."""

    def __init__(  # noqa: PLR0913 - each is a way Twilio's side of the wire can behave
        self,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        keep_alive: bool = False,
        idle_timeout: float | None = None,
        tls: ssl.SSLContext | None = None,
        latency: float = 0.0,
    ) -> None:
        """`keep_alive` serves many requests per connection, as Twilio does; tests leave it off
        so that nothing lingers after them. `idle_timeout` closes a kept-alive connection idle
        that long; `tls` serves HTTPS with that server context; `latency` is how long each
        create takes to answer, as over a real network."""
        self.account_sid = account_sid
        self.latency = latency
        self.idle_timeout = idle_timeout
        self.auth_token = auth_token
        self.errors: list[BaseException] = []  # raised inside the server: the fixture re-raises
        self._lock = threading.Lock()
        self._plans: deque[Planned] = deque()
        self._seen: list[SeenRequest] = []
        self._created: list[str] = []
        self._log: list[_Logged] = []
        self.max_page_size = MAX_PAGE_SIZE  # lower it to make a test page through a short list
        self._stopping = threading.Event()
        self._server = _Server((HOST, 0), _KeepAliveHandler if keep_alive else _Handler, fake=self)
        self._scheme = "https" if tls else "http"
        if tls:  # the handshake happens in the handler's thread, on its first read
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
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
        return f"{self._scheme}://{HOST}:{self._server.server_port}"

    def env(self) -> dict[str, str]:
        """The environment a `consulta` command needs to reach this fake as its Twilio account."""
        return {
            "TWILIO_ACCOUNT_SID": self.account_sid,
            "TWILIO_AUTH_TOKEN": self.auth_token,
            "TWILIO_API_BASE_URL": self.url,
            "TWILIO_FROM": TWILIO_FROM,
        }

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
        raw: str | None = None,
    ) -> None:
        """Answer the next request this way (plans are used in the order they were made)."""
        with self._lock:
            self._plans.append(Planned(status, code, message, seconds, before, problem, raw))

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

    def receive(
        self,
        sender: str,
        body: str,
        *,
        to: str = TWILIO_FROM,
        sid: str | None = None,
        at: datetime | None = None,
        direction: str = "inbound",
    ) -> dict[str, Any]:
        """A message a voter sent to our number, in the account's log; its webhook is the test's.

        Returns the resource as the list shows it: `sid`, `from`, `to`, `body`, `date_sent`...
        """
        sent_at = (at or utcnow()).astimezone(UTC).replace(microsecond=0)  # whole seconds
        resource = _inbound_resource(self.account_sid, sid or "SM" + secrets.token_hex(16))
        resource.update(
            {"from": sender, "to": to, "body": body, "date_sent": format_datetime(sent_at, True)}
        )
        resource["direction"] = direction  # "outbound-api" for a reply already sent, say
        resource["date_created"] = resource["date_updated"] = resource["date_sent"]
        with self._lock:
            self._log.append(_Logged(resource, sent_at))
        return resource

    # -- what the handler calls -----------------------------------------------------------

    def _answer(self, seen: SeenRequest) -> _Answer:
        with self._lock:
            self._seen.append(seen)
        match = MESSAGES_PATH.match(seen.path)
        if seen.method not in {"GET", "POST"} or not match:
            return _error(404, 20404)
        if (seen.username, seen.password) != (self.account_sid, self.auth_token):
            return _error(401, 20003)
        if match["account"] != self.account_sid:
            return _error(404, 20404)
        if seen.method == "GET":
            return self._planned_failure(seen) or self._list_page(seen)
        return self._planned_answer(seen)

    def _planned_failure(self, seen: SeenRequest) -> _Answer | None:
        """A list request takes the next plan too: an error, or a hang before the answer."""
        with self._lock:
            planned = self._plans.popleft() if self._plans else None
        if planned is None:
            return None
        if planned.status == "hang":
            self._stopping.wait(planned.seconds)
            return None
        if planned.status == "drop":
            return _Answer(DROPPED)
        if planned.status in {HTTPStatus.OK, HTTPStatus.CREATED}:
            return None
        error = _error(planned.status, planned.code, planned.message)
        return _as_problem(error, seen.path) if planned.problem else error

    def _list_page(self, seen: SeenRequest) -> _Answer:
        query = seen.query
        size = min(int(query.get("PageSize") or 50), self.max_page_size)
        with self._lock:
            rows = [logged.resource for logged in _newest_first(self._log) if _kept(logged, query)]
        start = _after_token(rows, query.get("PageToken"))
        page = rows[start : start + size]
        number = int(query.get("Page") or 0)
        more = start + size < len(rows)
        token = {"PageToken": "PA" + page[-1]["sid"]} if more else {}
        next_query = {**query, "PageSize": str(size), "Page": str(number + 1), **token}
        return _Answer(
            200,
            {
                "first_page_uri": _uri(seen.path, {**query, "PageSize": str(size), "Page": "0"}),
                "end": start + len(page) - 1,
                "previous_page_uri": None,
                "messages": page,
                "uri": _uri(seen.path, query),
                "page_size": size,
                "start": start,
                "next_page_uri": _uri(seen.path, next_query) if more else None,
                "page": number,
            },
        )

    def _planned_answer(self, seen: SeenRequest) -> _Answer:
        if self.latency:
            self._stopping.wait(self.latency)
        with self._lock:
            planned = self._plans.popleft() if self._plans else Planned(201)
        if planned.before:
            planned.before()
        if planned.status == "hang":
            answer = self._created_answer(seen)  # Twilio made the message; only the answer is late
            self._stopping.wait(planned.seconds)
            return answer
        if planned.status == "drop":
            self._created_answer(seen)  # Twilio made the message; its answer never came
            return _Answer(DROPPED)
        if planned.raw is not None:
            return _Answer(planned.status, raw=planned.raw)
        if planned.status != HTTPStatus.CREATED:
            error = _error(planned.status, planned.code, planned.message)
            return _as_problem(error, seen.path) if planned.problem else error
        return _refusal_of(seen.form) or self._created_answer(seen)

    def _created_answer(self, seen: SeenRequest) -> _Answer:
        sid = "SM" + secrets.token_hex(16)
        resource = _message_resource(self.account_sid, sid, seen.form)
        with self._lock:
            self._created.append(sid)
            self._log.append(_Logged(resource, None))  # not sent yet: no date_sent
        return _Answer(201, resource)


# --- the list: Twilio's filters and paging ------------------------------------------------------


def _newest_first(log: list[_Logged]) -> list[_Logged]:
    """Twilio lists the newest first; a message not yet sent has no date and comes last."""
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(log, key=lambda m: (m.sent_at or oldest, m.resource["sid"]), reverse=True)


def _kept(logged: _Logged, query: dict[str, str]) -> bool:
    resource, at = logged.resource, logged.sent_at
    for field_name, key in (("to", "To"), ("from", "From")):
        if key in query and resource[field_name] != query[key]:
            return False
    spans = {
        key: _span(query[key]) for key in ("DateSent>", "DateSent<", "DateSent") if key in query
    }
    if not spans:
        return True
    if at is None:
        return False  # not sent yet: no date to match
    after = "DateSent>" not in spans or at >= spans["DateSent>"][0]
    before = "DateSent<" not in spans or at < spans["DateSent<"][1]
    on = "DateSent" not in spans or spans["DateSent"][0] <= at < spans["DateSent"][1]
    return after and before and on


def _span(value: str) -> tuple[datetime, datetime]:
    """[first, last) of a DateSent value: a whole day for a date, one second for a time."""
    if len(value) == len("2026-03-08"):
        day = datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC)
        return day, day + timedelta(days=1)
    moment = datetime.fromisoformat(value)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment, moment + timedelta(seconds=1)


def _after_token(rows: list[dict[str, Any]], token: str | None) -> int:
    """Where the page after `token` starts: just past the message it names."""
    if not token:
        return 0
    sids = [row["sid"] for row in rows]
    sid = token.removeprefix("PA")
    return sids.index(sid) + 1 if sid in sids else len(rows)


def _uri(path: str, query: dict[str, str]) -> str:
    return f"{path}?{urlencode(query)}"


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


def _inbound_resource(account_sid: str, sid: str) -> dict[str, Any]:
    """The Message resource of a received SMS, before its sender, body and dates are filled in."""
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}"
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "direction": "inbound",
        "error_code": None,
        "error_message": None,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": sid,
        "status": "received",
        "subresource_uris": {"media": f"{uri}/Media.json"},
        "uri": f"{uri}.json",
    }


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
        # A client that gave up is expected, and so is one that refused our certificate.
        if not isinstance(error, ConnectionError | ssl.SSLError):
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
        url = urlsplit(self.path)
        form, query = dict(parse_qsl(raw)), dict(parse_qsl(url.query))
        peer = self.client_address[1]
        seen = SeenRequest(self.command, url.path, username, password, form, query, peer)
        try:
            answer = self.server.fake._answer(seen)
        except Exception as error:  # a test's `before` hook failed: tell the test, answer 500
            self.server.fake.errors.append(error)
            answer = _error(500)
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        if answer.status == DROPPED:
            self.close_connection = True
            return
        raw = json.dumps(answer.payload) if answer.raw is None else answer.raw
        payload = raw.encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the tests inspect `requests` instead."""


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: with Nagle's algorithm the body waits for
    # the client's delayed ACK of the headers, 40 ms, on a connection that stays open.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        if self.server.fake.idle_timeout is not None:  # else wait for the next request for ever
            self.connection.settimeout(self.server.fake.idle_timeout)


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        username, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return username, password


def webhook_form(message: dict[str, Any]) -> dict[str, str]:
    """The form Twilio posts to the number's webhook for a message in its log."""
    return {
        "MessageSid": message["sid"],
        "AccountSid": message["account_sid"],
        "From": message["from"],
        "To": message["to"],
        "Body": message["body"],
        "NumMedia": message["num_media"],
        "NumSegments": message["num_segments"],
        "SmsStatus": "received",
        "ApiVersion": message["api_version"],
    }


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
