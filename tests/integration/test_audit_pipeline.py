"""Votes through the whole pipeline land in the audit log, which then recounts them exactly."""

from __future__ import annotations

from collections import Counter
from datetime import date

from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.audit_store import check_stored
from gateway.cli import main
from gateway.models import AuditEntryRow
from tests.conftest import SECRET
from tests.integration.test_sms_pipeline import post_sms
from tests.support.factories import seed
from tests.support.pipeline import drain
from workers.runtime import Runtime

SLUG = "cpn-2026"
# (national ID, circuit, phone)
VOTERS = [(f"V1000000{i}", f"C{i % 2 + 1}", f"+58414100000{i}") for i in range(6)]


def test_votes_and_replacements_through_the_pipeline_recount_to_the_votes_table(
    client: FlaskClient, rt: Runtime
) -> None:
    people = [(nid, code, date(1990, 5, 1), [phone]) for nid, code, phone in VOTERS]
    seed(rt.sessions, slug=SLUG, revote="last", ballots={"C1": 4, "C2": 4}, people=people)
    for i, (_, _, phone) in enumerate(VOTERS):
        assert post_sms(client, phone, f"VOTO {i % 4 + 1}") == 200
    _, _, changing = VOTERS[0]
    assert post_sms(client, changing, "VOTO 4") == 200  # replaced within the same batch
    drain(rt)
    _, _, later = VOTERS[1]
    assert post_sms(client, later, "VOTO 1") == 200  # replaced in a later batch
    drain(rt)

    with rt.sessions() as session:
        check = check_stored(session, SLUG)
        entries = session.execute(select(AuditEntryRow.kind, AuditEntryRow.payload)).all()
    assert check.verdict.intact
    assert (check.recount.anomalies, check.differences()) == ([], [])
    assert Counter(kind for kind, _ in entries) == Counter({"vote": 6, "replace": 2})
    # C1: voters 0 (now 4), 2 (3), 4 (1); C2: voters 1 (now 1), 3 (4), 5 (2)
    expected = {("C1", 4): 1, ("C1", 3): 1, ("C1", 1): 1}
    expected |= {("C2", 1): 1, ("C2", 4): 1, ("C2", 2): 1}
    assert check.recount.votes == Counter(expected)
    payloads = [payload for _, payload in entries]
    for national_id, _, phone in VOTERS:  # no person in the log, in any spelling
        for secret in (national_id, national_id[1:], phone, phone[1:], phone[-7:]):
            assert not any(secret in p for p in payloads), secret

    consulta = CliRunner(env={"DATABASE_URL": rt.settings.database_url, "CONSULTA_SECRET": SECRET})
    result = consulta.invoke(main, ["audit", "verify", SLUG])
    assert result.exit_code == 0, result.output
    assert "the votes table agrees with the log" in result.output
