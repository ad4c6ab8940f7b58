"""The operator's commands, run as `consulta ...` would run them, against the real databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway import privacy
from gateway.cli import main
from gateway.db import make_engine, make_sessionmaker
from gateway.models import CircuitRow, ConsultationRow, PersonRow, PhoneRow
from tests.conftest import SECRET

SLUG = "cpn-2026"
WINDOW = ["--opens", "2026-03-08T07:00", "--closes", "2026-03-08T18:00"]
BALLOTS = "circuit_code,circuit_name,option,title\nC1,Uno,1,Agua\nC1,Uno,2,Luz\n"
REGISTRY = "national_id,circuit_code,birth_date,phones\nV-12.345.678,C1,1990-05-01,0414-123.45.67\n"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    # For looking at what a command wrote; each command builds and disposes its own engine.
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def consulta(database_url: str) -> CliRunner:
    return CliRunner(env={"DATABASE_URL": database_url, "CONSULTA_SECRET": SECRET})


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args))


def count(sessions: sessionmaker[Session], table: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def files(tmp_path: Path, registry: str = REGISTRY) -> tuple[str, str]:
    (tmp_path / "ballots.csv").write_text(BALLOTS, encoding="utf-8")
    (tmp_path / "registry.csv").write_text(registry, encoding="utf-8")
    return str(tmp_path / "ballots.csv"), str(tmp_path / "registry.csv")


def test_a_created_consultation_reads_its_times_in_its_own_zone(
    consulta: CliRunner, sessions: sessionmaker[Session]
) -> None:
    result = run(consulta, "consultation", "create", SLUG, "--name", "Consulta 2026", *WINDOW)
    assert result.exit_code == 0, result.output
    assert f"created {SLUG} as a draft: 2026-03-08 07:00 to 2026-03-08 18:00 America/Caracas" in (
        result.stdout
    )
    with sessions() as session:
        row = session.scalars(select(ConsultationRow)).one()
    assert row.opens_at == datetime(2026, 3, 8, 11, 0, tzinfo=UTC)
    assert row.closes_at == datetime(2026, 3, 8, 22, 0, tzinfo=UTC)
    assert (row.min_age, row.max_age, row.winners, row.revote, row.require_id) == (
        15,
        None,
        1,
        "first",
        False,
    )
    assert (row.status, row.tie_break, row.quorum, row.lot_seed) == ("draft", "earliest", 0.1, None)


def test_every_rule_of_a_consultation_can_be_chosen(
    consulta: CliRunner, sessions: sessionmaker[Session]
) -> None:
    rules = ["--min-age", "15", "--max-age", "35", "--winners", "2", "--revote", "last"]
    rules += ["--tie-break", "runoff", "--quorum", "0.2"]
    window = ["--opens", "2026-03-08T07:00+00:00", "--closes", "2026-03-08T18:00"]
    zone = ["--timezone", "Europe/Madrid", "--require-id"]
    result = run(consulta, "consultation", "create", "joven", "--name", "J", *window, *rules, *zone)
    assert result.exit_code == 0, result.output
    with sessions() as session:
        row = session.scalars(select(ConsultationRow)).one()
    assert row.opens_at == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # an explicit offset stands
    assert row.closes_at == datetime(2026, 3, 8, 17, 0, tzinfo=UTC)  # 18:00 in Madrid
    assert (row.timezone, row.max_age, row.winners, row.revote, row.require_id) == (
        "Europe/Madrid",
        35,
        2,
        "last",
        True,
    )
    assert (row.tie_break, row.quorum) == ("runoff", 0.2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["CPN 2026", "--name", "C", *WINDOW], "SLUG must be"),
        (["x" * 65, "--name", "C", *WINDOW], "SLUG must be"),
        ([SLUG, "--name", " ", *WINDOW], "--name must be"),
        (
            [SLUG, "--name", "C", "--opens", "2026-03-08T18:00", "--closes", "2026-03-08T07:00"],
            "later",
        ),
        ([SLUG, "--name", "C", "--opens", "8/3/2026", "--closes", "2026-03-08"], "is not ISO"),
        ([SLUG, "--name", "C", *WINDOW, "--timezone", "Mars/Olympus"], "not a known time zone"),
        ([SLUG, "--name", "C", *WINDOW, "--min-age", "40", "--max-age", "35"], "--max-age"),
    ],
    ids=[
        "a slug with capitals and a space is refused",
        "a slug longer than 64 characters is refused",
        "a blank name is refused",
        "a close before the opening is refused",
        "a date that is not ISO is refused",
        "an unknown time zone is refused",
        "a maximum age below the minimum is refused",
    ],
)
def test_a_bad_consultation_is_refused_with_a_message_and_not_written(
    consulta: CliRunner, sessions: sessionmaker[Session], args: list[str], message: str
) -> None:
    result = run(consulta, "consultation", "create", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert count(sessions, ConsultationRow) == 0


def test_a_second_consultation_with_the_same_slug_is_refused(
    consulta: CliRunner, sessions: sessionmaker[Session]
) -> None:
    assert run(consulta, "consultation", "create", SLUG, "--name", "A", *WINDOW).exit_code == 0
    result = run(consulta, "consultation", "create", SLUG, "--name", "B", *WINDOW)
    assert result.exit_code == 1
    assert f"a consultation '{SLUG}' already exists" in result.output
    with sessions() as session:
        assert session.scalars(select(ConsultationRow.name)).all() == ["A"]


def test_ballots_registry_and_results_run_end_to_end(
    consulta: CliRunner, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    ballots, registry = files(tmp_path)
    run(consulta, "consultation", "create", SLUG, "--name", "Consulta 2026", *WINDOW)
    loaded = run(consulta, "ballots", "import", SLUG, ballots)
    assert (loaded.exit_code, loaded.stdout) == (0, "imported 1 circuits and 2 options\n")
    registered = run(consulta, "registry", "import", SLUG, registry)
    assert (registered.exit_code, registered.stdout) == (0, "imported 1 people and 1 phones\n")
    with sessions() as session:
        # Stored as a keyed hash of the number in E.164.
        assert session.scalar(select(PhoneRow.phone)) == privacy.digest("+584141234567")
    document = json.loads(run(consulta, "results", SLUG, "--format", "json").stdout)
    assert [(c["code"], c["eligible"], c["votes"]) for c in document["circuits"]] == [("C1", 1, 0)]
    rules = ("status", "winners_per_circuit", "tie_break", "quorum")
    assert [document[key] for key in rules] == ["draft", 1, "earliest", 0.1]
    [circuit] = document["circuits"]
    assert (circuit["winners"], circuit["quorum_met"], circuit["tie"]) == ([], False, False)
    table = run(consulta, "results", SLUG).stdout
    assert table.startswith(f"Consulta 2026 ({SLUG})\ndraft; 1 winner per circuit")
    csv_lines = run(consulta, "results", SLUG, "--format", "csv").stdout.splitlines()
    assert csv_lines[1:] == [
        "C1,Uno,1,0,0.0,1,Agua,0,false,false,false,false",
        "C1,Uno,1,0,0.0,2,Luz,0,false,false,false,false",
    ]


def test_the_list_shows_each_consultation_with_its_counts(
    consulta: CliRunner, tmp_path: Path
) -> None:
    assert run(consulta, "consultation", "list").stdout == "no consultations yet\n"
    ballots, registry = files(tmp_path)
    run(consulta, "consultation", "create", SLUG, "--name", "Consulta 2026", *WINDOW)
    run(consulta, "ballots", "import", SLUG, ballots)
    run(consulta, "registry", "import", SLUG, registry)
    header, row = run(consulta, "consultation", "list").stdout.splitlines()
    assert header.split() == ["slug", "name", "status", "window", "circuits", "people", "votes"]
    assert row.split()[-3:] == ["1", "1", "0"]
    assert row.startswith(f"{SLUG}  Consulta 2026  draft   2026-03-08 07:00 to 2026-03-08 18:00")


def test_a_refused_registry_import_names_the_line_and_writes_nothing(
    consulta: CliRunner, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    bad = REGISTRY + "V1000001,C1,1990-13-01,\n"
    ballots, registry = files(tmp_path, bad)
    run(consulta, "consultation", "create", SLUG, "--name", "C", *WINDOW)
    run(consulta, "ballots", "import", SLUG, ballots)
    result = run(consulta, "registry", "import", SLUG, registry)
    assert result.exit_code == 1
    assert "line 3: birth_date is not a real calendar date" in result.stderr
    assert "Traceback" not in result.output
    assert (count(sessions, PersonRow), count(sessions, PhoneRow)) == (0, 0)


@pytest.mark.parametrize(
    "args",
    [
        ["ballots", "import", "nope"],
        ["registry", "import", "nope"],
        ["results", "nope"],
    ],
    ids=[
        "importing ballots into an unknown consultation is refused",
        "importing a registry into an unknown consultation is refused",
        "asking for the results of an unknown consultation is refused",
    ],
)
def test_an_unknown_consultation_is_a_clear_error(
    consulta: CliRunner, sessions: sessionmaker[Session], tmp_path: Path, args: list[str]
) -> None:
    ballots, _ = files(tmp_path)
    result = run(consulta, *args, *([ballots] if "import" in args else []))
    assert result.exit_code == 1
    assert "no consultation 'nope'" in result.stderr
    assert count(sessions, CircuitRow) == 0


def test_a_database_that_was_never_migrated_gets_a_hint_not_a_traceback(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    runner = CliRunner(env={"DATABASE_URL": empty, "CONSULTA_SECRET": SECRET})
    result = run(runner, "consultation", "list")
    assert result.exit_code == 1
    assert "consulta db upgrade" in result.stderr
