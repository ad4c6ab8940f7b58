"""The operator console and /metrics, through Flask's test client, on real Redis and databases."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select
from werkzeug.security import check_password_hash

from gateway.app import create_app
from gateway.cli_ops import operators
from gateway.models import ConsultationRow, OperatorActionRow, OperatorRow
from gateway.ops import install
from gateway.ops.alerts import Signals, alerts
from gateway.ops.auth import hash_password
from gateway.ops.count import leaders
from gateway.ops.sqltime import quantile
from gateway.queues import INTAKE_QUEUE
from gateway.settings import Settings
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, SECRET
from tests.support.factories import seed
from tests.support.pipeline import drain
from tests.support.twilio_requests import inbound_form, signed_headers
from workers.runtime import Runtime

METRICS_TOKEN = "metrics-test-token"
PASSWORD = "correct horse battery"
ANA = "+584141234567"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def console_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before the app is built: the console reads its settings when it is registered."""
    monkeypatch.setenv("OPS_SECRET_KEY", "test-secret-key-for-the-console")
    monkeypatch.setenv("METRICS_TOKEN", METRICS_TOKEN)
    monkeypatch.delenv("METRICS_ALLOWED_NETWORKS", raising=False)
    monkeypatch.delenv("OPS_COOKIE_SECURE", raising=False)


@pytest.fixture
def app(app: Flask) -> Flask:
    return install(app)  # a no-op once app.py registers the console itself


@pytest.fixture
def build_app(settings: Settings, rt: Runtime) -> Iterator[Callable[[], Flask]]:
    """Another app, built under the environment the test has just changed; closed afterwards."""
    built: list[Flask] = []

    def build() -> Flask:
        built.append(install(create_app(settings)))
        return built[-1]

    yield build
    for each in built:
        each.extensions["consulta"].engine.dispose()
        each.extensions["consulta"].redis.close()


@pytest.fixture
def people(rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        session.add_all(
            OperatorRow(username=name, password_hash=hash_password(PASSWORD), role=name)
            for name in ("viewer", "operator", "admin")
        )


def csrf_from(client: FlaskClient, path: str = "/ops/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page) or re.search(
        r'data-csrf="([^"]+)"', page
    )
    assert found, page
    return found.group(1)


def sign_in(client: FlaskClient, username: str, password: str = PASSWORD) -> int:
    token = csrf_from(client)
    form = {"username": username, "password": password, "csrf_token": token}
    return client.post("/ops/login", data=form).status_code


def post_sms(client: FlaskClient, sender: str, body: str) -> None:
    form = inbound_form(sender, body)
    headers = signed_headers(AUTH_TOKEN, PUBLIC_URL + "/sms/twilio", form)
    assert client.post("/sms/twilio", data=form, headers=headers).status_code == 200


def failed_job(rt: Runtime) -> str:
    """A job that fails every time: the intake job given a string, not a list of IDs."""
    queue = rt.queue(INTAKE_QUEUE)
    job = queue.enqueue("workers.intake.process_inbound", "not-a-list")
    SimpleWorker([queue], connection=rt.redis, serializer=JSONSerializer).work(burst=True)
    assert job.id in queue.failed_job_registry.get_job_ids()
    return str(job.id)


def actions(rt: Runtime) -> list[tuple[str, str]]:
    with rt.sessions() as session:
        rows = session.execute(
            select(OperatorActionRow.actor, OperatorActionRow.action).order_by(OperatorActionRow.id)
        )
        return [(actor, action) for actor, action in rows]


def sample_url(rule: str) -> str:
    return re.sub(r"<[^>]+>", "x", re.sub(r"<int:[^>]+>", "0", rule))


# --- signing in --------------------------------------------------------------------------------


def test_every_console_page_sends_a_stranger_to_the_login(app: Flask, client: FlaskClient) -> None:
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/ops")]
    open_to_all = {"ops.login", "ops.static", "rq_dashboard.static"}
    checked = 0
    for rule in rules:
        if rule.endpoint in open_to_all:
            continue
        url = sample_url(rule.rule)
        if "GET" in (rule.methods or ()):
            answer = client.get(url)
            if answer.status_code == 308:  # a URL alias of rq-dashboard's, made canonical first
                answer = client.get(answer.headers["Location"])
            assert answer.status_code in {302, 401}, url
            if answer.status_code == 302:
                assert answer.headers["Location"].startswith("/ops/login"), url
        else:
            assert client.post(url).status_code in {400, 401}, url
        checked += 1
    assert checked >= 8


def test_a_wrong_password_is_refused_and_the_right_one_signs_in(
    client: FlaskClient, rt: Runtime, people: None
) -> None:
    assert sign_in(client, "operator", "wrong password") == 401
    assert client.get("/ops/").status_code == 302
    assert sign_in(client, "nobody", PASSWORD) == 401
    assert sign_in(client, "operator") == 302
    page = client.get("/ops/")
    assert page.status_code == 200
    assert "operator" in page.get_data(as_text=True)
    assert actions(rt) == [("operator", "login")]


def test_the_session_cookie_is_secure_http_only_lax_and_kept_to_the_console(
    client: FlaskClient, people: None
) -> None:
    client.get("/ops/login")
    cookie = client.get_cookie("consulta_ops", path="/ops")
    assert cookie is not None
    assert cookie.secure
    assert cookie.http_only
    assert cookie.same_site == "Lax"
    assert cookie.path == "/ops"


def test_logins_are_limited_per_address_and_username(client: FlaskClient, people: None) -> None:
    for _ in range(5):
        assert sign_in(client, "operator", "guess") == 401
    assert sign_in(client, "operator") == 429  # even the right password waits
    assert sign_in(client, "viewer") == 302  # a colleague at the same address is not locked out


def test_a_next_page_outside_the_console_is_ignored(client: FlaskClient, people: None) -> None:
    token = csrf_from(client)
    form = {"username": "viewer", "password": PASSWORD, "csrf_token": token}
    answer = client.post("/ops/login?next=//evil.example/ops/", data=form)
    assert answer.headers["Location"] == "/ops/"


def test_a_new_password_ends_the_old_sessions(
    client: FlaskClient, rt: Runtime, people: None
) -> None:
    sign_in(client, "viewer")
    with rt.sessions() as session, session.begin():
        row = session.scalar(select(OperatorRow).where(OperatorRow.username == "viewer"))
        assert row is not None
        row.password_hash = hash_password("another long password")
    assert client.get("/ops/").status_code == 302
    assert client.get("/ops/live.json").status_code == 401


def test_the_console_is_off_without_a_secret_key(
    monkeypatch: pytest.MonkeyPatch, build_app: Callable[[], Flask]
) -> None:
    monkeypatch.delenv("OPS_SECRET_KEY")
    answer = build_app().test_client().get("/ops/login")
    assert answer.status_code == 503
    assert "OPS_SECRET_KEY" in answer.get_data(as_text=True)


# --- CSRF and roles ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "headers", "form"),
    [
        ("no token", {}, {}),
        ("a wrong form token", {}, {"csrf_token": "forged"}),
        ("a wrong header token", {"X-CSRF-Token": "forged"}, {}),
    ],
)
def test_a_post_without_the_sessions_csrf_token_is_refused(
    client: FlaskClient, rt: Runtime, people: None, label: str, headers: dict, form: dict
) -> None:
    job_id = failed_job(rt)
    sign_in(client, "operator")
    answer = client.post(f"/ops/jobs/intake/{job_id}/retry", headers=headers, data=form)
    assert answer.status_code == 400, label
    assert job_id in rt.queue(INTAKE_QUEUE).failed_job_registry.get_job_ids()


def test_a_login_form_without_its_csrf_token_is_refused(client: FlaskClient, people: None) -> None:
    answer = client.post("/ops/login", data={"username": "admin", "password": PASSWORD})
    assert answer.status_code == 400


@pytest.mark.parametrize("action", ["retry", "discard"])
def test_a_viewer_may_not_retry_or_discard(
    client: FlaskClient, rt: Runtime, people: None, action: str
) -> None:
    job_id = failed_job(rt)
    sign_in(client, "viewer")
    token = csrf_from(client, "/ops/")
    answer = client.post(f"/ops/jobs/intake/{job_id}/{action}", headers={"X-CSRF-Token": token})
    assert answer.status_code == 403
    assert "operator role" in answer.get_data(as_text=True)
    assert job_id in rt.queue(INTAKE_QUEUE).failed_job_registry.get_job_ids()


def test_an_operator_retries_one_job_and_discards_another_and_both_are_recorded(
    client: FlaskClient, rt: Runtime, people: None
) -> None:
    retried, discarded = failed_job(rt), failed_job(rt)
    sign_in(client, "operator")
    headers = {"X-CSRF-Token": csrf_from(client, "/ops/"), "Accept": "application/json"}
    answer = client.post(f"/ops/jobs/intake/{retried}/retry", headers=headers)
    assert answer.status_code == 200
    assert answer.get_json()["ok"] is True
    assert client.post(f"/ops/jobs/intake/{discarded}/discard", headers=headers).status_code == 200
    queue = rt.queue(INTAKE_QUEUE)
    assert queue.failed_job_registry.get_job_ids() == []
    assert queue.get_job_ids() == [retried]
    assert queue.fetch_job(discarded) is None
    again = client.post(f"/ops/jobs/intake/{discarded}/discard", headers=headers)
    assert again.status_code == 409
    assert actions(rt)[1:] == [("operator", "job.retry"), ("operator", "job.discard")]


# --- the consultations' lifecycle ---------------------------------------------------------------


def seed_as(rt: Runtime, status: str) -> None:
    """The seeded consultation, moved straight to `status` as if its earlier moves were made."""
    seed(rt.sessions)
    with rt.sessions() as session, session.begin():
        session.scalars(select(ConsultationRow)).one().status = status


def status_of(rt: Runtime, slug: str = "cpn-2026") -> str:
    with rt.sessions() as session:
        row = session.scalars(select(ConsultationRow).where(ConsultationRow.slug == slug)).one()
        return row.status


def test_an_admin_opens_a_draft_then_closes_it_and_both_moves_are_recorded(
    client: FlaskClient, rt: Runtime, people: None
) -> None:
    seed_as(rt, "draft")
    sign_in(client, "admin")
    page = client.get("/ops/consultations").get_data(as_text=True)
    assert "cpn-2026" in page
    assert "Open voting" in page
    assert "data-confirm=" in page
    token = {"csrf_token": csrf_from(client, "/ops/consultations")}
    answer = client.post("/ops/consultations/cpn-2026/open", data=token)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/ops/consultations"
    assert status_of(rt) == "open"
    page = client.get("/ops/consultations").get_data(as_text=True)
    assert "cpn-2026 is now open." in page
    assert ">Close</button>" in page
    assert client.post("/ops/consultations/cpn-2026/closed", data=token).status_code == 302
    assert status_of(rt) == "closed"
    assert actions(rt)[1:] == [("admin", "open"), ("admin", "close")]


@pytest.mark.parametrize(
    ("label", "role", "to_status", "csrf", "code"),
    [
        ("a viewer may not open", "viewer", "open", True, 403),
        ("an operator may not open", "operator", "open", True, 403),
        ("an admin without the CSRF token", "admin", "open", False, 400),
    ],
)
def test_a_lifecycle_move_is_refused_to_all_but_an_admin_with_the_token(
    client: FlaskClient,
    rt: Runtime,
    people: None,
    label: str,
    role: str,
    to_status: str,
    csrf: bool,
    code: int,
) -> None:
    seed_as(rt, "draft")
    sign_in(client, role)
    page = client.get("/ops/consultations").get_data(as_text=True)
    assert ("Open voting" in page) is (role == "admin"), label
    form = {"csrf_token": csrf_from(client, "/ops/")} if csrf else {}
    answer = client.post(f"/ops/consultations/cpn-2026/{to_status}", data=form)
    assert answer.status_code == code, label
    if code == 403:
        assert "admin role" in answer.get_data(as_text=True), label
    assert status_of(rt) == "draft", label
    assert actions(rt)[1:] == [], label


@pytest.mark.parametrize(
    ("label", "start", "to_status", "message"),
    [
        ("certify an open one", "open", "certified", "cpn-2026 is open, so it cannot be certified"),
        ("close a draft", "draft", "closed", "cpn-2026 is draft, so it cannot be closed"),
        ("reopen a closed one", "closed", "open", "cpn-2026 is closed, so it cannot be opened"),
    ],
)
def test_a_refused_move_shows_its_message_and_changes_nothing(
    client: FlaskClient,
    rt: Runtime,
    people: None,
    label: str,
    start: str,
    to_status: str,
    message: str,
) -> None:
    seed_as(rt, start)
    sign_in(client, "admin")
    form = {"csrf_token": csrf_from(client, "/ops/")}
    answer = client.post(f"/ops/consultations/cpn-2026/{to_status}", data=form)
    assert answer.status_code == 302, label
    page = client.get(answer.headers["Location"]).get_data(as_text=True)
    assert message in page, label
    assert status_of(rt) == start, label
    assert actions(rt)[1:] == [], label


def test_a_move_on_an_unknown_consultation_or_status_is_not_found(
    client: FlaskClient, rt: Runtime, people: None
) -> None:
    seed_as(rt, "draft")
    sign_in(client, "admin")
    form = {"csrf_token": csrf_from(client, "/ops/")}
    assert client.post("/ops/consultations/nope/open", data=form).status_code == 404
    assert client.post("/ops/consultations/cpn-2026/draft", data=form).status_code == 404
    assert status_of(rt) == "draft"


# --- what the pages show -----------------------------------------------------------------------


def test_the_figures_reflect_a_vote_sent_through_the_webhook(
    client: FlaskClient, rt: Runtime, people: None
) -> None:
    seed(rt.sessions, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])
    post_sms(client, ANA, "VOTO 3")
    drain(rt)
    sign_in(client, "viewer")
    figures = client.get("/ops/live.json").get_json()
    totals = {s["key"]: sum(s["values"]) for s in figures["throughput"]["series"]}
    assert totals == {"in:sms": 1, "out:sms": 1}
    assert figures["latency"]["count"] == 1
    assert figures["latency"]["p50"] is not None
    assert {o["outcome"]: o["messages"] for o in figures["outbound"]}["outbox"] == 1
    assert figures["backlog"] == 0
    assert [a["kind"] for a in figures["alerts"]] == ["workers"]  # no worker runs in this test
    count = client.get("/ops/count.json?consultation=cpn-2026").get_json()
    [circuit] = count["circuits"]
    assert (circuit["code"], circuit["votes"], circuit["eligible"]) == ("C1", 1, 1)
    assert [leader["option"] for leader in circuit["leaders"]] == [3]
    assert count["summary"]["turnout"] == 1.0


def test_the_count_filters_by_code_prefix_or_name(
    client: FlaskClient, rt: Runtime, people: None
) -> None:
    seed(rt.sessions, ballots={"CC-0101": 3, "CC-0102": 3, "CC-0201": 3})
    sign_in(client, "viewer")
    found = client.get("/ops/count.json?consultation=cpn-2026&q=cc-01").get_json()
    assert [c["code"] for c in found["circuits"]] == ["CC-0101", "CC-0102"]
    assert (found["matching"], found["total"]) == (2, 3)
    assert client.get("/ops/count.json?consultation=nope").status_code == 404


def test_the_pages_escape_what_they_show(client: FlaskClient, rt: Runtime) -> None:
    with rt.sessions() as session, session.begin():
        session.add(
            OperatorRow(username="<b>x</b>", password_hash=hash_password(PASSWORD), role="viewer")
        )
    sign_in(client, "<b>x</b>")
    page = client.get("/ops/").get_data(as_text=True)
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" not in page


def test_the_pages_load_nothing_from_elsewhere(client: FlaskClient, people: None) -> None:
    sign_in(client, "viewer")
    for path in ("/ops/", "/ops/count"):
        answer = client.get(path)
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
        assert not re.search(r"""(src|href)="(https?:)?//""", answer.get_data(as_text=True))
    with client.get("/ops/static/ops/vendor/uPlot.iife.min.js") as script:  # closes the file
        assert script.status_code == 200


def test_rq_dashboard_is_behind_the_login_and_read_only(
    app: Flask, client: FlaskClient, rt: Runtime, people: None
) -> None:
    if "rq_dashboard" not in app.blueprints:
        pytest.fail("rq-dashboard is not installed")
    job_id = failed_job(rt)
    assert client.get("/ops/rq/").status_code == 302
    sign_in(client, "admin")
    assert client.get("/ops/rq/").status_code == 200
    listed = client.get("/ops/rq/0/data/jobs/intake/failed/8/asc/1.json").get_json()
    assert [job["id"] for job in listed["jobs"]] == [job_id]
    token = {"X-CSRF-Token": csrf_from(client, "/ops/")}
    assert client.post(f"/ops/rq/job/{job_id}/requeue", headers=token).status_code == 403
    assert client.get("/ops/rq/requeue/intake").status_code == 403
    assert job_id in rt.queue(INTAKE_QUEUE).failed_job_registry.get_job_ids()


# --- /metrics ----------------------------------------------------------------------------------


def test_metrics_are_scraped_with_the_token_and_refused_without_it(
    client: FlaskClient, rt: Runtime
) -> None:
    seed(rt.sessions, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])
    post_sms(client, ANA, "VOTO 3")
    post_sms(client, ANA, "VOTO 9")
    drain(rt)
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    for line in (
        'consulta_inbound_received_total{channel="sms"} 2.0',
        'consulta_inbound_processed_total{channel="sms",outcome="confirmed"} 1.0',
        'consulta_votes_rejected_total{channel="sms",reason="no_such_option"} 1.0',
        'consulta_votes_counted{consultation="cpn-2026"} 1.0',
        'consulta_intake_latency_seconds_count{channel="sms"} 2.0',
        'consulta_intake_latency_seconds_bucket{channel="sms",le="+Inf"} 2.0',
        'consulta_outbound_messages{provider="twilio",status="outbox"} 2.0',
        'consulta_queue_jobs{queue="intake",state="failed"} 0.0',
        "consulta_workers_alive 0.0",
    ):
        assert line in text, line


@pytest.mark.parametrize(
    ("networks", "address", "status"),
    [
        ("10.0.0.0/8", "10.1.2.3", 200),
        ("10.0.0.0/8", "192.0.2.7", 401),  # the token would still be accepted
        ("10.0.0.0/8,127.0.0.1/32", "127.0.0.1", 200),
    ],
)
def test_metrics_from_an_allowed_network_need_no_token(
    monkeypatch: pytest.MonkeyPatch,
    build_app: Callable[[], Flask],
    networks: str,
    address: str,
    status: int,
) -> None:
    monkeypatch.setenv("METRICS_ALLOWED_NETWORKS", networks)
    client = build_app().test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": address}).status_code == status


def test_metrics_are_off_when_neither_token_nor_networks_are_set(
    monkeypatch: pytest.MonkeyPatch, build_app: Callable[[], Flask]
) -> None:
    monkeypatch.delenv("METRICS_TOKEN")
    assert build_app().test_client().get("/metrics").status_code == 403


# --- `consulta operators` ----------------------------------------------------------------------


def add_operator(cli: CliRunner, name: str, role: str, typed: str, stdin: bool = True) -> Result:
    flags = ["--password-stdin"] if stdin else []
    return cli.invoke(operators, ["add", name, "--role", role, *flags], input=typed)


def test_operators_add_stores_a_hash_and_refuses_duplicates_and_short_passwords(
    database_url: str, rt: Runtime
) -> None:
    cli = CliRunner(env={"DATABASE_URL": database_url, "CONSULTA_SECRET": SECRET})
    added = add_operator(cli, "maria", "operator", f"{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    prompted = add_operator(cli, "ana", "admin", f"{PASSWORD}\n{PASSWORD}\n", stdin=False)
    assert prompted.exit_code == 0, prompted.output
    assert "already an operator" in add_operator(cli, "maria", "viewer", f"{PASSWORD}\n").output
    assert "at least 10" in add_operator(cli, "jose", "viewer", "short\n").output
    with rt.sessions() as session:
        rows = {r.username: r for r in session.scalars(select(OperatorRow))}
    assert sorted(rows) == ["ana", "maria"]
    assert rows["maria"].role == "operator"
    assert check_password_hash(rows["maria"].password_hash, PASSWORD)
    assert PASSWORD not in rows["maria"].password_hash
    assert cli.invoke(operators, ["list"]).output == "ana\tadmin\nmaria\toperator\n"
    actor, action = actions(rt)[0]
    assert actor.startswith("cli:")
    assert action == "operator.add"


# --- the pure parts, as tables -----------------------------------------------------------------

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("label", "signals", "expected"),
    [
        ("all quiet", Signals(2, [(NOW - 60, 10), (NOW, 12)], 0, None, 30), []),
        ("no worker", Signals(0, [], 0, None, 30), ["critical:workers"]),
        (
            "growing",
            Signals(1, [(NOW - 40, 200), (NOW - 10, 300), (NOW, 400)], 0, 5.0, 30),
            ["warning:backlog"],
        ),
        ("big but shrinking", Signals(1, [(NOW - 40, 900), (NOW, 400)], 0, None, 30), []),
        ("too recent to judge", Signals(1, [(NOW - 5, 100), (NOW, 900)], 0, None, 30), []),
        ("growing but small", Signals(1, [(NOW - 40, 10), (NOW, 60)], 0, None, 30), []),
        ("one stuck message", Signals(1, [], 0, 61.0, 30), ["warning:stuck"]),
        (
            "failures, no worker",
            Signals(0, [], 3, None, 30),
            ["critical:workers", "warning:failed"],
        ),
    ],
)
def test_alerts_are_raised_from_the_figures(
    label: str, signals: Signals, expected: list[str]
) -> None:
    assert [f"{a.level}:{a.kind}" for a in alerts(signals)] == expected, label


EDGES = (1.0, 2.0, 5.0)


@pytest.mark.parametrize(
    ("label", "cumulative", "q", "expected"),
    [
        ("nothing counted", [0, 0, 0, 0], 0.5, None),
        ("all in the first bucket", [4, 4, 4, 4], 0.5, 0.5),
        ("the middle of the second", [0, 4, 4, 4], 0.5, 1.5),
        ("beyond the last edge", [0, 0, 0, 10], 0.95, 5.0),
        ("p95 in the third", [10, 50, 100, 100], 0.95, 4.7),
    ],
)
def test_quantiles_are_read_from_cumulative_buckets(
    label: str, cumulative: list[int], q: float, expected: float | None
) -> None:
    found = quantile(EDGES, cumulative, q)
    assert found == (pytest.approx(expected) if expected is not None else None), label


@pytest.mark.parametrize(
    ("label", "votes", "places", "expected"),
    [
        ("no votes", [0, 0, 0], 1, []),
        ("one leader", [3, 5, 1], 1, [2]),
        ("a tie for first", [5, 5, 1], 1, [1, 2]),
        ("top two", [3, 5, 1, 4], 2, [2, 4]),
        ("a tie for second", [3, 5, 3, 0], 2, [2, 1, 3]),
        ("fewer voted options than places", [0, 2, 0], 2, [2]),
    ],
)
def test_the_live_leaders_include_a_tie_for_the_last_place(
    label: str, votes: list[int], places: int, expected: list[int]
) -> None:
    options = [{"option": i + 1, "title": f"P{i + 1}", "votes": v} for i, v in enumerate(votes)]
    assert [o["option"] for o in leaders(options, places)] == expected, label
