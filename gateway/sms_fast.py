"""Twilio's inbound webhook answered without Flask, when nothing about the request is unusual.

At a national peak nine requests in ten are this one webhook, and Flask's own work around it
(the request context, URL matching, the Response object, the hooks) cost as much as the webhook's:
0.11 of 0.25 ms of CPU in-process (`python -m bench.webhook_cpu`). This WSGI layer sits in front
of the Flask app and answers a well-formed, correctly signed POST to /sms/twilio itself, with the
same checks, the same `accept` and the same answer, headers included.

Anything else goes to Flask untouched: other paths, a body without a Content-Length or over the
limit, a chunked body, another content type, a form that is not UTF-8, a bad signature, a missing
field. Flask then answers it exactly as it would have (a 400, 403, 411 or 413), so there is one
place that words each refusal. Until `accept` runs nothing has been written, so a request handed
over has changed nothing. `tests/integration/test_sms_fast.py` sends a table of requests both ways
and checks that the answers and what was stored are the same.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from gateway import errors, security_headers
from gateway.app import WebState
from gateway.inbound import accept
from gateway.models import utcnow
from gateway.providers import twilio
from gateway.providers.base import BadRequestError
from gateway.sms import FORM_TYPE, form_pairs, signed_url

PATH = "/sms/twilio"
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FastTwilioInbound:
    """WSGI: POST /sms/twilio here when it is plainly valid; every other request to `flask`."""

    def __init__(self, flask: WsgiApp, state: WebState, config: Mapping[str, Any]) -> None:
        self.flask = flask
        self.state = state
        self.config = config  # the Flask app's: MAX_CONTENT_LENGTH as Flask enforces it
        answer = twilio.ACKNOWLEDGEMENT.encode()
        self.acknowledged = (
            [
                ("Content-Type", f"{twilio.ACKNOWLEDGEMENT_TYPE}; charset=utf-8"),
                ("Content-Length", str(len(answer))),
                *security_headers.for_webhooks(state.settings),
            ],
            [answer],
        )

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = self._plain_length(environ)
        if length is None:
            return self.flask(environ, start_response)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # Flask can still read it, if handed over
        environ["wsgi.input_terminated"] = True
        form = self._signed_form(environ, body)
        if form is None:
            return self.flask(environ, start_response)
        try:
            message = twilio.parse_inbound(form, utcnow(), self.state.settings.default_region)
        except BadRequestError:
            return self.flask(environ, start_response)
        try:
            accept(self.state, message)
        except HTTPException as error:  # a 503: neither store took it; the provider retries
            return self._refused(error, start_response)
        headers, answer = self.acknowledged
        start_response("200 OK", list(headers))
        return answer

    def _plain_length(self, environ: dict[str, Any]) -> int | None:
        """The body's declared length, if this is a webhook this layer answers; else None."""
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return None
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        declared = environ.get("CONTENT_LENGTH", "")
        if mimetype != FORM_TYPE or not (declared.isascii() and declared.isdigit()):
            return None  # str.isdigit alone takes "²", which int() refuses
        length = int(declared)
        limit = self.config.get("MAX_CONTENT_LENGTH")
        return length if limit is None or length <= limit else None

    def _signed_form(self, environ: dict[str, Any], body: bytes) -> MultiDict[str, str] | None:
        """The form, if it is UTF-8 form data signed with our token for the URL Twilio used."""
        try:
            form = MultiDict(form_pairs(body))
        except (UnicodeDecodeError, ValueError):
            return None
        settings = self.state.settings
        token = settings.twilio_auth_token  # create_app refuses to start without one
        url = signed_url(environ, settings.public_url)
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE")
        if not token or not twilio.verify(token, url, form, signature):
            return None
        return form

    def _refused(self, error: HTTPException, start_response: Callable[..., Any]) -> list[bytes]:
        text, code, headers = errors.plain_text(error)
        answer = text.encode()
        start_response(
            f"{code} {error.name.upper()}",
            [
                *headers.items(),
                ("Content-Length", str(len(answer))),
                *security_headers.for_webhooks(self.state.settings),
            ],
        )
        return [answer]
