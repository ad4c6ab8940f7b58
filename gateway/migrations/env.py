"""Alembic's entry point. The URL comes from the Config that `consulta db upgrade` builds."""

from typing import Any

from alembic import context
from sqlalchemy import Connection

from gateway.db import make_engine
from gateway.migrate import UpgradeRefused
from gateway.models import Base

config = context.config


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        engine.dispose()  # a refused upgrade too: its pooled connection must not outlive it


def _migrate(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration copies a table, drops the original and renames the copy; other
        # tables' keys refer to it meanwhile. SQLite's own procedure for such changes turns
        # the checks off (outside a transaction: inside one the pragma does nothing) and
        # checks every key before committing (sqlite.org/lang_altertable.html).
        # (The driver's own connection: through SQLAlchemy it would come after a BEGIN.)
        driver: Any = connection.connection.driver_connection
        driver.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        # Alembic takes SQLite's DDL for non-transactional and commits each migration as it
        # goes: a refused key check would come after the commit. Our engine begins every
        # transaction itself (BEGIN IMMEDIATE, gateway/db.py), so the whole upgrade is one.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            _no_broken_keys(connection)


def _no_broken_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        table, row, parent, _ = broken[0]
        raise UpgradeRefused(
            f"{len(broken)} row(s) would refer to rows that do not exist or do not match, such"
            f" as {table} row {row} to {parent}; nothing was changed"
        )


run_migrations_online()
