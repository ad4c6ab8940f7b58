"""Schema migrations with Alembic, driven from our own settings rather than an ini file."""

from __future__ import annotations

from alembic import command
from alembic.config import Config


class UpgradeRefused(Exception):  # noqa: N818 - as ImportRefused and TransitionRefused
    """The upgrade would leave rows the new schema forbids; it was rolled back whole."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", "gateway:migrations")
    # '%' is ConfigParser's interpolation character; a password may hold one.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)
