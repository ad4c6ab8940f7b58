"""Migration 0003: people keep their rows; one key checks their circuit and consultation."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from gateway import migrate
from gateway.cli import main
from gateway.db import make_engine
from tests.support.old_schemas import add_person, database_at, two_consultations

COMPOSITE = [(["circuit_id", "consultation_id"], "circuits", ["id", "consultation_id"])]
BASE = 9_000_000
ONE_EACH = [
    (["circuit_id"], "circuits", ["id"]),
    (["consultation_id"], "consultations", ["id"]),
]


def people_keys(engine: Engine) -> list[tuple[list[str], str, list[str]]]:
    found = [
        (fk["constrained_columns"], fk["referred_table"], fk["referred_columns"])
        for fk in inspect(engine).get_foreign_keys("people")
    ]
    return sorted(found)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_at_0002_keeps_its_people_through_0003_and_back(
    kind: str, tmp_path: Path
) -> None:
    with database_at("0002", kind, tmp_path) as (url, engine):
        with engine.begin() as db:
            two_consultations(db)
            add_person(db, 1, consultation=1, circuit=1)
        assert people_keys(engine) == ONE_EACH
        migrate.upgrade(url)
        assert people_keys(engine) == COMPOSITE
        command.downgrade(migrate.alembic_config(url), "0002")
        assert people_keys(engine) == ONE_EACH
        with engine.connect() as db:
            assert db.execute(text("SELECT id, consultation_id, circuit_id FROM people")).all() == [
                (1, 1, 1)
            ]


@pytest.mark.parametrize(
    ("consultation", "circuit", "refused"),
    [
        pytest.param(1, 1, False, id="a circuit of the person's own consultation is taken"),
        pytest.param(1, 2, True, id="a circuit of another consultation is refused"),
        pytest.param(3, 1, True, id="a consultation that does not exist is refused"),
        pytest.param(1, 9, True, id="a circuit that does not exist is refused"),
    ],
)
def test_the_key_checks_that_a_persons_circuit_is_of_their_consultation(
    database_url: str, consultation: int, circuit: int, refused: bool
) -> None:
    engine = make_engine(database_url)  # the app's: on SQLite it turns the checks on
    # IDs far from anything the shared test database holds; rolled back after.
    with engine.connect() as db, db.begin() as transaction:
        two_consultations(db, base=BASE)
        if refused:
            with pytest.raises(IntegrityError):
                add_person(db, BASE, BASE + consultation, BASE + circuit)
        else:
            add_person(db, BASE, BASE + consultation, BASE + circuit)
        transaction.rollback()
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_upgrade_that_would_break_a_key_is_refused_plainly_and_changes_nothing(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under 0002 a person's circuit could be another consultation's; 0003's key forbids it.
    # PostgreSQL checks the key as it is added; SQLite rebuilds the table with its checks off,
    # so env.py checks every key before the one commit.
    with database_at("0002", kind, tmp_path) as (url, engine):
        with engine.begin() as db:
            two_consultations(db)
            add_person(db, 1, consultation=1, circuit=2)
        monkeypatch.setenv("DATABASE_URL", url)
        result = CliRunner().invoke(main, ["db", "upgrade"])
        assert result.exit_code == 1
        assert "upgrade refused:" in result.output
        assert "nothing was changed" in result.output
        assert "Traceback" not in result.output
        with engine.connect() as db:
            version = db.execute(text("SELECT version_num FROM alembic_version")).scalar()
            people = db.execute(text("SELECT id, consultation_id, circuit_id FROM people")).all()
            others = other_connections(db)
        assert (version, people, people_keys(engine)) == ("0002", [(1, 1, 2)], ONE_EACH)
        assert others == 0  # the refused upgrade closed its own connection


def other_connections(db: Connection) -> int:
    """Connections to this database other than `db` (always 0 on SQLite: a file has none)."""
    if db.dialect.name != "postgresql":
        return 0
    found = db.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    )
    return int(found.scalar_one())
