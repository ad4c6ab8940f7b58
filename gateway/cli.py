"""The `consulta` command: run the gateway, manage consultations, and try it out."""

from __future__ import annotations

import importlib

import click

from gateway.settings import Settings, SettingsError

# Each command's module, imported only when that command runs or help lists them all: so that
# `consulta results` does not pay for the web app's, the audit's and Twilio's imports (about
# 0.5 s of start-up, a quarter of the results target; docs/performance.md). One explicit table;
# no module registers itself. tests/unit/test_cli_table.py holds it to the modules' own.
COMMAND_MODULES = {
    "web": "gateway.cli_run", "worker": "gateway.cli_run", "demo": "gateway.cli_run",
    "simulate": "gateway.cli_run",
    "consultation": "gateway.cli_data", "ballots": "gateway.cli_data",
    "registry": "gateway.cli_data", "results": "gateway.cli_data",
    "pollbook": "gateway.cli_paper", "actas": "gateway.cli_paper",
    "operators": "gateway.cli_ops", "audit": "gateway.cli_audit",
    "reconcile": "gateway.cli_reconcile",
}  # fmt: skip


class LazyGroup(click.Group):
    """A group whose commands in COMMAND_MODULES are imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMAND_MODULES:
            return found
        module = importlib.import_module(COMMAND_MODULES[cmd_name])
        by_name: dict[str | None, click.Command] = {c.name: c for c in module.COMMANDS}
        return by_name[cmd_name]

    def invoke(self, ctx: click.Context) -> object:
        """A setting that cannot be used is named in one line, not a traceback."""
        try:
            return super().invoke(ctx)
        except SettingsError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=LazyGroup)
def main() -> None:
    """Consulta: an SMS and USSD voting gateway for popular consultations."""


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations up to REVISION."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    from gateway.migrate import UpgradeRefused, upgrade

    settings = Settings.from_env()
    try:
        _ensure_sqlite_folder(settings)
    except OSError as failed:
        raise click.ClickException(f"cannot create the database's folder: {failed}") from None
    try:
        upgrade(settings.database_url, revision)
    except UpgradeRefused as refused:
        raise click.ClickException(f"upgrade refused: {refused}") from None
    except IntegrityError as refused:  # PostgreSQL checks a new key as it is added
        reason = str(refused.orig).splitlines()[0]
        raise click.ClickException(f"upgrade refused: {reason}; nothing was changed") from None
    except OperationalError as failed:  # unreachable, or a file it may not open
        reason = str(failed.orig).splitlines()[0]
        raise click.ClickException(
            f"the database refused: {reason} (is DATABASE_URL right?)"
        ) from None
    click.echo(f"database at {revision}")


def _ensure_sqlite_folder(settings: Settings) -> None:
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
