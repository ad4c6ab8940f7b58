"""Migration 0005: identifiers compared as bytes on PostgreSQL, rows and look-ups unchanged."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, create_engine, text

from gateway import migrate
from tests.support.old_schemas import (
    add_person,
    add_phone,
    database_at,
    phone_rows,
    two_consultations,
)

MIGRATION = importlib.import_module("gateway.migrations.versions.0005_identifiers_in_byte_order")
COLUMNS = sorted(
    (table, column) for table, columns in MIGRATION.IDENTIFIERS.items() for column, _ in columns
)


def collations(engine: Engine) -> dict[tuple[str, str], str | None]:
    """Each identifier column's own collation (None: the database's default)."""
    query = text(
        "SELECT table_name, column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = current_schema()"
    )
    with engine.connect() as db:
        found = {(table, column): collation for table, column, collation in db.execute(query)}
    return {key: found[key] for key in COLUMNS}


def a_person_with_two_phones(db: Connection) -> None:
    two_consultations(db)
    add_person(db, 1, consultation=1, circuit=1)
    add_phone(db, 1, 1, "b0")
    add_phone(db, 1, 1, "a1")


def test_on_postgresql_every_identifier_is_compared_as_bytes_after_0005_and_not_before(
    tmp_path: Path,
) -> None:
    with database_at("0004", "postgresql", tmp_path) as (url, engine):
        with engine.begin() as db:
            a_person_with_two_phones(db)
        assert set(collations(engine).values()) == {None}

        migrate.upgrade(url)
        assert collations(engine) == dict.fromkeys(COLUMNS, "C")
        with engine.begin() as db:
            assert phone_rows(db) == [(1, "a1"), (1, "b0")]
            look_up = "SELECT person_id FROM phones WHERE consultation_id = 1 AND phone_digest = :d"
            found = db.execute(text(look_up), {"d": "b0"}).scalars()
            assert list(found) == [1]

        command.downgrade(migrate.alembic_config(url), "0004")
        assert set(collations(engine).values()) == {None}
        with engine.begin() as db:
            assert phone_rows(db) == [(1, "a1"), (1, "b0")]


def test_on_sqlite_0005_changes_nothing_and_keeps_the_rows(tmp_path: Path) -> None:
    with database_at("0004", "sqlite", tmp_path) as (url, engine):
        with engine.begin() as db:
            a_person_with_two_phones(db)
            before = db.execute(text("SELECT sql FROM sqlite_master ORDER BY name")).all()
        migrate.upgrade(url)
        with engine.begin() as db:
            assert db.execute(text("SELECT sql FROM sqlite_master ORDER BY name")).all() == before
            assert phone_rows(db) == [(1, "a1"), (1, "b0")]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_batch_of_phones_compared_in_the_default_collation_can_still_use_the_key(
    database_url: str,
) -> None:
    """The bulk look-ups cast their values to VARCHAR(32)[], of the database's collation: the
    comparison must be made in the column's "C" for its key to serve it."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as db:
            db.execute(text("SET enable_seqscan = off"))  # the question is whether it can
            plan = db.execute(
                text(
                    "EXPLAIN SELECT person_id FROM phones WHERE consultation_id = 1"
                    " AND phone_digest = ANY(CAST(:d AS VARCHAR(32)[]))"
                ),
                {"d": ["a1", "b0"]},
            ).scalars()
            assert "phones_pkey" in "\n".join(plan)
    finally:
        engine.dispose()
