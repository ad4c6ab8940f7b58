"""`consulta audit verify | seal | export`, run as an operator or an auditor runs them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit_export import export
from gateway.cli import main
from gateway.db import make_engine, make_sessionmaker
from tests.conftest import SECRET
from tests.integration.test_audit import SLUG, cast, sql, votes, write
from tests.support.factories import Seeded, seed

NOWHERE = "postgresql://nobody@127.0.0.1:1/none"  # a database that is never there


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def consultation(sessions: sessionmaker[Session]) -> Seeded:
    return seed(sessions, slug=SLUG, ballots={"C1": 3, "C2": 3})


@pytest.fixture
def consulta(database_url: str) -> CliRunner:
    return CliRunner(env={"DATABASE_URL": database_url, "CONSULTA_SECRET": SECRET})


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args))


def test_creating_a_consultation_starts_its_chain_with_the_rules(consulta: CliRunner) -> None:
    window = ["--opens", "2026-03-08T07:00", "--closes", "2026-03-08T18:00"]
    assert run(consulta, "consultation", "create", "nueva", "--name", "N", *window).exit_code == 0
    assert run(consulta, "consultation", "open", "nueva").exit_code == 0
    result = run(consulta, "audit", "seal", "nueva")
    assert result.exit_code == 0, result.output
    assert "nueva sealed at seq 2" in result.output
    assert "entries: operator 2" in result.output


def test_verify_passes_an_intact_log_and_prints_the_recount(
    sessions: sessionmaker[Session], consultation: Seeded, consulta: CliRunner
) -> None:
    cast(sessions, consultation, ("A", "C1", 2), ("B", "C1", 2), ("C", "C2", 1))
    result = run(consulta, "audit", "verify", SLUG)
    assert result.exit_code == 0, result.output
    assert "cpn-2026: intact, 3 entries" in result.output
    assert "C1\t2\t2\nC2\t1\t1" in result.output
    assert "the votes table agrees with the log" in result.output


@pytest.mark.parametrize(
    ("tampering", "named"),
    [
        pytest.param(
            # `\\:` is a colon to SQLAlchemy's text(), not a bound parameter
            "UPDATE audit_log SET payload = replace(payload, 'option\"\\:2', 'option\"\\:3') "
            "WHERE seq = 2",
            "BROKEN at seq 2: its digest does not match its contents",
            id="an edited option",
        ),
        pytest.param("DELETE FROM audit_log WHERE seq = 2", "BROKEN at seq 2: missing here",
                     id="a deleted entry"),
        pytest.param("DELETE FROM audit_log WHERE seq = 3", "BROKEN at seq 3: missing",
                     id="the last entry deleted"),
        pytest.param("DELETE FROM audit_heads", "BROKEN at seq 1: beyond the head",
                     id="the head deleted"),
    ],
)  # fmt: skip
def test_verify_fails_on_a_tampered_log_and_names_the_first_broken_entry(
    sessions: sessionmaker[Session],
    consultation: Seeded,
    consulta: CliRunner,
    tampering: str,
    named: str,
) -> None:
    cast(sessions, consultation, ("A", "C1", 2), ("B", "C1", 2), ("C", "C2", 1))
    sql(sessions, tampering)
    result = run(consulta, "audit", "verify", SLUG)
    assert result.exit_code == 1
    assert named in result.output


def test_verify_fails_when_the_votes_table_was_changed_behind_the_log(
    sessions: sessionmaker[Session], consultation: Seeded, consulta: CliRunner
) -> None:
    cast(sessions, consultation, ("A", "C1", 2), ("B", "C1", 2))
    sql(sessions, "UPDATE votes SET option = 3 WHERE receipt = 'B'")
    result = run(consulta, "audit", "verify", SLUG)
    assert result.exit_code == 1
    assert "WRONG circuit C1 option 2: log 2, votes table 1" in result.output
    assert "WRONG circuit C1 option 3: log 0, votes table 1" in result.output


def test_seal_refuses_a_broken_chain(
    sessions: sessionmaker[Session], consultation: Seeded, consulta: CliRunner
) -> None:
    write(sessions, consultation.consultation_id, votes(3))
    sql(sessions, "DELETE FROM audit_log WHERE seq = 1")
    result = run(consulta, "audit", "seal", SLUG)
    assert result.exit_code == 1
    assert "BROKEN at seq 1" in result.output
    assert "a broken chain is not sealed" in result.output


def test_an_exported_file_is_verified_with_no_database_at_all(
    sessions: sessionmaker[Session], consultation: Seeded, consulta: CliRunner, tmp_path: Path
) -> None:
    cast(sessions, consultation, ("A", "C1", 2), ("B", "C2", 3))
    path = tmp_path / "log.jsonl"
    exported = run(consulta, "audit", "export", SLUG, str(path))
    assert exported.exit_code == 0, exported.output
    assert "2 entries written" in exported.output
    offline = CliRunner(env={"DATABASE_URL": NOWHERE, "CONSULTA_SECRET": ""})
    result = run(offline, "audit", "verify", SLUG, "--file", str(path))
    assert result.exit_code == 0, result.output
    assert "C1\t2\t1\nC2\t3\t1" in result.output


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        pytest.param(lambda lines: [lines[0].replace('"option":2', '"option":1'), *lines[1:]],
                     "BROKEN at seq 1: its digest", id="an edited line"),
        pytest.param(lambda lines: [lines[1], lines[0], *lines[2:]],
                     "BROKEN at seq 1: missing here", id="two lines swapped"),
        pytest.param(lambda lines: lines[:-1], "BROKEN at seq 3: missing: the file has no head",
                     id="the head line cut off"),
        pytest.param(lambda lines: [lines[0], lines[2]], "BROKEN at seq 2: missing",
                     id="the last entry cut out"),
    ],
)  # fmt: skip
def test_a_damaged_export_fails_and_names_the_first_broken_entry(
    sessions: sessionmaker[Session],
    consultation: Seeded,
    tmp_path: Path,
    damage: Callable[[list[str]], list[str]],
    named: str,
) -> None:
    cast(sessions, consultation, ("A", "C1", 2), ("B", "C2", 3))
    path = tmp_path / "log.jsonl"
    with sessions() as session, path.open("w") as out:
        export(session, SLUG, out)
    path.write_text("\n".join(damage(path.read_text().splitlines())) + "\n")
    offline = CliRunner(env={"DATABASE_URL": NOWHERE})
    result = run(offline, "audit", "verify", SLUG, "--file", str(path))
    assert result.exit_code == 1
    assert named in result.output


def test_an_export_of_another_consultation_is_named_as_such(
    sessions: sessionmaker[Session], consultation: Seeded, tmp_path: Path
) -> None:
    write(sessions, consultation.consultation_id, votes(2))
    path = tmp_path / "log.jsonl"
    with sessions() as session, path.open("w") as out:
        export(session, SLUG, out)
    result = run(CliRunner(), "audit", "verify", "otra", "--file", str(path))
    assert result.exit_code == 1
    assert "this is an export of 'cpn-2026', not of 'otra'" in result.output


def test_an_unknown_consultation_is_a_plain_error(consulta: CliRunner) -> None:
    result = run(consulta, "audit", "verify", "nadie")
    assert result.exit_code == 1
    assert "there is no consultation 'nadie'" in result.output
