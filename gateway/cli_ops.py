"""`consulta operators`: the people who may sign in to the console, and their roles."""

from __future__ import annotations

import getpass
import sys

import click
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gateway.cli_database import database


@click.group()
def operators() -> None:
    """People who may sign in to the operator console at /ops."""


@operators.command("add")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator", "admin"]),
    required=True,
    help="viewer: watch; operator: also retry and discard jobs; admin: also run the lifecycle.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
def add(username: str, role: str, password_stdin: bool) -> None:
    """Add USERNAME with ROLE; the password is asked twice, never taken as an argument."""
    from gateway.ops.auth import MIN_PASSWORD_LENGTH, hash_password

    password = _read_password(password_stdin)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise click.ClickException(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    try:
        _insert(username, role, hash_password(password))
    except IntegrityError as error:
        raise click.ClickException(f"there is already an operator called {username!r}") from error
    click.echo(f"operator {username} added as {role}")


@operators.command("list")
def list_operators() -> None:
    """Usernames and roles (never the password hashes)."""
    from gateway.models import OperatorRow

    with database() as sessions, sessions() as session:
        rows = session.execute(
            select(OperatorRow.username, OperatorRow.role).order_by(OperatorRow.username)
        ).all()
    for username, role in rows:
        click.echo(f"{username}\t{role}")


def _read_password(from_stdin: bool) -> str:
    # A password on the command line would sit in the shell history and in `ps` output.
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def _insert(username: str, role: str, password_hash: str) -> None:
    from gateway.db import transaction
    from gateway.models import OperatorActionRow, OperatorRow

    actor = f"cli:{getpass.getuser()}"
    with database() as sessions, transaction(sessions) as session:
        session.add(OperatorRow(username=username, password_hash=password_hash, role=role))
        session.add(
            OperatorActionRow(actor=actor, action="operator.add", detail=f"{username} {role}")
        )


COMMANDS = [operators]
