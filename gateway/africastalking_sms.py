"""Africa's Talking SMS webhooks: record the message, hand it to the queue, answer at once.

AT does not sign its callbacks, so each route ends in a secret path segment and the caller must
come from an allowed network. AT retries an inbound SMS for about ten minutes until it gets a
2xx: a redelivery hits the (provider, external_id) unique key, changes nothing and still gets 200.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from flask import Blueprint, Response, abort, current_app, request

from gateway.inbound import accept, move_reply_status
from gateway.models import utcnow
from gateway.providers import africastalking
from gateway.providers.base import BadRequestError
from gateway.providers.network import allowed_source
from gateway.settings import Settings

blueprint = Blueprint("africastalking_sms", __name__)


@blueprint.post("/sms/africastalking/<secret>")
def inbound(secret: str) -> Response:
    state = current_app.extensions["consulta"]
    _require_trusted_utf8_form(state.settings, secret)
    try:
        message = africastalking.parse_inbound(
            request.form, utcnow(), state.settings.default_region
        )
    except BadRequestError as error:
        abort(400, str(error))
    # Before the database, and acknowledged either way: AT retries anything but a 2xx.
    accept(state, message)
    return Response(africastalking.ACKNOWLEDGEMENT, mimetype=africastalking.ACKNOWLEDGEMENT_TYPE)


@blueprint.post("/sms/africastalking/<secret>/status")
def delivery_report(secret: str) -> Response:
    state = current_app.extensions["consulta"]
    _require_trusted_utf8_form(state.settings, secret)
    try:
        message_id, status, reason = africastalking.parse_status(request.form)
    except BadRequestError as error:
        abort(400, str(error))
    move_reply_status(state, message_id, status, reason)
    return Response(africastalking.ACKNOWLEDGEMENT, mimetype=africastalking.ACKNOWLEDGEMENT_TYPE)


def _require_trusted_utf8_form(settings: Settings, secret: str) -> None:
    """403 unless the secret and the caller's network are ours; 400 unless UTF-8 form data."""
    expected = settings.africastalking_secret
    # Bytes, not str: compare_digest refuses non-ASCII text, and a path may carry any.
    if not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        abort(403, "unknown channel")
    if not allowed_source(request.remote_addr, settings.ussd_allowed_networks):
        abort(403, "this network may not call the Africa's Talking channel")
    raw = request.get_data(cache=True)  # also enforces MAX_CONTENT_LENGTH (413)
    try:
        parse_qsl(raw.decode("ascii"), encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        abort(400, "the body is not form data in UTF-8")
