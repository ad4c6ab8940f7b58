"""Small SQL helpers that differ by dialect."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Result,
    Select,
    any_,
    bindparam,
    func,
    inspect,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

# How `by_unique_key` locks the rows it finds: not at all, skipping held rows, or waiting for them.
Lock = Literal["skip", "wait"] | None


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


def by_unique_key(
    session: Session,
    columns: tuple[Any, ...],
    key: Any,
    values: Iterable[Any],
    *fixed: ColumnElement[bool],
    lock: Lock = None,
) -> Select[Any]:
    """The rows whose unique key is one of `values` (with `fixed`, the key's other columns).

    On PostgreSQL it is one index probe per value (`unnest` joined to a `LATERAL … LIMIT 1`),
    whatever the planner believes about the table. `key = ANY(:values)` leaves that choice to
    the statistics, and a table that grows during a vote has none worth the name: the planner,
    sure that few rows matched the fixed part (a table analysed while empty, or a consultation
    it had never seen), scanned every row of the consultation and tested each against the whole
    list. The participations look-up then cost 7 to 24 ms a batch and grew with every vote
    (`bench.intake_cpu`, 5,400 votes), and 19 ms a batch in a minute of the pipeline (run 83);
    by probes, under 0.7 (run 85). `LIMIT 1` is what makes each probe an equality on the unique
    index: it is only right for a unique key.

    With `lock="skip"`, each row found is locked for this transaction, and a row another
    transaction holds is skipped (`FOR UPDATE SKIP LOCKED`): a claim. With `lock="wait"`, each
    row is locked and a held one waited for (`FOR UPDATE`), in key order: the values are probed
    sorted, one after another, so two transactions locking overlapping rows this way take them
    in one order and wait for each other instead of deadlocking.
    """
    if lock not in (None, "skip", "wait"):
        raise ValueError(f"lock is None, 'skip' or 'wait', not {lock!r}")
    # Each key once: probed twice, a row this transaction had already locked would come back
    # twice, and a claim would hand the same reply out twice.
    values = list(dict.fromkeys(values))
    if lock == "wait":
        values.sort()
    skip = lock == "skip"
    if session.get_bind().dialect.name != "postgresql":
        query = select(*columns).where(*fixed, key.in_(values))
        return query.with_for_update(skip_locked=skip) if lock else query
    listed = bindparam(None, values, type_=postgresql.ARRAY(key.type))
    wanted = func.unnest(listed).table_valued("value").render_derived(name="wanted")
    probe = select(*columns).where(*fixed, key == wanted.c.value).limit(1)
    if lock:
        probe = probe.with_for_update(skip_locked=skip)
    one = probe.lateral("one")
    return select(*one.c).select_from(wanted).join(one, true())


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
    _check_rows("insert_rows", rows)
    mapper = inspect(entity)
    defaults = _defaults(mapper, rows[0])
    keys = (*rows[0], *defaults)
    dialect = session.get_bind().dialect.name
    statement = _insert_statement(entity, keys, returning, ignore_conflicts, dialect)
    values: Any  # PostgreSQL: one list per column; SQLite: one dict per row
    if dialect == "postgresql":
        values = {f"column_{i}": _column_values(rows, key, defaults) for i, key in enumerate(keys)}
    else:
        names = [mapper.columns[key].name for key in keys]
        values = [
            {name: _value(row, key, defaults) for name, key in zip(names, keys, strict=True)}
            for row in rows
        ]
    return session.execute(statement, values)


@functools.lru_cache(maxsize=64)
def _insert_statement(
    entity: Any, keys: tuple[str, ...], returning: tuple[Any, ...], ignore: bool, dialect: str
) -> Any:
    """Built once per shape: building it and working out its cache key cost as much as running."""
    mapper = inspect(entity)
    table, columns = mapper.local_table, [mapper.columns[key] for key in keys]
    statement: Any
    if dialect == "postgresql":
        arrays = [_array(f"column_{i}", column) for i, column in enumerate(columns)]
        every = select(text("*")).select_from(func.unnest(*arrays))
        statement = postgresql.insert(table).from_select(columns, every)
    else:
        statement = sqlite.insert(table)
    if ignore:
        statement = statement.on_conflict_do_nothing()
    return statement.returning(*returning) if returning else statement


def update_rows(
    session: Session,
    entity: Any,
    rows: list[dict[str, Any]],
    same: dict[str, Any] | None = None,
    only_if: dict[str, Any] | None = None,
) -> None:
    """Many rows of an ORM class, each found by its primary key, changed in one statement.

    Each row holds the key's attribute and the attributes it sets, every row the same ones;
    `same` are set to one value on every row; a row changes only if its columns hold the values
    of `only_if` (`{"status": "sending"}`). On PostgreSQL it is `UPDATE … FROM unnest(:a, …)`,
    one array per attribute: one text for every batch size, where an executemany is a statement
    per row for the server to run. On SQLite it is that executemany.
    """
    _check_rows("update_rows", rows)
    same, only_if = same or {}, only_if or {}
    mapper = inspect(entity)
    key = mapper.primary_key[0].key
    keys = (key, *(k for k in rows[0] if k != key))
    dialect = session.get_bind().dialect.name
    statement = _update_statement(entity, keys, tuple(same), tuple(only_if), dialect)
    fixed = {f"same_{i}": v for i, v in enumerate(same.values())}
    fixed |= {f"only_if_{i}": v for i, v in enumerate(only_if.values())}
    values: Any
    if dialect == "postgresql":
        values = {f"column_{i}": [row[k] for row in rows] for i, k in enumerate(keys)} | fixed
    else:
        values = [{f"column_{i}": row[k] for i, k in enumerate(keys)} | fixed for row in rows]
    # Core, on the session's connection: no ORM bookkeeping for rows no session object holds.
    connection = session.connection()
    if dialect != "postgresql":
        connection.execute(statement, values)
        return
    # Each row is found by its key. A planner with no statistics yet for a table that grew
    # during the vote (autovacuum analyses a minute or more behind) hashed the batch and read
    # the whole table instead: 5 to 9 ms a statement by 40,000 rows, growing with each one
    # (runs 83 to 85; tests/integration/test_plans.py). A sequential scan is never the plan
    # for a batch of keys, so it is ruled out for this statement alone.
    # If the update fails, the rollback (to the savepoint, if any) undoes the SET LOCAL too.
    connection.execute(_NO_SEQUENTIAL_SCAN)
    connection.execute(statement, values)
    connection.execute(_SEQUENTIAL_SCAN_AGAIN)


_NO_SEQUENTIAL_SCAN = text("SET LOCAL enable_seqscan = off")
_SEQUENTIAL_SCAN_AGAIN = text("SET LOCAL enable_seqscan TO DEFAULT")


@functools.lru_cache(maxsize=64)
def _update_statement(
    entity: Any,
    keys: tuple[str, ...],
    same: tuple[str, ...],
    only_if: tuple[str, ...],
    dialect: str,
) -> Any:
    mapper = inspect(entity)
    table, columns = mapper.local_table, [mapper.columns[key] for key in keys]
    names = [f"column_{i}" for i in range(len(keys))]
    given: Any
    if dialect == "postgresql":
        arrays = [_array(name, column) for name, column in zip(names, columns, strict=True)]
        derived = func.unnest(*arrays).table_valued(*names).render_derived(name="given")
        given = [derived.c[name] for name in names]
    else:
        given = [
            bindparam(name, type_=column.type) for name, column in zip(names, columns, strict=True)
        ]
    changes = {column.name: value for column, value in zip(columns[1:], given[1:], strict=True)}
    for i, k in enumerate(same):
        column = mapper.columns[k]
        changes[column.name] = bindparam(f"same_{i}", type_=column.type)
    conditions = [columns[0] == given[0]] + [
        mapper.columns[k] == bindparam(f"only_if_{i}", type_=mapper.columns[k].type)
        for i, k in enumerate(only_if)
    ]
    return update(table).where(*conditions).values(changes)


def _array(name: str, column: Any) -> Any:
    return bindparam(name, type_=postgresql.ARRAY(column.type))


def _check_rows(caller: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        raise ValueError(f"{caller} needs at least one row")
    if any(row.keys() != rows[0].keys() for row in rows):
        raise ValueError(f"every row given to {caller} must have the same keys")


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
