"""Operator commands for a consultation: create it, load its files, open, close and certify it,
and publish its results.

Each command builds its engine from the environment when it runs and disposes it before it
returns; importing this module builds nothing. Mistakes an operator can fix are reported as
one clear message with exit code 1, never as a traceback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from tqdm import tqdm

from gateway.cli_database import database
from gateway.db import transaction
from gateway.imports import import_ballots, import_registry
from gateway.lifecycle import cli_actor, fix_lot_seed, record, transition
from gateway.models import CircuitRow, ConsultationRow, PersonRow, VoteRow
from gateway.results import ResultsReport, as_csv, as_json, as_table, results
from gateway.settings import Settings

SLUG = re.compile(r"^[a-z0-9-]{1,64}$")
RENDERERS: dict[str, Callable[[ResultsReport], str]] = {
    "table": as_table,
    "json": as_json,
    "csv": as_csv,
}


# --- consultation create | list | open | close | certify -----------------------------------


@click.group("consultation")
def consultation() -> None:
    """Create, list, open, close and certify consultations."""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.ClickException(f"--timezone {name!r} is not a known time zone") from None


def _moment(text: str, zone: ZoneInfo, label: str) -> datetime:
    """An ISO date and time; one without an offset is read in the consultation's zone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        example = "2026-03-08T07:00"
        raise click.ClickException(f"{label} {text!r} is not ISO, such as {example}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _check_consultation(row: ConsultationRow) -> None:
    if not SLUG.match(row.slug):
        raise click.ClickException("SLUG must be 1 to 64 of a-z, 0-9 and '-'")
    if not row.name.strip() or len(row.name) > 200:  # 200: the column's width
        raise click.ClickException("--name must be 1 to 200 characters")
    if row.closes_at <= row.opens_at:
        raise click.ClickException("--closes must be later than --opens")
    if row.max_age is not None and row.max_age < row.min_age:
        raise click.ClickException("--max-age must not be below --min-age")


def _rules(row: ConsultationRow) -> str:
    """The rules as the record keeps them: what was published before the first vote."""
    seed = f" seed {row.lot_seed}" if row.lot_seed else ""
    return f"winners {row.winners}; tie-break {row.tie_break}{seed}; quorum {row.quorum:g}"


def _insert_consultation(sessions: sessionmaker[Session], row: ConsultationRow) -> None:
    taken = f"a consultation {row.slug!r} already exists: nothing was written"
    try:
        with transaction(sessions) as session:
            if session.scalar(select(ConsultationRow.id).where(ConsultationRow.slug == row.slug)):
                raise click.ClickException(taken)
            session.add(row)
            session.flush()  # for its id
            record(session, row.id, cli_actor(), "create", _rules(row))
    except IntegrityError:  # another operator created the same slug a moment ago
        raise click.ClickException(taken) from None


@consultation.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The name voters and operators see.")
@click.option("--opens", required=True, help="ISO date and time; no offset means --timezone.")
@click.option("--closes", required=True, help="ISO date and time; no offset means --timezone.")
@click.option("--timezone", "zone_name", default="America/Caracas", show_default=True)
@click.option("--min-age", type=click.IntRange(min=0), default=15, show_default=True)
@click.option("--max-age", type=click.IntRange(min=0), default=None)
@click.option("--winners", type=click.IntRange(1, 2), default=1, show_default=True)
@click.option("--revote", type=click.Choice(["first", "last"]), default="first", show_default=True)
@click.option("--require-id", is_flag=True, help="Every vote must carry the voter's ID.")
@click.option(
    "--tie-break",
    type=click.Choice(["earliest", "lot", "runoff"]),
    default="earliest",
    show_default=True,
    help="How a tie for a winning place is settled; published with the results.",
)
@click.option(
    "--quorum",
    type=click.FloatRange(0, 1),
    default=0.10,
    show_default=True,
    help="The minimum share of a circuit's eligible people who must vote for it to award.",
)
def create_consultation(  # noqa: PLR0913 - one parameter per command-line option
    slug: str,
    name: str,
    opens: str,
    closes: str,
    zone_name: str,
    min_age: int,
    max_age: int | None,
    winners: int,
    revote: str,
    require_id: bool,
    tie_break: str,
    quorum: float,
) -> None:
    """Create the consultation SLUG, as a draft, with its window, age band and rules.

    Voting starts only once it is opened (`consulta consultation open SLUG`). A draw by lot
    gets its seed now, so that it is published before anyone votes.
    """
    zone = _zone(zone_name)
    row = ConsultationRow(
        slug=slug,
        name=name.strip(),
        opens_at=_moment(opens, zone, "--opens"),
        closes_at=_moment(closes, zone, "--closes"),
        timezone=zone_name,
        min_age=min_age,
        max_age=max_age,
        winners=winners,
        revote=revote,
        require_id=require_id,
        status="draft",
        tie_break=tie_break,
        quorum=quorum,
    )
    _check_consultation(row)
    fix_lot_seed(row)
    with database(Settings.from_env()) as sessions:
        _insert_consultation(sessions, row)
    click.echo(f"created {slug} as a draft: {_window(row)}")
    click.echo(f"rules: {_rules(row)}")


def _window(row: ConsultationRow) -> str:
    zone = ZoneInfo(row.timezone)
    opens, closes = row.opens_at.astimezone(zone), row.closes_at.astimezone(zone)
    return f"{opens:%Y-%m-%d %H:%M} to {closes:%Y-%m-%d %H:%M} {row.timezone}"


def _counts(
    session: Session, column: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> dict[int, int]:
    """consultation id -> rows, for a table whose consultation_id is `column`."""
    query = select(column, func.count()).where(*where).group_by(column)
    return dict(session.execute(query).all())


def _aligned(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


@consultation.command("list")
def list_consultations() -> None:
    """Every consultation: its window and how many circuits, people and votes it holds."""
    with database(Settings.from_env()) as sessions, sessions() as session:
        found = session.scalars(select(ConsultationRow).order_by(ConsultationRow.opens_at)).all()
        circuits = _counts(session, CircuitRow.consultation_id)
        people = _counts(session, PersonRow.consultation_id)
        votes = _counts(session, VoteRow.consultation_id, VoteRow.replaced_at.is_(None))
    if not found:
        click.echo("no consultations yet")
        return
    header = ("slug", "name", "status", "window", "circuits", "people", "votes")
    rows: list[tuple[str, ...]] = [header]
    rows += [
        (
            c.slug,
            c.name,
            c.status,
            _window(c),
            *(str(n.get(c.id, 0)) for n in (circuits, people, votes)),
        )
        for c in found
    ]
    click.echo(_aligned(rows))


def _move(slug: str, to_status: str) -> None:
    with database(Settings.from_env()) as sessions:
        row = transition(sessions, slug, to_status, cli_actor())
    click.echo(f"{row.slug} is now {row.status}")


@consultation.command("open")
@click.argument("slug")
def open_consultation(slug: str) -> None:
    """Open the draft SLUG: votes count from now, inside its window."""
    _move(slug, "open")


@consultation.command("close")
@click.argument("slug")
def close_consultation(slug: str) -> None:
    """Close SLUG: later votes get the closed reply. It is never reopened."""
    _move(slug, "closed")


@consultation.command("certify")
@click.argument("slug")
def certify_consultation(slug: str) -> None:
    """Certify the closed SLUG's results. This is final."""
    _move(slug, "certified")


# --- ballots import, registry import, results ----------------------------------------------


@click.group("ballots")
def ballots() -> None:
    """The ballots of a consultation: circuits and their numbered options."""


@ballots.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_ballots_command(slug: str, file: Path) -> None:
    """Load FILE (circuit_code,circuit_name,option,title) as the ballots of SLUG, once."""
    with database(Settings.from_env()) as sessions:
        report = import_ballots(sessions, slug, file)
    click.echo(f"imported {report.circuits} circuits and {report.options} options")


@click.group("registry")
def registry() -> None:
    """Who may vote in a consultation: national ID, circuit, birth date and phones."""


def _data_rows(path: Path) -> int:
    """About how many rows follow the header: a cheap count of line ends, for the bar only."""
    with path.open("rb") as handle:
        ends = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return max(ends - 1, 0)


@registry.command("import")
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_registry_command(slug: str, file: Path) -> None:
    """Add FILE (national_id,circuit_code,birth_date,phones[,language]) to SLUG's registry."""
    settings = Settings.from_env()
    # Every row is checked, then written: the bar counts both passes.
    bar = tqdm(total=2 * _data_rows(file), unit="row", desc="check, then write", file=sys.stderr)
    with database(settings) as sessions, bar:
        report = import_registry(
            sessions, slug, file, settings.default_region, lambda done: bar.update(done - bar.n)
        )
    click.echo(f"imported {report.people} people and {report.phones} phones")


@click.command("results")
@click.argument("slug")
@click.option(
    "--format", "style", type=click.Choice(list(RENDERERS)), default="table", show_default=True
)
def results_command(slug: str, style: str) -> None:
    """Print the results of SLUG per circuit: votes, turnout, winners, ties and quorum flags."""
    with database(Settings.from_env()) as sessions:
        report = results(sessions, slug)
    click.echo(RENDERERS[style](report).rstrip("\n"))


COMMANDS: list[click.Command] = [consultation, ballots, registry, results_command]
