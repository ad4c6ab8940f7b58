"""The console's audit trail: who did what, and when, in `operator_actions`."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from gateway.db import transaction
from gateway.models import OperatorActionRow


def record_action(sessions: sessionmaker[Session], actor: str, action: str, detail: str) -> None:
    with transaction(sessions) as session:
        session.add(OperatorActionRow(actor=actor, action=action, detail=detail))
