"""The paper bridge's poll book: who already voted digitally in a circuit, to print and to load.

A voting centre's paper poll book must refuse anyone on this list. The list holds national IDs,
when and by which channel; never a phone number and never a choice.
"""

from __future__ import annotations

import csv
import html
import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.models import CircuitRow, ConsultationRow, ParticipationRow, PersonRow
from gateway.results import UnknownConsultation
from voting.receipts import PAPER_RECEIPT

__all__ = ["PAPER_RECEIPT", "PAPER_CHANNEL"]  # PAPER_RECEIPT lives in the pure core

PAPER_CHANNEL = "paper"
POLLBOOK_HEADER = ("national_id", "voted_at_local", "channel")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class UnknownCircuit(LookupError):  # noqa: N818 - reads like UnknownConsultation beside it
    """The consultation has no circuit with this code."""


@dataclass(frozen=True)
class PollbookEntry:
    """One person who voted digitally: their ID, when (local time) and how."""

    national_id: str
    voted_at: datetime
    channel: str


@dataclass(frozen=True)
class Pollbook:
    """The digital has-voted list of one circuit, sorted by national ID."""

    slug: str
    name: str
    circuit_code: str
    circuit_name: str
    timezone: str
    generated_at: datetime  # in the consultation's zone, like every time on the list
    entries: tuple[PollbookEntry, ...]


def id_order(national_id: str) -> tuple[str, int]:
    """V before E as letters sort, then by number: V9999999 comes before V10000000."""
    return national_id[0], int(national_id[1:])


def find_circuit(session: Session, slug: str, code: str) -> tuple[ConsultationRow, CircuitRow]:
    """The consultation `slug` and its circuit `code`; a LookupError names what is missing."""
    consultation = session.scalar(select(ConsultationRow).where(ConsultationRow.slug == slug))
    if consultation is None:
        raise UnknownConsultation(f"there is no consultation {slug!r}")
    circuit = session.scalar(
        select(CircuitRow).where(
            CircuitRow.consultation_id == consultation.id, CircuitRow.code == code
        )
    )
    if circuit is None:
        raise UnknownCircuit(f"consultation {slug!r} has no circuit {code!r}")
    return consultation, circuit


def _digital_voters(
    session: Session, consultation_id: int, circuit_id: int
) -> list[tuple[str, datetime, str]]:
    """(national ID, voted at, channel) of everyone in the circuit who voted digitally."""
    # Every channel but paper, so that a digital channel added later is listed too: leaving
    # someone off this list is what would let them vote twice.
    rows = session.execute(
        select(PersonRow.national_id_clear, ParticipationRow.voted_at, ParticipationRow.channel)
        .join(PersonRow, PersonRow.id == ParticipationRow.person_id)
        .where(
            ParticipationRow.consultation_id == consultation_id,
            PersonRow.circuit_id == circuit_id,
            ParticipationRow.channel != PAPER_CHANNEL,
        )
    )
    return [(nid, at, channel) for nid, at, channel in rows]


def pollbook(sessions: sessionmaker[Session], slug: str, code: str) -> Pollbook:
    """Who in circuit `code` of `slug` has a digital participation, read in one query."""
    with sessions() as session:
        consultation, circuit = find_circuit(session, slug, code)
        rows = _digital_voters(session, consultation.id, circuit.id)
    zone = ZoneInfo(consultation.timezone)
    entries = sorted(
        (PollbookEntry(nid, at.astimezone(zone), channel) for nid, at, channel in rows),
        key=lambda e: id_order(e.national_id),
    )
    now = datetime.now(UTC).astimezone(zone)
    return Pollbook(
        slug, consultation.name, circuit.code, circuit.name, consultation.timezone, now,
        tuple(entries),
    )  # fmt: skip


def _local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def pollbook_csv(book: Pollbook) -> str:
    """national_id,voted_at_local,channel: one row per digital voter."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(POLLBOOK_HEADER)
    writer.writerows((e.national_id, _local(e.voted_at), e.channel) for e in book.entries)
    return out.getvalue()


_STYLE = """
body { font-family: sans-serif; font-size: 11pt; margin: 1.5cm; color: #000; }
h1 { font-size: 15pt; margin: 0 0 .3em; }
p { margin: .2em 0; }
table { border-collapse: collapse; width: 100%; margin-top: 1em; }
th, td { border: 1px solid #000; padding: 2px 8px; text-align: left; }
td.n { text-align: right; width: 3em; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; }
@page { margin: 1.5cm; }
"""


def _html_rows(book: Pollbook) -> str:
    e = html.escape
    return "\n".join(
        f'<tr><td class="n">{n}</td><td>{e(x.national_id)}</td><td>{e(x.channel.upper())}</td>'
        f"<td>{e(_local(x.voted_at))}</td></tr>"
        for n, x in enumerate(book.entries, start=1)
    )


def pollbook_html(book: Pollbook) -> str:
    """A plain page to print: a title, the circuit, when it was made, how many, and the list."""
    e = html.escape
    title = f"Ya votaron por SMS o USSD / Already voted by SMS or USSD: {book.name}"
    return f"""<!DOCTYPE html>
<html lang="es">
<head><meta charset="utf-8"><title>{e(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{e(title)}</h1>
<p>Consulta / Consultation: {e(book.slug)}</p>
<p>Circuito / Circuit: {e(book.circuit_code)} &mdash; {e(book.circuit_name)}</p>
<p>Generado / Generated: {e(_local(book.generated_at))} ({e(book.timezone)})</p>
<p>Personas / People: {len(book.entries)}</p>
<table>
<thead><tr><th>#</th><th>C&eacute;dula / National ID</th><th>Canal / Channel</th>
<th>Hora / Voted at</th></tr></thead>
<tbody>
{_html_rows(book)}
</tbody>
</table>
</body>
</html>
"""


def pollbook_paths(book: Pollbook, folder: Path) -> tuple[Path, Path]:
    """pollbook-SLUG-CODE.csv and .html in `folder`; a code is kept to file-name-safe signs."""
    stem = f"pollbook-{book.slug}-{_SAFE_NAME.sub('_', book.circuit_code)}"
    return folder / f"{stem}.csv", folder / f"{stem}.html"


def write_pollbook(book: Pollbook, folder: Path) -> tuple[Path, Path]:
    """Write the CSV and the printable HTML into `folder`, returning their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = pollbook_paths(book, folder)
    csv_path.write_text(pollbook_csv(book), encoding="utf-8")
    html_path.write_text(pollbook_html(book), encoding="utf-8")
    return csv_path, html_path
