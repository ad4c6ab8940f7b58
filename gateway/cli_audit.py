"""`consulta audit`: check the tamper-evident vote log, seal it, and export it for others.

`verify` exits with 1 when the chain is broken (naming the first broken entry), when the log's
recount disagrees with the votes table, or when the log says something no writer would.
"""

from __future__ import annotations

from pathlib import Path

import click

from gateway.audit_export import ExportUnreadable, check_export, export
from gateway.audit_store import Check, check_stored, seal
from gateway.cli_database import database

_EXPORT = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("audit")
def audit() -> None:
    """The tamper-evident vote log: every vote and operator action, chained by SHA-256."""


@audit.command("verify")
@click.argument("slug")
@click.option(
    "--file", "export_file", type=_EXPORT, help="Check this export instead; no database needed."
)
def verify_command(slug: str, export_file: Path | None) -> None:
    """Check SLUG's chain end to end and recount its votes per circuit and option."""
    if export_file is not None:
        try:
            check = check_export(export_file, slug)
        except ExportUnreadable as exc:
            raise click.ClickException(f"{export_file}: {exc}") from None
    else:
        with database() as sessions, sessions() as session:
            check = check_stored(session, slug)
    if not _report(check):
        raise SystemExit(1)


@audit.command("seal")
@click.argument("slug")
def seal_command(slug: str) -> None:
    """Print where SLUG's chain ends now, to publish with the results; refused if it is broken."""
    with database() as sessions, sessions() as session:
        check = check_stored(session, slug)
        found = seal(session, slug)
    if check.verdict.broken is not None:
        _report(check)
        raise click.ClickException("a broken chain is not sealed")
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(found.kinds.items()))
    click.echo(f"{found.slug} sealed at seq {found.seq}")
    click.echo(f"digest {found.digest}")
    click.echo(f"entries: {kinds or 'none'}")


@audit.command("export")
@click.argument("slug")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
def export_command(slug: str, out: Path) -> None:
    """Write SLUG's log to OUT as JSON Lines, for `consulta audit verify SLUG --file OUT`.

    It links receipts with options: give it to auditors, do not publish it.
    """
    with database() as sessions, sessions() as session, out.open("w", encoding="utf-8") as file:
        written, head = export(session, slug, file)
    click.echo(f"{written} entries written to {out}; head seq {head.seq}, digest {head.digest}")


def _report(check: Check) -> bool:
    """Print a check as an operator reads it; True when nothing is wrong."""
    verdict, broken = check.verdict, check.verdict.broken
    if broken is not None:
        click.echo(f"{check.slug}: BROKEN at seq {broken.seq}: {broken.why}")
        if broken.seq > 1:
            click.echo(f"the entries before seq {broken.seq} link correctly")
        return False
    last = verdict.last
    click.echo(f"{check.slug}: intact, {verdict.checked} entries")
    click.echo(f"ends at seq {last.seq}, digest {last.digest}")
    click.echo("votes standing per circuit and option, recounted from the log:")
    click.echo("\n".join(["circuit\toption\tvotes", *check.recount.table()]))
    problems = check.recount.anomalies + check.differences()
    for problem in problems:
        click.echo(f"WRONG {problem}")
    if check.stored is not None and not problems:
        click.echo("the votes table agrees with the log")
    return not problems


COMMANDS: list[click.Command] = [audit]
