"""The paper bridge: poll book export, actas import, combined results, no ID counted twice."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from gateway import cli_paper
from gateway.imports import chunking
from gateway.models import ActaRow, CircuitRow, InboundRow, OutboundRow, ParticipationRow, VoteRow
from gateway.paper import PAPER_CHANNEL, PAPER_RECEIPT
from gateway.paper_check import PaperRefused, Voter
from gateway.paper_import import import_actas, load_ballots, write_voters
from tests.conftest import AUTH_TOKEN, PUBLIC_URL, SECRET
from tests.support.factories import seed
from tests.support.pipeline import drain
from tests.support.twilio_requests import inbound_form, signed_headers
from workers.runtime import Runtime

SLUG = "cpn-2026"
ADULT, CHILD = date(1990, 5, 1), date(2018, 1, 1)
PHONES = {"V11111111": "+584140000001", "V22222222": "+584140000002",
          "V33333333": "+584140000003", "V55555555": "+584140000005"}  # fmt: skip
PEOPLE = [  # (national ID, circuit, birth date): the C1 four and the C2 three are of age
    ("V11111111", "C1", ADULT),  # votes 2 by SMS
    ("V22222222", "C1", ADULT),  # votes 3 by SMS
    ("V33333333", "C1", ADULT),  # votes on paper at M1, then tries an SMS
    ("V44444444", "C1", ADULT),  # votes on paper at M1
    ("V88888888", "C1", ADULT),  # does not vote
    ("V55555555", "C2", ADULT),  # votes 1 by SMS
    ("V66666666", "C2", ADULT),  # votes on paper at M1
    ("V77777777", "C2", ADULT),  # does not vote
    ("V99999990", "C2", CHILD),  # too young: not eligible
]
ACTAS = "circuit_code,table,option,votes\nC1,M1,1,1\nC1,M1,2,1\nC1,M1,3,0\nC2,M1,2,1\n"
VOTERS = "national_id,circuit_code,table\nV-33.333.333,C1,M1\n44444444,C1,M1\nV66666666,C2,M1\n"


def post_sms(client: FlaskClient, sender: str, body: str) -> None:
    form = inbound_form(sender, body)
    url = PUBLIC_URL + "/sms/twilio"
    response = client.post("/sms/twilio", data=form, headers=signed_headers(AUTH_TOKEN, url, form))
    assert response.status_code == 200


def vote_digitally(client: FlaskClient, rt: Runtime, revote: str = "first") -> None:
    people = [
        (nid, code, born, [PHONES[nid]] if nid in PHONES else []) for nid, code, born in PEOPLE
    ]
    seed(rt.sessions, slug=SLUG, revote=revote, ballots={"C1": 3, "C2": 2}, people=people)
    for national_id, option in [("V11111111", 2), ("V22222222", 3), ("V55555555", 1)]:
        post_sms(client, PHONES[national_id], f"VOTO {option}")
    drain(rt)


@pytest.fixture
def voted(client: FlaskClient, rt: Runtime) -> Runtime:
    vote_digitally(client, rt)
    return rt


def consulta(rt: Runtime, *args: str) -> Result:
    group = click.Group("consulta", commands=cli_paper.COMMANDS)
    return CliRunner(
        env={"DATABASE_URL": rt.settings.database_url, "CONSULTA_SECRET": SECRET}
    ).invoke(group, list(args))


def files(tmp_path: Path, actas: str = ACTAS, voters: str = VOTERS) -> tuple[Path, Path]:
    (tmp_path / "actas.csv").write_text(actas, encoding="utf-8")
    (tmp_path / "voters.csv").write_text(voters, encoding="utf-8")
    return tmp_path / "actas.csv", tmp_path / "voters.csv"


def written(rt: Runtime) -> tuple[int, int, int]:
    """(acta rows, paper participations, counted digital votes)."""
    with rt.sessions() as session:
        actas = session.scalar(select(func.count()).select_from(ActaRow))
        paper = session.scalar(
            select(func.count()).where(ParticipationRow.channel == PAPER_CHANNEL)
        )
        digital = session.scalar(select(func.count()).where(VoteRow.replaced_at.is_(None)))
    return actas or 0, paper or 0, digital or 0


def test_the_pollbook_csv_lists_exactly_the_digital_voters_of_the_circuit(
    voted: Runtime, tmp_path: Path
) -> None:
    result = consulta(voted, "pollbook", "export", SLUG, "--circuit", "C1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO((tmp_path / f"pollbook-{SLUG}-C1.csv").read_text())))
    assert rows[0] == ["national_id", "voted_at_local", "channel"]
    assert [(r[0], r[2]) for r in rows[1:]] == [("V11111111", "sms"), ("V22222222", "sms")]
    assert "2 digital voters in circuit C1" in result.output


def test_the_printable_pollbook_lists_them_escaped_and_without_phones(
    voted: Runtime, tmp_path: Path
) -> None:
    with voted.sessions() as session, session.begin():
        session.execute(update(CircuitRow).values(name="Circuito <b>Uno</b> & Co"))
    result = consulta(voted, "pollbook", "export", SLUG, "--circuit", "C1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    page = (tmp_path / f"pollbook-{SLUG}-C1.html").read_text(encoding="utf-8")
    assert "V11111111" in page
    assert "V22222222" in page
    assert "V55555555" not in page  # another circuit
    assert "Circuito &lt;b&gt;Uno&lt;/b&gt; &amp; Co" in page
    assert "<b>" not in page
    assert "Personas / People: 2" in page
    assert not any(phone[1:] in page for phone in PHONES.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["pollbook", "export", "nope", "--circuit", "C1"], "no consultation 'nope'",
                     id="a pollbook of an unknown consultation is a clear error"),
        pytest.param(["pollbook", "export", SLUG, "--circuit", "C9"], "has no circuit 'C9'",
                     id="a pollbook of an unknown circuit is a clear error"),
        pytest.param(["actas", "results", "nope"], "no consultation 'nope'",
                     id="results of an unknown consultation are a clear error"),
    ],
)  # fmt: skip
def test_an_unknown_name_exits_1_with_a_clear_message(
    voted: Runtime, args: list[str], message: str
) -> None:
    result = consulta(voted, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_imported_actas_combine_with_digital_votes_per_option(
    voted: Runtime, tmp_path: Path
) -> None:
    actas, voters = files(tmp_path)
    result = consulta(voted, "actas", "import", SLUG, str(actas), "--voters", str(voters))
    assert result.exit_code == 0, result.output
    assert "4 acta rows from 2 tables (3 votes) and 3 paper voters" in result.output
    document = json.loads(consulta(voted, "actas", "results", SLUG, "--format", "json").output)
    totals = {
        (c["code"], o["option"]): (o["digital"], o["paper"], o["total"])
        for c in document["circuits"]
        for o in c["options"]
    }
    assert totals == {
        ("C1", 1): (0, 1, 1), ("C1", 2): (1, 1, 2), ("C1", 3): (1, 0, 1),
        ("C2", 1): (1, 0, 1), ("C2", 2): (0, 1, 1),
    }  # fmt: skip
    turnout = {c["code"]: (c["eligible"], c["turnout"]) for c in document["circuits"]}
    assert turnout == {"C1": (5, 0.8), "C2": (3, 0.6667)}  # (2 + 2) / 5 and (1 + 1) / 3
    assert document["consultation"] == SLUG
    table = consulta(voted, "actas", "results", SLUG).output
    assert "80.00%" in table
    csv_rows = consulta(voted, "actas", "results", SLUG, "--format", "csv").output.splitlines()
    assert "C1,Circuito C1,5,0.8,2,Proyecto C1-2,1,1,2" in csv_rows


@pytest.mark.parametrize("revote", ["first", "last"])
def test_a_later_sms_vote_from_a_paper_voter_is_refused_with_the_paper_reply(
    client: FlaskClient, rt: Runtime, tmp_path: Path, revote: str
) -> None:
    vote_digitally(client, rt, revote)
    import_actas(rt.sessions, SLUG, *files(tmp_path))
    before = written(rt)
    post_sms(client, PHONES["V33333333"], "VOTO 1")
    drain(rt)
    assert written(rt) == before
    with rt.sessions() as session:
        replies = session.execute(select(OutboundRow.recipient, OutboundRow.body)).all()
        reply = next((body for to, body in replies if to == PHONES["V33333333"]), None)
        outcome = session.scalar(select(InboundRow.outcome).order_by(InboundRow.id.desc()))
        receipts = set(session.scalars(select(ParticipationRow.receipt)))
    assert reply is not None
    assert "ya votaste en papel" in reply
    assert PAPER_RECEIPT not in reply
    assert outcome == "voted_on_paper"
    assert PAPER_RECEIPT in receipts


INCONSISTENT = [
    pytest.param(ACTAS, VOTERS + "V11111111,C1,M1\n", [], [(5, "already voted by SMS")],
                 id="a paper list that includes a digital voter is refused at its line"),
    pytest.param(ACTAS.replace("C1,M1,3,0", "C1,M1,3,1"), VOTERS,
                 [(2, "table M1 of circuit C1: the acta counts 3 votes but only 2 voters signed")],
                 [], id="a table with more votes than signatures is refused by name"),
    pytest.param(ACTAS, VOTERS + "V88888888,C1,M2\n", [],
                 [(5, "table M2 of circuit C1 has paper voters but no acta")],
                 id="paper voters at a table without an acta are refused"),
    pytest.param(ACTAS + "C9,M1,1,1\nC2,M1,3,0\nC1,M2,1,-1\nC1,M2,2,x\nC1,M1,1,0\nC1,M3\n",
                 VOTERS,
                 [(6, "circuit_code 'C9' is not"), (7, "option 3 is not on the ballot of"),
                  (8, "votes must be a whole number"), (9, "votes must be a whole number"),
                  (10, "already on line 2"), (11, "expected 4 columns, found 2")], [],
                 id="bad acta rows are each refused at their line"),
    pytest.param(ACTAS, VOTERS + "V99999999,C1,M1\nV77777777,C1,M1\nX12,C1,M1\n"
                 "V33333333,C1,M1\nV99999990,C2,M1\n", [],
                 [(5, "not in this consultation's registry"), (6, "not registered in circuit C1"),
                  (7, "not a cédula number"), (8, "appears earlier in the file"),
                  (9, "not of the age allowed")],
                 id="bad paper voter rows are each refused at their line"),
    pytest.param("circuit,table,option,votes\n", VOTERS, [(1, "expected the header")], [],
                 id="a file without its header is refused"),
]  # fmt: skip


@pytest.mark.parametrize(("actas", "voters", "actas_errors", "voters_errors"), INCONSISTENT)
def test_an_inconsistent_import_is_refused_with_line_numbers_and_nothing_written(
    voted: Runtime,
    tmp_path: Path,
    actas: str,
    voters: str,
    actas_errors: list[tuple[int, str]],
    voters_errors: list[tuple[int, str]],
) -> None:
    with pytest.raises(PaperRefused) as refused:
        import_actas(voted.sessions, SLUG, *files(tmp_path, actas, voters))
    for expected, found in [
        (actas_errors, refused.value.actas),
        (voters_errors, refused.value.voters),
    ]:
        assert [line for line, _ in found] == [line for line, _ in expected], found
        for (_, fragment), (_, why) in zip(expected, found, strict=True):
            assert fragment in why
    assert written(voted) == (0, 0, 3)


def test_a_refused_import_names_each_file_and_line_and_exits_1(
    voted: Runtime, tmp_path: Path
) -> None:
    actas, voters = files(tmp_path, voters=VOTERS + "V22222222,C1,M1\n")
    result = consulta(voted, "actas", "import", SLUG, str(actas), "--voters", str(voters))
    assert result.exit_code == 1
    assert "voters.csv line 5: already voted by SMS" in result.output
    assert "V22222222" not in result.output  # the line says which row; the ID is not repeated


def test_importing_the_same_files_again_is_refused_and_changes_nothing(
    voted: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunking, "CHUNK_ROWS", 2)  # three voters: looked up and written in two
    import_actas(voted.sessions, SLUG, *files(tmp_path))
    before = written(voted)
    with pytest.raises(PaperRefused) as refused:
        import_actas(voted.sessions, SLUG, *files(tmp_path))
    assert [line for line, _ in refused.value.actas] == [2, 5]
    assert all("is already loaded" in why for _, why in refused.value.actas)
    assert [line for line, _ in refused.value.voters] == [2, 3, 4]
    assert all("already voted on paper at table M1" in why for _, why in refused.value.voters)
    assert written(voted) == before


def test_the_unique_constraint_keeps_a_digital_vote_counted_after_the_check(
    voted: Runtime,
) -> None:
    # The check ran before this person's SMS was stored; the write must not overwrite it.
    with voted.sessions() as session:
        ballots = load_ballots(session, SLUG)
        voter = Voter(7, "V11111111", ballots.circuits["C1"], "M1")
        assert [line for line, _ in write_voters(session, ballots, iter([voter]))] == [7]
        session.rollback()
    assert written(voted) == (0, 0, 3)
