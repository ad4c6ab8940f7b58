"""Migration 0004: phones keep their rows; one key (consultation, phone, person) replaces id and
two indexes."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from gateway import migrate
from tests.support.old_schemas import (
    add_person,
    add_phone,
    database_at,
    phone_rows,
    two_consultations,
)

KEY = ["consultation_id", "phone_digest", "person_id"]
PAIR = ["person_id", "phone_digest"]


def phones_shape(engine: Engine) -> tuple[bool, list[str], list[list[str]], list[str]]:
    """Whether phones has an id, its primary key, its unique constraints and its indexes."""
    found = inspect(engine)
    return (
        "id" in [column["name"] for column in found.get_columns("phones")],
        found.get_pk_constraint("phones")["constrained_columns"],
        [unique["column_names"] for unique in found.get_unique_constraints("phones")],
        sorted(  # an index that only backs a constraint is that constraint's
            str(index["name"])
            for index in found.get_indexes("phones")
            if "duplicates_constraint" not in index
        ),
    )


def a_person_and_two_phones(db: Connection) -> None:
    two_consultations(db)
    add_person(db, 1, consultation=1, circuit=1)
    add_person(db, 2, consultation=1, circuit=1)
    add_phone(db, 1, 1, "p")
    add_phone(db, 1, 1, "q")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_at_0003_keeps_its_phones_through_0004_and_back(
    kind: str, tmp_path: Path
) -> None:
    with database_at("0003", kind, tmp_path) as (url, engine):
        with engine.begin() as db:
            a_person_and_two_phones(db)

        migrate.upgrade(url)
        assert phones_shape(engine) == (False, KEY, [], [])
        with engine.begin() as db:
            assert phone_rows(db) == [(1, "p"), (1, "q")]
            add_phone(db, 2, 1, "p")  # one family phone, two people: still allowed

        command.downgrade(migrate.alembic_config(url), "0003")
        assert phones_shape(engine) == (True, ["id"], [PAIR], ["ix_phones_lookup"])
        with engine.begin() as db:
            ids = db.execute(text("SELECT id FROM phones")).scalars().all()
            assert sorted(ids) == [1, 2, 3]  # the rows there were numbered as the column came
            add_phone(db, 2, 1, "q")  # and a new row still gets its number by itself
            assert phone_rows(db) == [(1, "p"), (1, "q"), (2, "p"), (2, "q")]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize(
    "revision",
    [
        pytest.param("head", id="keyed by the pair, a phone is not written twice for a person"),
        pytest.param("0003", id="before it, the unique pair refused the same"),
    ],
)
def test_a_persons_phone_is_stored_once(kind: str, revision: str, tmp_path: Path) -> None:
    with database_at(revision, kind, tmp_path) as (url, engine):
        with engine.begin() as db:
            a_person_and_two_phones(db)
        with engine.begin() as db, pytest.raises(IntegrityError):
            add_phone(db, 1, 1, "p")
        with engine.connect() as db:
            assert phone_rows(db) == [(1, "p"), (1, "q")]
