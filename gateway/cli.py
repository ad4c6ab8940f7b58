"""The `consulta` command: run the gateway, manage consultations, and try it out."""

from __future__ import annotations

import click

from gateway.settings import Settings


@click.group()
def main() -> None:
    """Consulta: an SMS and USSD voting gateway for popular consultations."""


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations up to REVISION."""
    from gateway.migrate import upgrade

    settings = Settings.from_env()
    _ensure_sqlite_folder(settings)
    upgrade(settings.database_url, revision)
    click.echo(f"database at {revision}")


def _ensure_sqlite_folder(settings: Settings) -> None:
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _register_commands() -> None:
    """One explicit table of command modules; none of them registers itself."""
    from gateway import cli_audit, cli_data, cli_ops, cli_paper, cli_reconcile, cli_run

    modules = (cli_run, cli_data, cli_paper, cli_ops, cli_audit, cli_reconcile)
    for command in [c for module in modules for c in module.COMMANDS]:
        main.add_command(command)


_register_commands()
