"""A stand-in for Africa's Talking: its messaging API on 127.0.0.1, and the forms it posts to us.

The server takes `POST /version1/messaging` (form `username`, `to`, `message`, `from`; header
`apiKey`), records every request, and answers 201 with AT's per-recipient verdict, statusCode 101
and a fresh messageId, unless a test planned otherwise:

    fake.plan(500)                    # a server error: the message may or may not exist
    fake.plan(429)                    # too many requests: nothing was sent
    fake.plan(201, code=406)          # a recipient refused: UserInBlacklist, messageId "None"
    fake.plan(201, message="InvalidSenderId")  # refused before any recipient
    fake.plan("hang", seconds=5)      # no answer until the client gives up (a read timeout)
    fake.plan(201, before=callback)   # run something (a delivery report, say) before answering
    fake.plan(201, raw="not JSON")    # exactly this body, for answers AT should never give

Planned answers are used one per request, in order; after them every request succeeds.
A test module gets the `fake_africastalking` fixture by importing it:

    from tests.support.fake_africastalking import fake_africastalking_fixture  # noqa: F401
"""

from __future__ import annotations

import functools
import json
import secrets
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl

import pytest

from gateway.settings import Settings

HOST = "127.0.0.1"
MESSAGING_PATH = "/version1/messaging"
USERNAME = "consulta"
API_KEY = "atsk_" + "7" * 40
SHORT_CODE = "20880"
UNAUTHORISED = "The supplied authentication is invalid"

# AT's per-recipient status codes and names, for the verdicts a test is likely to plan.
RECIPIENT_STATUSES: dict[int, str] = {
    100: "Processed",
    101: "Success",
    102: "Queued",
    401: "RiskHold",
    402: "InvalidSenderId",
    403: "InvalidPhoneNumber",
    405: "InsufficientBalance",
    406: "UserInBlacklist",
    407: "CouldNotRoute",
    500: "InternalServerError",
}
SENT = frozenset({100, 101, 102})


@dataclass(frozen=True)
class SeenRequest:
    """One request as the fake received it: where, with which key, and what form."""

    method: str
    path: str
    api_key: str | None
    accept: str | None
    form: dict[str, str]

    @property
    def username(self) -> str | None:
        return self.form.get("username")

    @property
    def to(self) -> str | None:
        return self.form.get("to")

    @property
    def from_(self) -> str | None:
        return self.form.get("from")

    @property
    def message(self) -> str | None:
        return self.form.get("message")


@dataclass(frozen=True)
class Planned:
    """One scripted answer. `status` "hang" waits `seconds` before answering at all."""

    status: int | Literal["hang"]
    code: int = 101  # the recipient's statusCode in a 201
    message: str | None = None  # a 201 with no recipients, and this as its Message
    seconds: float = 5.0
    before: Callable[[], None] | None = None
    raw: str | None = None  # this body, as it is


@dataclass(frozen=True)
class _Answer:
    status: int
    body: str
    content_type: str = "application/json"


class FakeAfricasTalking:
    """AT's bulk SMS endpoint on a local port, scripted per call and thread-safe."""

    def __init__(self, username: str = USERNAME, api_key: str = API_KEY) -> None:
        self.username = username
        self.api_key = api_key
        self.errors: list[BaseException] = []  # raised inside the server: the fixture re-raises
        self._lock = threading.Lock()
        self._plans: deque[Planned] = deque()
        self._seen: list[SeenRequest] = []
        self._created: list[str] = []
        self._stopping = threading.Event()
        self._server = _Server((HOST, 0), _Handler, fake=self)
        # A short poll: shutdown() waits one poll, and every test closes a server.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeAfricasTalking:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()  # wakes any "hang" first, so shutdown does not wait for it
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeAfricasTalking:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """What AFRICASTALKING_API_BASE_URL should be: the adapter appends /version1/messaging."""
        return f"http://{HOST}:{self._server.server_port}"

    # -- scripting and inspection ---------------------------------------------------------

    def plan(
        self,
        status: int | Literal["hang"],
        *,
        code: int = 101,
        message: str | None = None,
        seconds: float = 5.0,
        before: Callable[[], None] | None = None,
        raw: str | None = None,
    ) -> None:
        """Answer the next request this way (plans are used in the order they were made)."""
        with self._lock:
            self._plans.append(Planned(status, code, message, seconds, before, raw))

    @property
    def requests(self) -> list[SeenRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._seen)

    @property
    def created(self) -> list[str]:
        """The messageIds of the messages this fake accepted, in order."""
        with self._lock:
            return list(self._created)

    # -- what the handler calls -----------------------------------------------------------

    def _answer(self, seen: SeenRequest) -> _Answer:
        with self._lock:
            self._seen.append(seen)
        if seen.method != "POST" or seen.path != MESSAGING_PATH:
            return _Answer(404, "Not Found", "text/plain")
        if (seen.username, seen.api_key) != (self.username, self.api_key):
            return _Answer(401, UNAUTHORISED, "text/plain")
        if not seen.to or not seen.message:
            return _Answer(400, "Missing required parameter: to, message", "text/plain")
        return self._planned_answer(seen)

    def _planned_answer(self, seen: SeenRequest) -> _Answer:
        with self._lock:
            planned = self._plans.popleft() if self._plans else Planned(201)
        if planned.before:
            planned.before()
        if planned.status == "hang":
            answer = self._verdict(seen, Planned(201))  # AT sent it; only the answer is late
            self._stopping.wait(planned.seconds)
            return answer
        if planned.raw is not None:
            return _Answer(int(planned.status), planned.raw)
        if planned.status != HTTPStatus.CREATED:
            return _Answer(planned.status, HTTPStatus(planned.status).phrase, "text/plain")
        return self._verdict(seen, planned)

    def _verdict(self, seen: SeenRequest, planned: Planned) -> _Answer:
        """AT's 201: a summary, then one verdict per recipient."""
        if planned.message:
            return _Answer(201, _messaging_data(planned.message, []))
        recipients = [
            self._recipient(number, planned.code) for number in (seen.to or "").split(",")
        ]
        sent = sum(r["statusCode"] in SENT for r in recipients)
        summary = f"Sent to {sent}/{len(recipients)} Total Cost: KES {0.8 * sent:.4f}"
        return _Answer(201, _messaging_data(summary, recipients))

    def _recipient(self, number: str, code: int) -> dict[str, Any]:
        message_id = "None"
        if code in SENT:
            message_id = "ATXid_" + secrets.token_hex(16)
            with self._lock:
                self._created.append(message_id)
        return {
            "statusCode": code,
            "number": number,
            "status": RECIPIENT_STATUSES.get(code, "Failed"),
            "cost": "KES 0.8000" if code in SENT else "0",
            "messageId": message_id,
        }


def _messaging_data(message: str, recipients: list[dict[str, Any]]) -> str:
    return json.dumps({"SMSMessageData": {"Message": message, "Recipients": recipients}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, fake: FakeAfricasTalking) -> None:
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
        seen = SeenRequest(
            self.command,
            self.path,
            self.headers.get("apiKey"),
            self.headers.get("Accept"),
            dict(parse_qsl(raw)),
        )
        try:
            answer = self.server.fake._answer(seen)
        except Exception as error:  # a test's `before` hook failed: tell the test, answer 500
            self.server.fake.errors.append(error)
            answer = _Answer(500, "Internal Server Error", "text/plain")
        self._send(answer)

    def _send(self, answer: _Answer) -> None:
        payload = answer.body.encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", f"{answer.content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the tests inspect `requests` instead."""


def settings_with_africastalking(
    settings: Settings, fake: FakeAfricasTalking, **changes: object
) -> Settings:
    """These settings, sending through the fake from our short code unless told otherwise."""
    africastalking: dict[str, object] = {
        "africastalking_username": fake.username,
        "africastalking_api_key": fake.api_key,
        "africastalking_from": SHORT_CODE,
        "africastalking_api_base_url": fake.url,
    }
    return settings.with_(**(africastalking | changes))


@pytest.fixture(name="fake_africastalking")
def fake_africastalking_fixture() -> Iterator[FakeAfricasTalking]:
    """A running fake AT for one test; anything that went wrong inside it fails the test."""
    with FakeAfricasTalking() as fake:
        yield fake
    if fake.errors:
        raise fake.errors[0]


# -- what Africa's Talking posts to us --------------------------------------------------------


def message_id() -> str:
    return "ATXid_" + secrets.token_hex(16)


def sms_form(sender: str, text: str, id_: str | None = None, **extra: str) -> dict[str, str]:
    """An inbound SMS callback, as AT posts it for a shared short code (no linkId)."""
    form = {
        "from": sender,
        "to": SHORT_CODE,
        "text": text,
        "date": "2026-03-01 12:00:00",
        "id": id_ or message_id(),
    }
    form.update(extra)
    return form


def report_form(id_: str, status: str, reason: str | None = None) -> dict[str, str]:
    """A delivery report, as AT posts it to the URL set in its dashboard."""
    form = {"id": id_, "status": status, "phoneNumber": "+254711234567", "networkCode": "63902"}
    if reason:
        form["failureReason"] = reason
    form["retryCount"] = "0"
    return form


def ussd_form(text: str, session_id: str = "ATUid_" + "a" * 32, **extra: str) -> dict[str, str]:
    """A USSD hop: `text` is every input so far, joined by `*`."""
    form = {
        "sessionId": session_id,
        "phoneNumber": "+254711234567",
        "networkCode": "63902",
        "serviceCode": "*384*1234#",
        "text": text,
    }
    form.update(extra)
    return form
