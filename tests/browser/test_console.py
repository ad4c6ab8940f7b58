"""The operator console in a real browser: sign in, watch a vote arrive, retry, be refused."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

from gateway.models import OperatorActionRow
from gateway.queues import INTAKE_QUEUE
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import AUTH_TOKEN, PUBLIC_URL
from tests.support.factories import seed
from tests.support.pipeline import drain
from tests.support.twilio_requests import inbound_form, signed_headers
from workers.runtime import Runtime

VOTERS = ["+584141234561", "+584141234562", "+584141234563", "+584141234564"]
pytestmark = pytest.mark.slow  # a real gunicorn, and a real worker for the live test
C3_VOTER = "+584161234565"
WAIT_MS = 20_000  # the worker's pump and the page's 2 s poll, with room for a slow machine


def seed_voters(rt: Runtime, others: list[tuple[str, str, date, list[str]]] | None = None) -> None:
    people = [(f"V1000000{i}", "C1", date(1990, 5, 1), [phone]) for i, phone in enumerate(VOTERS)]
    seed(rt.sessions, ballots={"C1": 5, "C2": 4, "C3": 6}, people=people + (others or []))


def send_sms(base_url: str, sender: str, body: str) -> None:
    """POST as Twilio does, signed for the public URL the gateway checks signatures against."""
    form = inbound_form(sender, body)
    headers = signed_headers(AUTH_TOKEN, PUBLIC_URL + "/sms/twilio", form)
    answer = requests.post(base_url + "/sms/twilio", data=form, headers=headers, timeout=10)
    assert answer.status_code == 200


def failed_job(rt: Runtime) -> str:
    """A job that fails every time: the intake job given a string, not a list of IDs."""
    queue = rt.queue(INTAKE_QUEUE)
    job = queue.enqueue("workers.intake.process_inbound", "not-a-list")
    SimpleWorker([queue], connection=rt.redis, serializer=JSONSerializer).work(burst=True)
    assert job.id in queue.failed_job_registry.get_job_ids()
    return str(job.id)


def test_a_vote_sent_through_the_webhook_appears_in_the_live_view_without_a_reload(
    page: Page, console_url: str, rt: Runtime, operators: None, worker: None, tmp_path: Path
) -> None:
    seed_voters(rt)
    for phone, choice in zip(VOTERS[:3], ("3", "3", "1"), strict=True):
        send_sms(console_url, phone, f"VOTO {choice}")
    sign_in(page, console_url, "operator")
    expect(page.locator("#t-in")).to_have_text("3", timeout=WAIT_MS)
    expect(page.locator("#t-workers")).to_have_text("1", timeout=WAIT_MS)
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    send_sms(console_url, VOTERS[3], "VOTO 2")
    expect(page.locator("#t-in")).to_have_text("4", timeout=WAIT_MS)
    expect(page.locator("#t-out")).to_have_text("4", timeout=WAIT_MS)
    expect(page.locator("#alerts")).to_contain_text("All clear")
    expect(page.locator("#t-latency")).not_to_have_text("—")
    assert page.evaluate("window.sameDocument") is True
    screenshot(page, tmp_path, "live", for_readme=True)


def test_an_operator_retries_a_failed_job(
    page: Page, console_url: str, rt: Runtime, operators: None, tmp_path: Path
) -> None:
    job_id = failed_job(rt)
    sign_in(page, console_url, "operator")
    row = page.locator(f'#failed tr[data-job-id="{job_id}"]')
    expect(row).to_contain_text("TypeError: an intake job takes a list", timeout=WAIT_MS)
    screenshot(page, tmp_path, "failed-job")
    row.get_by_role("button", name="Retry").click()
    expect(page.locator("#action-result")).to_contain_text("queued again", timeout=WAIT_MS)
    expect(row).to_have_count(0, timeout=WAIT_MS)
    assert rt.queue(INTAKE_QUEUE).get_job_ids() == [job_id]
    with rt.sessions() as session:
        done = session.execute(select(OperatorActionRow.actor, OperatorActionRow.action)).all()
    assert ("operator", "job.retry") in [tuple(row) for row in done]
    screenshot(page, tmp_path, "retried")


def test_a_viewer_who_tries_an_operator_action_is_refused(
    page: Page, console_url: str, rt: Runtime, operators: None, tmp_path: Path
) -> None:
    job_id = failed_job(rt)
    sign_in(page, console_url, "viewer")
    row = page.locator(f'#failed tr[data-job-id="{job_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row.get_by_role("button")).to_have_count(0)  # a viewer is not offered the buttons
    # ...and a hand-made form, with the viewer's own valid CSRF token, is refused by the server.
    page.evaluate(
        """([url]) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = url;
            const token = document.createElement("input");
            token.type = "hidden";
            token.name = "csrf_token";
            token.value = document.body.dataset.csrf;
            form.appendChild(token);
            document.body.appendChild(form);
            form.submit();
        }""",
        [f"/ops/jobs/intake/{job_id}/retry"],
    )
    expect(page.locator("h1")).to_contain_text("403", timeout=WAIT_MS)
    expect(page.locator(".alert")).to_contain_text("needs the operator role")
    assert job_id in rt.queue(INTAKE_QUEUE).failed_job_registry.get_job_ids()
    screenshot(page, tmp_path, "viewer-refused")


def test_a_wrong_password_is_refused_and_the_right_one_opens_the_console(
    page: Page, console_url: str, operators: None, tmp_path: Path
) -> None:
    sign_in(page, console_url, "admin", "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    screenshot(page, tmp_path, "login-refused")
    sign_in(page, console_url, "admin")
    expect(page.locator(".who .role")).to_have_text("admin")
    expect(page).to_have_url(f"{console_url}/ops/")


def test_the_count_view_shows_turnout_leaders_and_the_distribution(
    page: Page, console_url: str, rt: Runtime, operators: None, tmp_path: Path
) -> None:
    # C1: all four vote (100 %); C2: three registered, nobody votes; C3: one of five (20 %).
    born = date(1980, 1, 1)
    others = [(f"V2000000{i}", "C2", born, []) for i in range(3)]
    others += [(f"V3000000{i}", "C3", born, [C3_VOTER] if i == 0 else []) for i in range(5)]
    seed_voters(rt, others)
    for phone, choice in zip([*VOTERS, C3_VOTER], ("3", "3", "1", "2", "6"), strict=True):
        send_sms(console_url, phone, f"VOTO {choice}")
    drain(rt)  # in this process: the view is what is under test here
    sign_in(page, console_url, "viewer")
    page.get_by_role("link", name="Count").click()
    first = page.locator("#circuits tbody tr").first
    expect(first).to_contain_text("C1", timeout=WAIT_MS)
    expect(first).to_contain_text("3. Proyecto C1-3 (2)")
    expect(page.locator("#c-votes")).to_have_text("5")
    expect(page.locator("#c-quorum")).to_have_text("1")
    expect(page.locator("#chart-turnout canvas")).to_have_count(1)
    screenshot(page, tmp_path, "count")
    page.get_by_label("Circuit code starts with, or name contains").fill("C2")
    expect(page.locator("#circuits tbody tr")).to_have_count(1, timeout=WAIT_MS)
    expect(page.locator("#circuits tbody tr").first).to_contain_text("below quorum")
    screenshot(page, tmp_path, "count-filtered")
