"""`GET /healthz`: can this process reach the database and Redis (both, with USSD_REDIS_URL)?"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> ResponseReturnValue:
    state = current_app.extensions["consulta"]
    checks = {"database": _check(lambda: _select_one(state)), "redis": _check(state.redis.ping)}
    if state.ussd_sessions is not None:  # USSD_REDIS_URL: a second server this process needs
        checks["ussd_redis"] = _check(state.ussd_sessions.ping)
    healthy = all(value == "ok" for value in checks.values())
    return jsonify(status="ok" if healthy else "degraded", **checks), 200 if healthy else 503


def _select_one(state) -> None:  # type: ignore[no-untyped-def]
    with state.sessions() as session:
        session.execute(text("SELECT 1"))


def _check(probe) -> str:  # type: ignore[no-untyped-def]
    try:
        probe()
    except Exception as error:  # noqa: BLE001 - any failure is reported, not raised
        return f"error: {type(error).__name__}"
    return "ok"
