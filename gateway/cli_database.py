"""The database as every `consulta` command opens it: one place, one set of plain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from gateway import privacy
from gateway.db import make_engine, make_sessionmaker
from gateway.settings import Settings


class OperatorError(Exception):
    """A refusal an operator can act on (a bad file, an unknown name, a refused move)."""


@contextmanager
def database(settings: Settings | None = None) -> Iterator[sessionmaker[Session]]:
    """Sessions on DATABASE_URL; the errors an operator can fix become plain messages."""
    from gateway.imports import ImportRefused
    from gateway.lifecycle import TransitionRefused

    settings = settings or Settings.from_env()
    try:
        privacy.install(settings.secret)
    except privacy.MissingSecretError as exc:
        raise click.ClickException(str(exc)) from None
    engine = make_engine(settings.database_url)
    try:
        yield make_sessionmaker(engine)
    # LookupError: no such consultation or circuit.
    except (ImportRefused, LookupError, TransitionRefused, OperatorError) as exc:
        raise click.ClickException(str(exc)) from None
    except (OperationalError, ProgrammingError) as exc:
        hint = "is DATABASE_URL right, and has `consulta db upgrade` run?"
        raise click.ClickException(f"the database refused: {exc.orig} ({hint})") from None
    finally:
        engine.dispose()
