"""The vote log as the database holds it: check it, seal it, and read it for an export."""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.audit import Entry, Head, Verdict, genesis, verify
from gateway.audit_recount import Choice, Recount
from gateway.models import AuditEntryRow, AuditHeadRow, CircuitRow, ConsultationRow, VoteRow
from gateway.results import UnknownConsultation

READ_BATCH = 1000  # rows fetched at a time: a national log does not fit in memory


@dataclass(frozen=True)
class Check:
    """A verdict on the chain, the count it implies, and (from the database) the votes table's."""

    slug: str
    verdict: Verdict
    recount: Recount
    stored: Counter[Choice] | None = None  # the standing rows of `votes`, when read

    def differences(self) -> list[str]:
        """Where the log's count and the votes table disagree: a vote edited outside the log."""
        if self.stored is None:
            return []
        logged, stored = self.recount.votes, self.stored
        return [
            f"circuit {code} option {option}: log {logged[code, option]}, "
            f"votes table {stored[code, option]}"
            for code, option in sorted(set(logged) | set(stored))
            if logged[code, option] != stored[code, option]
        ]


@dataclass(frozen=True)
class Seal:
    """What to publish: where the chain ends, and how many entries of each kind lead there."""

    slug: str
    seq: int
    digest: str
    kinds: dict[str, int] = field(default_factory=dict)


def consistent_snapshot(session: Session) -> None:
    """Read the head and the entries as of one moment, while workers keep appending.

    Call first in the session's transaction. PostgreSQL needs REPEATABLE READ for it; SQLite's
    transactions already are one snapshot.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def consultation_id(session: Session, slug: str) -> int:
    found = session.scalar(select(ConsultationRow.id).where(ConsultationRow.slug == slug))
    if found is None:
        raise UnknownConsultation(f"there is no consultation {slug!r}")
    return found


def stored_entries(session: Session, consultation: int) -> Generator[Entry, None, None]:
    """The entries in seq order, as read: a row with an edited seq comes where its seq puts it."""
    columns = [getattr(AuditEntryRow, name) for name in Entry.__dataclass_fields__]
    query = (
        select(*columns)
        .where(AuditEntryRow.consultation_id == consultation)
        .order_by(AuditEntryRow.seq)
        .execution_options(yield_per=READ_BATCH)
    )
    with session.execute(query) as rows:  # closes the server-side cursor if we stop early
        for row in rows:
            yield Entry(*row)


def stored_head(session: Session, consultation: int, slug: str) -> Head:
    """The head row; a log without one is read as empty, so any entry then shows as extra."""
    row = session.execute(
        select(AuditHeadRow.seq, AuditHeadRow.digest).where(
            AuditHeadRow.consultation_id == consultation
        )
    ).first()
    return Head(0, genesis(slug)) if row is None else Head(*row)


def check_stored(session: Session, slug: str) -> Check:
    """Verify SLUG's chain against its head, recount it, and read the votes table to compare."""
    consistent_snapshot(session)
    consultation = consultation_id(session, slug)
    head = stored_head(session, consultation, slug)
    recount = Recount()
    with closing(stored_entries(session, consultation)) as entries:
        verdict = verify(recount.counting(entries), genesis(slug), head)
    return Check(slug, verdict, recount, standing_votes(session, consultation))


def standing_votes(session: Session, consultation: int) -> Counter[Choice]:
    """Votes not replaced, per (circuit code, option), as the `votes` table holds them."""
    rows = session.execute(
        select(CircuitRow.code, VoteRow.option, func.count())
        .join(CircuitRow, CircuitRow.id == VoteRow.circuit_id)
        .where(VoteRow.consultation_id == consultation, VoteRow.replaced_at.is_(None))
        .group_by(CircuitRow.code, VoteRow.option)
    )
    return Counter({(code, option): count for code, option, count in rows})


def seal(session: Session, slug: str) -> Seal:
    """Where SLUG's chain ends now, with the number of entries of each kind."""
    consultation = consultation_id(session, slug)
    head = stored_head(session, consultation, slug)
    kinds = session.execute(
        select(AuditEntryRow.kind, func.count())
        .where(AuditEntryRow.consultation_id == consultation, AuditEntryRow.seq <= head.seq)
        .group_by(AuditEntryRow.kind)
    )
    return Seal(slug, head.seq, head.digest, dict(kinds.all()))
