"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Result, any_, bindparam, func, inspect, select, text, update
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


def insert_rows(
    session: Session,
    entity: Any,
    rows: list[dict[str, Any]],
    returning: tuple[Any, ...] = (),
    ignore_conflicts: bool = False,
) -> Result[*tuple[Any, ...]]:
    """Many rows of an ORM class in one statement whose text never changes; RETURNING optional.

    Every row has the same keys, the class's attribute names; a column left out takes its
    default, as the ORM would give it. On PostgreSQL the statement is
    `INSERT … SELECT * FROM unnest(:a, :b, …)`, one array per column. A multi-row VALUES list is
    new text for every batch size, with one placeholder per value: the driver rewrote a 150-row
    one in 3.6 ms, and the server parsed and planned each afresh. The fixed text is rewritten
    once, prepared once and planned once. Rows go in the order given. On SQLite it is an
    executemany.
    """
    if not rows:
        raise ValueError("insert_rows needs at least one row")
    if any(row.keys() != rows[0].keys() for row in rows):
        raise ValueError("every row given to insert_rows must have the same keys")
    mapper = inspect(entity)
    defaults = _defaults(mapper, rows[0])
    columns = {key: mapper.columns[key] for key in [*rows[0], *defaults]}
    statement: Any
    values: Any  # PostgreSQL: one list per column; SQLite: one dict per row
    if session.get_bind().dialect.name == "postgresql":
        statement, values = _as_arrays(mapper.local_table, columns, rows, defaults)
    else:
        statement = sqlite.insert(mapper.local_table)
        values = [
            {c.name: _value(row, key, defaults) for key, c in columns.items()} for row in rows
        ]
    if ignore_conflicts:
        statement = statement.on_conflict_do_nothing()
    if returning:
        statement = statement.returning(*returning)
    return session.execute(statement, values)


def _as_arrays(
    table: Any, columns: dict[str, Any], rows: list[dict[str, Any]], defaults: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """`INSERT … SELECT * FROM unnest(:column_0, …)` and its parameters: a list per column."""
    names = [f"column_{i}" for i in range(len(columns))]
    arrays = [
        bindparam(name, type_=postgresql.ARRAY(column.type))
        for name, column in zip(names, columns.values(), strict=True)
    ]
    every = select(text("*")).select_from(func.unnest(*arrays))
    values = {
        name: _column_values(rows, key, defaults) for name, key in zip(names, columns, strict=True)
    }
    return postgresql.insert(table).from_select(list(columns.values()), every), values


def _defaults(mapper: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The default of each column the rows leave out and that has one: one value for them all."""
    defaults = {}
    for key, column in mapper.columns.items():
        if key in row or column.default is None:
            continue
        default = column.default
        defaults[key] = default.arg(None) if default.is_callable else default.arg
    return defaults


def _column_values(rows: list[dict[str, Any]], key: str, defaults: dict[str, Any]) -> list[Any]:
    return [_value(row, key, defaults) for row in rows]


def _value(row: dict[str, Any], key: str, defaults: dict[str, Any]) -> Any:
    return defaults[key] if key in defaults else row[key]


def update_rows(
    session: Session,
    entity: Any,
    rows: list[dict[str, Any]],
    same: dict[str, Any] | None = None,
    where: tuple[ColumnElement[bool], ...] = (),
) -> None:
    """Many rows of an ORM class, each found by its primary key, changed in one statement.

    Each row holds the key's attribute and the attributes it sets, every row the same ones;
    `same` are set to one value on every row; `where` are further conditions a row must meet to
    change (`OutboundRow.status == "sending"`). On PostgreSQL it is `UPDATE … FROM unnest(:a, …)`,
    one array per attribute: one text for every batch size, where an executemany is a statement
    per row for the server to run. On SQLite it is that executemany.
    """
    if not rows:
        raise ValueError("update_rows needs at least one row")
    if any(row.keys() != rows[0].keys() for row in rows):
        raise ValueError("every row given to update_rows must have the same keys")
    mapper = inspect(entity)
    table = mapper.local_table
    (key,) = (k for k, c in mapper.columns.items() if c.primary_key)
    columns = {name: mapper.columns[name] for name in [key, *(k for k in rows[0] if k != key)]}
    names = [f"column_{i}" for i in range(len(columns))]
    values: Any
    if session.get_bind().dialect.name == "postgresql":
        arrays = [
            bindparam(name, type_=postgresql.ARRAY(column.type))
            for name, column in zip(names, columns.values(), strict=True)
        ]
        given = func.unnest(*arrays).table_valued(*names).render_derived(name="given")
        found, changes = given.c[names[0]], {c.name: given.c[n] for n, c in _set(names, columns)}
        values = {name: [row[k] for row in rows] for name, k in zip(names, columns, strict=True)}
    else:
        found = bindparam(names[0])
        changes = {c.name: bindparam(n) for n, c in _set(names, columns)}
        values = [{n: row[k] for n, k in zip(names, columns, strict=True)} for row in rows]
    fixed = {mapper.columns[k].name: v for k, v in (same or {}).items()}
    statement = update(table).where(table.c[columns[key].name] == found, *where)
    session.execute(statement.values({**changes, **fixed}), values)


def _set(names: list[str], columns: dict[str, Any]) -> list[tuple[str, Any]]:
    """(parameter name, column) of every column a row sets: all but the key, which comes first."""
    return list(zip(names[1:], list(columns.values())[1:], strict=True))
