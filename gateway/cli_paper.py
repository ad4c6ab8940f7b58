"""Operator commands for the paper bridge: export the poll book, import actas, combined results.

Like every command, each builds its engine when it runs and disposes it before it returns;
mistakes an operator can fix are one clear message with exit code 1, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from gateway.cli_database import database
from gateway.paper import pollbook, write_pollbook
from gateway.paper_import import import_actas
from gateway.paper_results import CombinedReport, as_csv, as_json, as_table, combined_results

RENDERERS: dict[str, Callable[[CombinedReport], str]] = {
    "table": as_table,
    "json": as_json,
    "csv": as_csv,
}
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("pollbook")
def pollbook_group() -> None:
    """The digital has-voted list of a circuit, for the paper poll book."""


@pollbook_group.command("export")
@click.argument("slug")
@click.option("--circuit", "code", required=True, help="The circuit's code.")
@click.option(
    "--out",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The folder to write pollbook-SLUG-CODE.csv and .html into.",
)
def export_pollbook(slug: str, code: str, folder: Path) -> None:
    """Write who in circuit CODE of SLUG voted by SMS or USSD: a CSV and a page to print."""
    with database() as sessions:
        book = pollbook(sessions, slug, code)
    csv_path, html_path = write_pollbook(book, folder)
    click.echo(f"{len(book.entries)} digital voters in circuit {code}: {csv_path}, {html_path}")


@click.group("actas")
def actas_group() -> None:
    """Paper tallies per voting table and who voted on paper; combined results."""


@actas_group.command("import")
@click.argument("slug")
@click.argument("actas", type=_FILE)
@click.option(
    "--voters", type=_FILE, required=True, help="national_id,circuit_code,table: who signed."
)
def import_actas_command(slug: str, actas: Path, voters: Path) -> None:
    """Load ACTAS (circuit_code,table,option,votes) and the paper voters of SLUG, all or none."""
    with database() as sessions:
        report = import_actas(sessions, slug, actas, voters)
    click.echo(
        f"imported {report.actas} acta rows from {report.tables} tables "
        f"({report.votes} votes) and {report.voters} paper voters"
    )


@actas_group.command("results")
@click.argument("slug")
@click.option(
    "--format", "style", type=click.Choice(list(RENDERERS)), default="table", show_default=True
)
def combined_results_command(slug: str, style: str) -> None:
    """Print SLUG's results per circuit: digital, paper and total per option, and turnout."""
    with database() as sessions:
        report = combined_results(sessions, slug)
    click.echo(RENDERERS[style](report).rstrip("\n"))


COMMANDS: list[click.Command] = [pollbook_group, actas_group]
