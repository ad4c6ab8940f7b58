"""A consultation's lifecycle: draft -> open -> closed -> certified, each move on the record.

The moves are strictly one way. A closed consultation is not reopened: voters were told it
closed, and results may already be circulating; a second round is a new consultation. A draft
cannot jump to closed or certified either, so every certified result went through a vote.

Each move and the record of who made it are written in one transaction, so there is never a
status change without its operator action, nor an action for a change that did not happen.
"""

from __future__ import annotations

import getpass
import os
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway import audit
from gateway.db import transaction
from gateway.models import ConsultationRow, OperatorActionRow, utcnow
from gateway.results import UnknownConsultation

# status now -> the only status it may move to, and the name of the action that moves it
MOVES: dict[str, tuple[str, str]] = {
    "draft": ("open", "open"),
    "open": ("closed", "close"),
    "closed": ("certified", "certify"),
}


DONE = {"open": "opened", "closed": "closed", "certified": "certified"}  # for messages


class TransitionRefused(ValueError):  # noqa: N818 - reads better than ...Error at call sites
    """The consultation cannot move to that status from the one it is in."""


def cli_actor() -> str:
    """Who runs this command, as the record names them: "cli:" and the OS user."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # a container user with no name still leaves a trace
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


def fix_lot_seed(row: ConsultationRow) -> str | None:
    """Give a consultation drawn by lot its seed, once; a seed already set is never changed."""
    if row.tie_break == "lot" and not row.lot_seed:
        row.lot_seed = secrets.token_hex(16)
        return row.lot_seed
    return None


def record(session: Session, consultation_id: int, actor: str, action: str, detail: str) -> None:
    """Write down who did what to a consultation, now, in the caller's transaction.

    The action also goes into the consultation's vote log, so that a record deleted or edited
    afterwards shows as a broken chain.
    """
    at = utcnow()
    session.add(
        OperatorActionRow(
            consultation_id=consultation_id, actor=actor, action=action, detail=detail, at=at
        )
    )
    audit.append(session, consultation_id, *audit.operator_entry(actor, action, detail, at))


def _locked(session: Session, slug: str) -> ConsultationRow:
    # FOR UPDATE on PostgreSQL (SQLite's BEGIN IMMEDIATE already serialises writers): two
    # operators pressing "close" at once get one move and one refusal, not two records.
    query = select(ConsultationRow).where(ConsultationRow.slug == slug).with_for_update()
    row = session.scalar(query)
    if row is None:
        raise UnknownConsultation(f"there is no consultation {slug!r}")
    return row


def _check_move(row: ConsultationRow, to_status: str) -> str:
    """The action's name, if `to_status` is the one next step from where `row` stands."""
    allowed, action = MOVES.get(row.status, ("", ""))
    if to_status != allowed:
        then = f"it can only be {DONE[allowed]}" if allowed else "that is final"
        done = DONE.get(to_status, to_status)
        raise TransitionRefused(
            f"{row.slug} is {row.status}, so it cannot be {done}: {then}; nothing changed"
        )
    return action


def transition(
    sessions: sessionmaker[Session], slug: str, to_status: str, actor: str
) -> ConsultationRow:
    """Move SLUG to `to_status` and record the action with its actor and time."""
    with transaction(sessions) as session:
        row = _locked(session, slug)
        action = _check_move(row, to_status)
        detail = f"{row.status} -> {to_status}"
        # A lot consultation made without a seed gets it before the first vote, never after.
        if to_status == "open" and (seed := fix_lot_seed(row)):
            detail += f"; lot seed {seed}"
        row.status = to_status
        if to_status == "closed":
            row.closed_at = utcnow()
        record(session, row.id, actor, action, detail)
    return row
