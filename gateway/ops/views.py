"""The operator console at /ops: sign-in, the live view, the count, jobs, the lifecycle."""

from __future__ import annotations

from typing import cast

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from gateway import lifecycle
from gateway.app import WebState
from gateway.ops import consultations, count, dashboard, jobs, live
from gateway.ops.audit import record_action
from gateway.ops.auth import (
    LoginLimit,
    authenticate,
    configure_session_cookie,
    csrf_ok,
    csrf_token,
    requires,
    sign_in,
    sign_out,
    signed_in_operator,
)
from gateway.ops.config import ops_config

blueprint = Blueprint(
    "ops", __name__, url_prefix="/ops", template_folder="templates", static_folder="static"
)
OPEN_ENDPOINTS = frozenset({"ops.login"})  # everything else under /ops needs a signed-in operator
DASHBOARD_MOUNTED = "consulta_rq_dashboard"
# The pages load only their own files: no inline script, nothing from elsewhere.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@blueprint.record_once
def _set_up(setup: BlueprintSetupState) -> None:
    """When app.py registers the console: the session cookie, and rq-dashboard beside it."""
    app = cast(Flask, setup.app)  # typed as Flask's sans-IO base; it is always a Flask app
    config = ops_config(app)
    if config.secret_key:
        configure_session_cookie(app, config)
    app.extensions[DASHBOARD_MOUNTED] = dashboard.mount(app, signed_in_gate)


def _state() -> WebState:
    state: WebState = current_app.extensions["consulta"]
    return state


def _wants_json() -> bool:
    return request.path.endswith(".json") or request.accept_mimetypes.best == "application/json"


# --- every request -----------------------------------------------------------------------------


def signed_in_gate() -> ResponseReturnValue | None:
    """The console is on, a POST carries its CSRF token, and someone is signed in."""
    if not ops_config(current_app).secret_key:
        abort(503, "The console is off: set OPS_SECRET_KEY, the same on every web worker.")
    if request.method == "POST" and not csrf_ok():
        abort(400, "This form has expired or did not come from the console. Reload and try again.")
    g.operator = signed_in_operator(_state().sessions)
    if g.operator is not None or request.endpoint in OPEN_ENDPOINTS:
        return None
    if _wants_json() or request.method != "GET":
        abort(401, "You are signed out. Sign in again.")
    return redirect(url_for("ops.login", next=request.full_path.rstrip("?")))


@blueprint.before_request
def _gate() -> ResponseReturnValue | None:
    if request.endpoint == "ops.static":
        return None  # the style sheet and scripts are the same for everyone, login page included
    return signed_in_gate()


@blueprint.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "ops.static":
        response.headers["Cache-Control"] = "no-store"  # figures and names stay off disk caches
    return response


@blueprint.errorhandler(HTTPException)
def _error(error: HTTPException) -> ResponseReturnValue:
    code = error.code or 500
    if _wants_json():
        return jsonify(error=error.description, status=code), code
    operator = g.get("operator")
    return render_template("ops/error.html", error=error, code=code, operator=operator), code


@blueprint.context_processor
def _page_context() -> dict[str, object]:
    return {"csrf_token": csrf_token, "rq_dashboard": current_app.extensions.get(DASHBOARD_MOUNTED)}


# --- signing in and out ------------------------------------------------------------------------


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        if g.operator is not None:
            return redirect(url_for("ops.live_view"))
        return render_template("ops/login.html")
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    limit = LoginLimit(_state().redis, ops_config(current_app))
    address = request.remote_addr or "unknown"
    if wait := limit.wait_seconds(address, username):
        minutes = (wait + 59) // 60
        message = f"Too many failed attempts. Try again in {minutes} min."
        return render_template("ops/login.html", error=message, username=username), 429
    row = authenticate(_state().sessions, username, password)
    if row is None:
        limit.failed(address, username)
        message = "Wrong username or password."
        return render_template("ops/login.html", error=message, username=username), 401
    limit.succeeded(address, username)
    sign_in(row)
    record_action(_state().sessions, row.username, "login", f"from {address}")
    return redirect(_next_page())


def _next_page() -> str:
    """Only back into the console: a `next` pointing elsewhere is how phishing links work."""
    target = request.args.get("next", "")
    if target.startswith("/ops/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ops.live_view")


@blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    sign_out()
    return redirect(url_for("ops.login"))


# --- the live view -----------------------------------------------------------------------------


@blueprint.get("/")
def live_view() -> str:
    return render_template("ops/live.html", operator=g.operator)


@blueprint.get("/live.json")
def live_figures() -> ResponseReturnValue:
    return jsonify(live.snapshot(_state(), ops_config(current_app).latency_minutes))


@blueprint.post("/jobs/<queue>/<job_id>/<action>")
@requires("operator")
def job_action(queue: str, job_id: str, action: str) -> ResponseReturnValue:
    """Retry or discard one failed job; recorded with who and when."""
    if queue not in jobs.JOB_QUEUES or action not in {"retry", "discard"}:
        abort(404)
    state = _state()
    done = (jobs.retry if action == "retry" else jobs.discard)(state.redis, queue, job_id)
    if not done:
        abort(409, "That job is no longer among the failed: someone may have acted on it already.")
    record_action(state.sessions, g.operator.username, f"job.{action}", f"{queue} {job_id}")
    live.forget_snapshot(state.redis)
    verb = "queued again" if action == "retry" else "discarded"
    message = f"Job {job_id[:8]}… {verb}."
    if _wants_json():
        return jsonify(ok=True, message=message)
    flash(message)
    return redirect(url_for("ops.live_view"))


# --- the count ---------------------------------------------------------------------------------


@blueprint.get("/count")
def count_view() -> str:
    choices = count.consultations(_state())
    wanted = request.args.get("consultation") or (choices[0]["slug"] if choices else "")
    return render_template(
        "ops/count.html", operator=g.operator, consultations=choices, selected=wanted
    )


@blueprint.get("/count.json")
def count_figures() -> ResponseReturnValue:
    slug = request.args.get("consultation", "")
    query = request.args.get("q", "")[:64]
    try:
        found = count.figures(_state(), slug, query, request.args.get("sort", "code"))
    except LookupError:
        abort(404, "There is no such consultation.")
    return jsonify(found)


# --- the consultations and their lifecycle -----------------------------------------------------


@blueprint.get("/consultations")
def consultations_view() -> str:
    return render_template(
        "ops/consultations.html",
        operator=g.operator,
        consultations=consultations.listing(_state()),
        may_move=g.operator.may("admin"),
    )


@blueprint.post("/consultations/<slug>/<to_status>")
@requires("admin")
def consultation_move(slug: str, to_status: str) -> ResponseReturnValue:
    """Open, close or certify one consultation; the lifecycle records who did it."""
    if to_status not in consultations.BUTTONS:
        abort(404)
    try:
        lifecycle.transition(_state().sessions, slug, to_status, g.operator.username)
    except LookupError:
        abort(404, "There is no such consultation.")
    except lifecycle.TransitionRefused as refused:
        flash(f"Refused: {refused}.", "error")
    else:
        flash(f"{slug} is now {to_status}.")
    return redirect(url_for("ops.consultations_view"))
