"""rq-dashboard, mounted at /ops/rq behind the console's login, and read-only.

rq-dashboard's own buttons (requeue, delete, empty, compact) post without a CSRF token, and one
of them (requeue all) is a GET. So only the endpoints that look are let through; retry and
discard are the console's, where they need the operator role and a CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, abort, request
from flask.typing import ResponseReturnValue
from rq.serializers import JSONSerializer

from gateway.app import WebState

PREFIX = "/ops/rq"
READ_ONLY = frozenset(
    f"rq_dashboard.{name}"
    for name in (
        "static",
        "favicon",
        "queues_overview",
        "workers_overview",
        "jobs_overview",
        "job_view",
        "list_queues",
        "list_jobs",
        "job_info",
        "list_workers",
    )
)

Gate = Callable[[], ResponseReturnValue | None]


def mount(app: Flask, sign_in_gate: Gate) -> bool:
    """Mount it if it is installed; False (and the console says so) if it is not."""
    try:
        import rq_dashboard
        from rq_dashboard import web
    except ImportError:
        return False
    state: WebState = app.extensions["consulta"]
    app.config.update(
        RQ_DASHBOARD_REDIS_URL=state.settings.redis_url,
        RQ_DASHBOARD_DISABLE_DELETE=True,
        RQ_DASHBOARD_POLL_INTERVAL=2500,
    )
    # A module-level setting in rq-dashboard; every queue of ours uses JSON, so it is the same
    # for every app in the process.
    web.config.serializer = JSONSerializer
    web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=PREFIX)
    # Registered on this app only, under rq-dashboard's name, so it runs before its views.
    app.before_request_funcs.setdefault("rq_dashboard", []).append(_gate(sign_in_gate))
    app.after_request_funcs.setdefault("rq_dashboard", []).append(_no_framing)
    return True


def _gate(sign_in_gate: Gate) -> Gate:
    def read_only_for_operators() -> ResponseReturnValue | None:
        answer = sign_in_gate()
        if answer is not None:
            return answer  # not signed in: to the login page
        if request.endpoint not in READ_ONLY or request.method not in {"GET", "HEAD"}:
            abort(403, "rq-dashboard is read-only here: retry or discard jobs in the console.")
        return None

    return read_only_for_operators


def _no_framing(response):  # type: ignore[no-untyped-def]
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response
