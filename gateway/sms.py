"""SMS webhooks: record the message, hand it to the queue, answer at once. No vote logic here."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote_plus

from flask import Blueprint, Response, abort, current_app, request
from werkzeug.datastructures import MultiDict
from werkzeug.wsgi import get_current_url

from gateway.inbound import accept, move_reply_status
from gateway.models import utcnow
from gateway.providers import twilio
from gateway.providers.base import BadRequestError

blueprint = Blueprint("sms", __name__)
log = logging.getLogger(__name__)
FORM_TYPE = "application/x-www-form-urlencoded"


@blueprint.post("/sms/twilio")
def twilio_inbound() -> Response:
    state = current_app.extensions["consulta"]
    form = _signed_utf8_form(state.settings)
    try:
        message = twilio.parse_inbound(form, utcnow(), state.settings.default_region)
    except BadRequestError as error:
        abort(400, str(error))
    # A flood is refused there too, and still gets its 200 so that Twilio does not retry it.
    accept(state, message)
    return Response(twilio.ACKNOWLEDGEMENT, mimetype=twilio.ACKNOWLEDGEMENT_TYPE)


@blueprint.post("/sms/twilio/status")
def twilio_status() -> Response:
    state = current_app.extensions["consulta"]
    form = _signed_utf8_form(state.settings)
    try:
        sid, status, error_code = twilio.parse_status(form)
    except BadRequestError as error:
        abort(400, str(error))
    move_reply_status(state, sid, status, error_code)
    return Response(status=204)


def _signed_utf8_form(settings) -> MultiDict[str, str]:  # type: ignore[no-untyped-def]
    """The form, parsed once and strictly: 400 unless UTF-8 form data, 403 unless signed."""
    raw = request.get_data(cache=True)  # also enforces MAX_CONTENT_LENGTH (413)
    try:
        pairs = form_pairs(raw)
    except (UnicodeDecodeError, ValueError):
        abort(400, "the body is not form data in UTF-8")
    # As Werkzeug would: a body of another type carries no form fields (and so no valid signature).
    form = MultiDict(pairs if request.mimetype == FORM_TYPE else [])
    url = signed_url(request.environ, settings.public_url)
    signature = request.headers.get("X-Twilio-Signature")
    if not twilio.verify(settings.twilio_auth_token, url, form, signature):
        abort(403, "missing or invalid X-Twilio-Signature")
    return form


def form_pairs(raw: bytes) -> list[tuple[str, str]]:
    """`parse_qsl(raw, keep_blank_values=True, errors="strict")`, in a third of the time.

    A field is only unquoted when it holds an escape: most of a webhook's fields hold none, and
    `unquote_plus` is the cost. Not ASCII, or an escape that is not UTF-8: UnicodeDecodeError.
    """
    pairs = []
    for field in raw.decode("ascii").split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((_unquoted(name), _unquoted(value)))
    return pairs


def _unquoted(text: str) -> str:
    return unquote_plus(text, errors="strict") if "%" in text or "+" in text else text


def signed_url(environ: dict[str, Any], public_url: str | None) -> str:
    """The URL Twilio signed. Behind a proxy that is the public one, not the one we see.

    From the WSGI environ, so that the Flask routes and `gateway.sms_fast` work it out alike.
    """
    if not public_url:
        return get_current_url(environ)
    path, query = str(environ.get("PATH_INFO", "")), str(environ.get("QUERY_STRING", ""))
    return public_url.rstrip("/") + path + (f"?{query}" if query else "")
