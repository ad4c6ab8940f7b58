"""The database look-ups both importers start from."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.imports.reading import ImportRefused
from gateway.models import CircuitRow, ConsultationRow


def find_consultation(session: Session, slug: str) -> ConsultationRow:
    """The consultation `slug`; the import is refused if there is none."""
    found = session.scalar(select(ConsultationRow).where(ConsultationRow.slug == slug))
    if found is None:
        raise ImportRefused([(0, f"there is no consultation {slug!r}: create it first")])
    return found


def circuit_ids(session: Session, consultation_id: int) -> dict[str, int]:
    """The consultation's circuits: code -> id."""
    rows = session.execute(
        select(CircuitRow.code, CircuitRow.id).where(CircuitRow.consultation_id == consultation_id)
    )
    return dict(rows.all())
