"""Certified results are public, as a page and as JSON; nothing is public before."""

from __future__ import annotations

from datetime import date

import pytest
from flask.testing import FlaskClient

from gateway.lifecycle import transition
from tests.integration.test_sms_pipeline import ANA, post_sms
from tests.support.factories import seed
from tests.support.pipeline import drain
from workers.runtime import Runtime

SLUG = "cpn-2026"


@pytest.fixture
def voted(client: FlaskClient, rt: Runtime) -> None:
    seed(rt.sessions, slug=SLUG, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])
    post_sms(client, ANA, "VOTO 4")
    drain(rt)


@pytest.mark.parametrize("path", [f"/results/{SLUG}", f"/results/{SLUG}.json", "/results/nope"])
def test_results_are_not_public_before_certification(
    client: FlaskClient, voted: None, path: str
) -> None:
    assert client.get(path).status_code == 404


def test_certified_results_are_published_as_json_and_a_page(
    client: FlaskClient, rt: Runtime, voted: None
) -> None:
    transition(rt.sessions, SLUG, "closed", "cli:test")
    transition(rt.sessions, SLUG, "certified", "cli:test")
    published = client.get(f"/results/{SLUG}.json")
    assert published.status_code == 200
    body = published.get_json()
    assert body["consultation"] == SLUG
    assert body["status"] == "certified"
    [circuit] = body["circuits"]
    assert (circuit["votes"], circuit["eligible"], circuit["winners"]) == (1, 1, [4])
    page = client.get(f"/results/{SLUG}").get_data(as_text=True)
    assert "Proyecto C1-4 ✔" in page
    assert "/results/cpn-2026.json" in page
