"""The Twilio webhook's fast path answers every request exactly as the Flask route does.

Each request of the table goes once through the app as deployed (`gateway.sms_fast` in front of
Flask) and once through Flask alone, with a fresh MessageSid each time. Status, headers, body and
what was stored must be the same both ways: the fast path may skip Flask's work, never change an
answer. Then: the plain webhook really is answered without Flask, and the rest really is not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.test import Client, EnvironBuilder, run_wsgi_app

from gateway.db import make_engine, make_sessionmaker
from gateway.inbox import INBOX
from gateway.models import InboundRow
from gateway.queues import INTAKE_LIST
from gateway.settings import Settings
from gateway.sms_fast import FastTwilioInbound
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.support.twilio_requests import inbound_form, signature
from workers.runtime import Runtime

URL = PUBLIC_URL + "/sms/twilio"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Case:
    label: str
    status: int
    query: str = ""
    signed_query: str | None = None  # None: the query sent
    token: str | None = AUTH_TOKEN
    content_type: str = FORM
    body: Callable[[dict[str, str]], bytes] = lambda form: urlencode(form).encode()
    drop: str | None = None
    text: str = "VOTO 3"
    method: str = "POST"
    chunked: bool = False

    def request(self) -> dict[str, Any]:
        """A fresh request: a new MessageSid, so that the second sending is not a redelivery."""
        form = inbound_form("+584141234567", self.text)
        if self.drop:
            del form[self.drop]
        signed = self.query if self.signed_query is None else self.signed_query
        headers = {"Content-Type": self.content_type}
        if self.token:
            headers["X-Twilio-Signature"] = signature(
                self.token, URL + (f"?{signed}" if signed else ""), form
            )
        if self.chunked:
            headers["Transfer-Encoding"] = "chunked"
        return {
            "method": self.method,
            "path": "/sms/twilio" + (f"?{self.query}" if self.query else ""),
            "data": self.body(form),
            "headers": headers,
        }


def not_utf8(form: dict[str, str]) -> bytes:
    return urlencode({k: v for k, v in form.items() if k != "Body"}).encode() + b"&Body=%E9t%E9"


CASES = [
    Case("a correctly signed vote is acknowledged", 200),
    Case("an accented body is acknowledged", 200, text="Votación 3 ¡sí!"),
    Case("an empty body is acknowledged", 200, text=""),
    Case("a signed query string is acknowledged", 200, query="source=main"),
    Case(
        "a content type with a charset is acknowledged", 200, content_type=FORM + "; charset=utf-8"
    ),
    Case("a content type in capitals is acknowledged", 200, content_type=FORM.upper()),
    Case("an unsigned request is refused", 403, token=None),
    Case("a request signed with another token is refused", 403, token="not-the-token"),
    Case("a signature over another query is refused", 403, query="a=1", signed_query="a=2"),
    Case("a body that is not form data is refused", 403, content_type="text/plain"),
    Case("a missing MessageSid is a clear 400", 400, drop="MessageSid"),
    Case("a missing Body is a clear 400", 400, drop="Body"),
    Case("a body over Twilio's 1,600 characters is a clear 400", 400, text="3" * 1601),
    Case("a body that is not UTF-8 is a clear 400", 400, body=not_utf8),
    Case("a chunked body is refused unread", 411, chunked=True),
    Case("a body over the limit is refused unread", 413, text="x" * 70_000),
    Case("a GET is not allowed", 405, method="GET"),
]


@pytest.fixture(params=["database", "redis"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return replace(settings, ack_after=request.param)


def stored(rt: Runtime) -> tuple[int, int, int]:
    """(inbound rows, IDs in the intake list, messages in the Redis inbox)."""
    with rt.sessions() as session:
        rows = session.scalar(select(func.count()).select_from(InboundRow)) or 0
    return rows, rt.redis.llen(INTAKE_LIST), rt.redis.llen(INBOX)


def answer(
    wsgi: Any, rt: Runtime, case: Case
) -> tuple[int, dict[str, str], bytes, tuple[int, ...]]:
    """Status, headers (but the date), body, and what the request added to each store."""
    before = stored(rt)
    response = Client(wsgi).open(**case.request())
    added = tuple(after - was for after, was in zip(stored(rt), before, strict=True))
    headers = {name: value for name, value in response.headers.items() if name != "Date"}
    return response.status_code, headers, response.get_data(), added


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_the_fast_path_answers_as_flask_does(app: Flask, rt: Runtime, case: Case) -> None:
    fast = app.wsgi_app
    assert isinstance(fast, FastTwilioInbound)
    through_fast = answer(fast, rt, case)
    through_flask = answer(fast.flask, rt, case)
    assert through_fast[0] == case.status
    assert through_fast[3] == kept(case.status, rt.settings.ack_after)
    assert through_fast == through_flask


def kept(status: int, ack_after: str) -> tuple[int, int, int]:
    """What an acknowledged message adds: a row and its ID queued, or an entry in the inbox."""
    if status != 200:
        return (0, 0, 0)
    return (1, 1, 0) if ack_after == "database" else (0, 0, 1)


def test_when_neither_store_takes_the_message_both_answer_the_same_503(
    app: Flask, rt: Runtime
) -> None:
    state = app.extensions["consulta"]
    state.settings = replace(state.settings, ack_after="database")
    state.sessions = make_sessionmaker(make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    fast = app.wsgi_app
    assert isinstance(fast, FastTwilioInbound)
    case = Case("the database is down", 503)
    assert answer(fast, rt, case) == answer(fast.flask, rt, case)
    assert answer(fast, rt, case)[0] == 503


@pytest.fixture
def flask_unreachable(app: Flask) -> Iterator[FastTwilioInbound]:
    """The fast path with Flask behind it replaced by an app that answers 599 to anything."""
    fast = app.wsgi_app
    assert isinstance(fast, FastTwilioInbound)
    original = fast.flask

    def teapot(_environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("599 HANDED OVER", [("Content-Type", "text/plain")])
        return [b"flask"]

    fast.flask = teapot
    yield fast
    fast.flask = original


@pytest.mark.parametrize(
    ("case", "status"),
    [
        (Case("a plain signed webhook is answered without Flask", 200), 200),
        (Case("an unsigned one is handed to Flask", 403, token=None), 599),
        (Case("a chunked one is handed to Flask", 411, chunked=True), 599),
        (Case("a GET is handed to Flask", 405, method="GET"), 599),
    ],
    ids=lambda value: value.label if isinstance(value, Case) else str(value),
)
def test_which_requests_the_fast_path_answers_itself(
    flask_unreachable: FastTwilioInbound, rt: Runtime, case: Case, status: int
) -> None:
    assert answer(flask_unreachable, rt, case)[0] == status


def test_without_a_public_url_the_url_the_request_came_to_is_the_one_signed(
    flask_unreachable: FastTwilioInbound, rt: Runtime
) -> None:
    """As `request.url` in the Flask route: werkzeug's test client calls http://localhost/."""
    state = flask_unreachable.state
    state.settings = replace(state.settings, public_url=None)
    form = inbound_form("+584141234567", "VOTO 3")
    headers = {
        "Content-Type": FORM,
        "X-Twilio-Signature": signature(AUTH_TOKEN, "http://localhost/sms/twilio?a=1", form),
    }
    response = Client(flask_unreachable).post(
        "/sms/twilio?a=1", data=urlencode(form).encode(), headers=headers
    )
    assert response.status_code == 200


def test_a_length_written_in_other_digits_is_handed_to_flask(
    flask_unreachable: FastTwilioInbound,
) -> None:
    """ "²" is a digit to str.isdigit and not to int(): the test client would mend the header."""
    environ = EnvironBuilder(**Case("", 200).request()).get_environ()
    environ["CONTENT_LENGTH"] = "²"
    _body, status, _headers = run_wsgi_app(flask_unreachable, environ)
    assert status.startswith("599")
