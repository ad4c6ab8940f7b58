"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(session: Session, table: Any) -> Any:
    """`INSERT … ON CONFLICT DO NOTHING` for whichever database the session talks to.

    The database's unique constraint decides who was first; we never check, then insert.
    """
    return insert_ignoring_conflicts_on(session.get_bind().dialect.name, table)


def insert_ignoring_conflicts_on(dialect_name: str, table: Any) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def upsert(session: Session, table: Any, values: dict[str, Any], key: str) -> None:
    """`INSERT … ON CONFLICT (key) DO UPDATE`: the last writer wins, with no race to lose."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    changes = {name: statement.excluded[name] for name in values if name != key}
    # The attribute, not its name: the column behind it may be named otherwise (phone_digest).
    conflict = [getattr(table, key)]
    session.execute(statement.on_conflict_do_update(index_elements=conflict, set_=changes))


def among(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)`, written for the database the session talks to.

    On PostgreSQL it is `column = ANY(:array)`: one parameter however many values, so a batch's
    look-ups keep the same text from batch to batch and the driver parses and prepares each once,
    instead of a new statement with hundreds of placeholders every time.
    """
    values = list(values)
    condition: ColumnElement[bool]
    if session.get_bind().dialect.name == "postgresql":
        condition = column == any_(bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    else:
        condition = column.in_(values)
    return condition
