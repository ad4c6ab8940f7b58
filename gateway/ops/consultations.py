"""The consultations page: each one's status and window, and the one move an admin may make."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from gateway.app import WebState
from gateway.lifecycle import MOVES
from gateway.models import ConsultationRow

# the move's target status -> the button's label and the question it asks first
BUTTONS: dict[str, tuple[str, str]] = {
    "open": ("Open voting", "Open voting for {name}? Votes will be accepted from now on."),
    "closed": ("Close", "Close {name}? It cannot be reopened."),
    "certified": ("Certify", "Certify the results of {name}? This is final."),
}
WHEN = "%Y-%m-%d %H:%M UTC"


def listing(state: WebState) -> list[dict[str, Any]]:
    """Every consultation, the most recent first, with its next move if it has one."""
    with state.sessions() as session:
        rows = session.scalars(
            select(ConsultationRow).order_by(ConsultationRow.opens_at.desc())
        ).all()
        return [_entry(row) for row in rows]


def _entry(row: ConsultationRow) -> dict[str, Any]:
    to_status = MOVES[row.status][0] if row.status in MOVES else None
    move = None
    if to_status:
        label, question = BUTTONS[to_status]
        move = {"to": to_status, "label": label, "confirm": question.format(name=row.name)}
    return {
        "slug": row.slug,
        "name": row.name,
        "status": row.status,
        "opens": row.opens_at.strftime(WHEN),
        "closes": row.closes_at.strftime(WHEN),
        "move": move,
    }
