"""USSD callbacks. They are not signed, so each route ends in a per-channel secret."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, abort, current_app, request
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from gateway import flood
from gateway.providers import africastalking, hubtel
from gateway.providers.base import BadRequestError, Screen
from gateway.providers.network import allowed_source
from gateway.ussd.service import answer

blueprint = Blueprint("ussd", __name__)
log = logging.getLogger(__name__)
MAX_USSD_BODY = 4 * 1024  # a USSD callback is a few hundred bytes
# Plain ASCII, like every USSD screen; ending the session stops a script from walking on.
TOO_MANY_HOPS = Screen("Demasiados intentos. Intenta de nuevo mas tarde.", end=True)


@blueprint.post("/ussd/africastalking/<secret>")
def africastalking_ussd(secret: str) -> Response:
    state = current_app.extensions["consulta"]
    _require_secret(secret, state.settings.africastalking_secret)
    try:
        hop = africastalking.parse_ussd(request.form, state.settings.default_region)
    except BadRequestError as error:
        abort(400, str(error))
    return _reply(*africastalking.render_ussd(_answer(state, hop)))


@blueprint.post("/ussd/hubtel/<secret>")
def hubtel_ussd(secret: str) -> Response:
    state = current_app.extensions["consulta"]
    _require_secret(secret, state.settings.hubtel_secret)
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        abort(400, "the body must be a JSON object")
    try:
        hop = hubtel.parse_ussd(payload)
    except BadRequestError as error:
        abort(400, str(error))
    return _reply(*hubtel.render_ussd(_answer(state, hop)))


def _require_secret(given: str, expected: str | None) -> None:
    """403 unless the path carries the channel's secret and the caller's network is allowed."""
    if request.content_length and request.content_length > MAX_USSD_BODY:
        abort(413, "a USSD callback is never this large")
    settings = current_app.extensions["consulta"].settings
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(403, "unknown channel")
    if not allowed_source(request.remote_addr, settings.ussd_allowed_networks):
        abort(403, "this network may not call the USSD channel")


def _answer(state, hop) -> Screen:  # type: ignore[no-untyped-def]
    """The screen for this hop; an outage ends the session politely rather than with a 500."""
    # Checked before the session or the registry is read. The end of a session is exempt: it only
    # forgets the session, and the aggregator, not the caller, sends it. Counted where the
    # sessions live: with USSD_REDIS_URL, a hop through the menu never waits for the inbox's fsync.
    redis = state.ussd_redis
    if not hop.ends and not flood.admit(redis, state.settings, flood.Channel.USSD, hop.phone):
        return TOO_MANY_HOPS
    try:
        return answer(state, hop)
    except (RedisError, SQLAlchemyError):
        log.exception("USSD hop failed: storage unavailable")
        return Screen("Servicio no disponible. Intenta de nuevo en unos minutos.", end=True)


def _reply(body: str, content_type: str) -> Response:
    return Response(body, content_type=content_type)
