"""Migration 0002: phones keep their rows and lose only the foreign key on consultation_id."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text

from gateway import migrate
from workers.runtime import Runtime


def foreign_keys(url_or_engine) -> list[tuple[list[str], str]]:  # type: ignore[no-untyped-def]
    engine = create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    found = [
        (fk["constrained_columns"], fk["referred_table"])
        for fk in inspect(engine).get_foreign_keys("phones")
    ]
    return sorted(found)


def test_a_migrated_database_checks_a_phone_by_its_person_only(rt: Runtime) -> None:
    assert foreign_keys(rt.engine) == [(["person_id"], "people")]


def test_a_database_at_0001_keeps_its_phones_through_0002_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0001")
    engine = create_engine(url)
    with engine.begin() as db:
        db.execute(
            text(
                "INSERT INTO consultations (id, slug, name, opens_at, closes_at, timezone,"
                " min_age, winners, revote, require_id, status, tie_break, quorum, created_at)"
                " VALUES (1, 'c', 'C', '2026-01-01', '2026-01-02', 'UTC', 15, 1, 'first', 0,"
                " 'draft', 'lot', 0, '2026-01-01')"
            )
        )
        db.execute(
            text("INSERT INTO circuits (id, consultation_id, code, name) VALUES (1, 1, 'C1', 'C1')")
        )
        db.execute(
            text(
                "INSERT INTO people (id, consultation_id, national_id_digest, national_id_sealed,"
                " circuit_id, birth_date) VALUES (1, 1, 'd', 's', 1, :born)"
            ),
            {"born": date(1990, 1, 1)},
        )
        db.execute(
            text("INSERT INTO phones (consultation_id, person_id, phone_digest) VALUES (1, 1, 'p')")
        )
    migrate.upgrade(url)
    assert foreign_keys(url) == [(["person_id"], "people")]
    command.downgrade(migrate.alembic_config(url), "0001")
    assert foreign_keys(url) == [(["consultation_id"], "consultations"), (["person_id"], "people")]
    with create_engine(url).connect() as db:
        assert db.execute(
            text("SELECT consultation_id, person_id, phone_digest FROM phones")
        ).all() == [(1, 1, "p")]
