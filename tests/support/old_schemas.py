"""Databases at an older migration, and rows written to them in SQL of that schema's shape.

The migration tests write with plain SQL, not the models: a model has the newest shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text

from gateway import migrate
from tests.support import services


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with services.postgres_server() as server, services.scratch_database(server) as url:
        yield url


@contextmanager
def database_at(revision: str, kind: str, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """A fresh database migrated to `revision`: its URL and an engine, disposed of afterwards."""
    with empty_database(kind, tmp_path) as url:
        migrate.upgrade(url, revision)
        engine = create_engine(url)
        try:
            yield url, engine
        finally:
            engine.dispose()


def two_consultations(db: Connection, base: int = 0) -> None:
    """Consultations base+1 and base+2, each with a circuit of the same ID."""
    for n in (base + 1, base + 2):
        db.execute(
            text(
                "INSERT INTO consultations (id, slug, name, opens_at, closes_at, timezone,"
                " min_age, winners, revote, require_id, status, tie_break, quorum, created_at)"
                " VALUES (:n, :slug, 'C', '2026-01-01', '2026-01-02', 'UTC', 15, 1, 'first',"
                " false, 'draft', 'lot', 0, '2026-01-01')"
            ),
            {"n": n, "slug": f"c{n}"},
        )
        circuit = "INSERT INTO circuits (id, consultation_id, code, name) VALUES (:n, :n, 'C', 'C')"
        db.execute(text(circuit), {"n": n})


def add_person(db: Connection, person: int, consultation: int, circuit: int) -> None:
    db.execute(
        text(
            "INSERT INTO people (id, consultation_id, national_id_digest, national_id_sealed,"
            " circuit_id, birth_date) VALUES (:id, :consultation, :digest, 's', :circuit, :born)"
        ),
        {
            "id": person, "consultation": consultation, "digest": f"d{person}",
            "circuit": circuit, "born": date(1990, 1, 1),
        },
    )  # fmt: skip


def add_phone(db: Connection, person: int, consultation: int, digest: str) -> None:
    db.execute(
        text(
            "INSERT INTO phones (consultation_id, person_id, phone_digest)"
            " VALUES (:consultation, :person, :digest)"
        ),
        {"consultation": consultation, "person": person, "digest": digest},
    )


def phone_rows(db: Connection) -> list[tuple[int, str]]:
    """Every phone as (person, digest), in that order."""
    found = db.execute(text("SELECT person_id, phone_digest FROM phones ORDER BY 1, 2")).all()
    return [(person, digest) for person, digest in found]
