"""The tables. The database is the system of record; its unique constraints are the judges."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gateway.privacy import Digest, Sealed, SealedDateTime


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (SQLite has none) and always hands back an aware datetime."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are refused: say which zone they are in")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ConsultationRow(Base):
    __tablename__ = "consultations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(String(64), default="America/Caracas")
    min_age: Mapped[int] = mapped_column(Integer, default=15)
    max_age: Mapped[int | None] = mapped_column(Integer)
    winners: Mapped[int] = mapped_column(Integer, default=1)
    revote: Mapped[str] = mapped_column(String(8), default="first")
    require_id: Mapped[bool] = mapped_column(Boolean, default=False)
    # draft -> open -> closed -> certified. Votes count only while open and inside the window.
    status: Mapped[str] = mapped_column(String(12), default="draft")
    # When an operator closed it: a vote the provider received before then still counts, even
    # if it is still in the queue when the operator presses close.
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How a tie for a winning place is settled, fixed before voting: earliest | lot | runoff.
    tie_break: Mapped[str] = mapped_column(String(12), default="earliest")
    lot_seed: Mapped[str | None] = mapped_column(String(64))  # published with the results
    quorum: Mapped[float] = mapped_column(Float, default=0.10)  # minimum turnout per circuit
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CircuitRow(Base):
    __tablename__ = "circuits"
    __table_args__ = (
        UniqueConstraint("consultation_id", "code"),
        # What people's key refers to: a circuit together with its consultation (migration 0003).
        UniqueConstraint("id", "consultation_id", name="uq_circuits_id_consultation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))


class OptionRow(Base):
    __tablename__ = "options"
    __table_args__ = (UniqueConstraint("circuit_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    circuit_id: Mapped[int] = mapped_column(ForeignKey("circuits.id"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))


class PersonRow(Base):
    """A registered person. The national ID is a keyed hash, plus a sealed copy for the pollbook."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("consultation_id", "national_id_digest"),
        # One key for both columns: the circuit is one of the person's consultation's. One check
        # per person on import where a key on each column cost two (migration 0003).
        ForeignKeyConstraint(
            ["circuit_id", "consultation_id"],
            ["circuits.id", "circuits.consultation_id"],
            name="fk_people_circuit_in_consultation",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(Integer)
    # Compare it with a clear ID in a query and the ID is hashed the same way on the way in.
    national_id: Mapped[str] = mapped_column("national_id_digest", Digest())
    national_id_clear: Mapped[str] = mapped_column("national_id_sealed", Sealed())
    circuit_id: Mapped[int] = mapped_column(Integer, index=True)
    birth_date: Mapped[date] = mapped_column(Date)
    language: Mapped[str | None] = mapped_column(String(8))  # from the registry, if given


class PhoneRow(Base):
    """One of a person's phones. One key is the look-up, the uniqueness and the row (0004)."""

    __tablename__ = "phones"
    # Found by (consultation, phone), then the person, read from the key itself. Unique exactly
    # when (person, phone) is: a person belongs to one consultation. One phone may be several
    # people's (a family's).
    __table_args__ = (PrimaryKeyConstraint("consultation_id", "phone_digest", "person_id"),)

    # The person's consultation, repeated so that the look-up by (consultation, phone) needs no
    # join. No foreign key: person_id's already implies it, and a second cost a check per phone
    # on import (migration 0002).
    consultation_id: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    phone: Mapped[str] = mapped_column("phone_digest", Digest())


class InboundRow(Base):
    """Every acknowledged message, recorded before the 2xx, keyed by the provider's own ID."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("provider", "external_id"),
        Index("ix_inbound_pending", "status", "enqueued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(8), default="sms")
    # Sealed: the worker must read the number back to reply, and the body may hold an ID.
    sender: Mapped[str] = mapped_column("sender_sealed", Sealed())
    recipient: Mapped[str] = mapped_column(String(32))  # our own number or short code
    body: Mapped[str] = mapped_column("body_sealed", Sealed())
    # A USSD voter is shown their receipt when they confirm, before the worker stores the vote;
    # the worker then files the vote under this receipt.
    receipt: Mapped[str | None] = mapped_column("receipt_sealed", Sealed())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(8), default="pending")  # pending | done
    outcome: Mapped[str | None] = mapped_column(String(24))
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"))
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ParticipationRow(Base):
    """Who voted. What they chose lives in `votes`, with no person in it.

    Nothing here joins with `votes` without the key: the receipt and the time are sealed (a fresh
    nonce each time, so they match nothing), and there is no serial ID whose order would line up
    with the order of the votes.
    """

    __tablename__ = "participations"

    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    receipt: Mapped[str] = mapped_column("receipt_sealed", Sealed())
    voted_at: Mapped[datetime] = mapped_column("voted_at_sealed", SealedDateTime())
    # Bumped by every replacement under the `last` policy: the guard of the compare-and-set.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(8))  # sms | ussd | paper
    table_code: Mapped[str | None] = mapped_column(String(32))  # the voting table, for paper


class VoteRow(Base):
    """What was voted, by circuit and receipt. No person, no phone."""

    __tablename__ = "votes"
    __table_args__ = (Index("ix_votes_count", "consultation_id", "circuit_id", "replaced_at"),)

    # The receipt is the key: a serial ID would number votes in the order people voted.
    receipt: Mapped[str] = mapped_column(String(16), primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    circuit_id: Mapped[int] = mapped_column(ForeignKey("circuits.id"))
    option: Mapped[int] = mapped_column(Integer)
    cast_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OutboundRow(Base):
    """A reply, recorded before it is sent. One per inbound message (a long ballot in parts)."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        Index("ix_outbound_status", "status", "updated_at"),
        UniqueConstraint("inbound_id", "part"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    part: Mapped[int] = mapped_column(Integer, default=1)
    provider: Mapped[str] = mapped_column(String(32))
    # Sealed: the number, and a body that names the voter's choice and receipt.
    recipient: Mapped[str] = mapped_column("recipient_sealed", Sealed())
    body: Mapped[str] = mapped_column("body_sealed", Sealed())
    encoding: Mapped[str] = mapped_column(String(8), default="GSM-7")  # what the carrier bills
    segments: Mapped[int] = mapped_column(Integer, default=1)
    # queued -> sending -> sent -> delivered | undelivered | failed; also outbox (no provider),
    # opted_out (21610, never retried), unknown (the create may have gone through), capped (past
    # REPLY_CAP_PER_HOUR for the number) and blocked (a number outside ALLOWED_COUNTRIES).
    status: Mapped[str] = mapped_column(String(12), default="queued")
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PhonePreferenceRow(Base):
    """A language a phone asked for (IDIOMA EN): it outranks the registry's."""

    __tablename__ = "phone_preferences"

    phone: Mapped[str] = mapped_column("phone_digest", Digest(), primary_key=True)
    language: Mapped[str] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OptOutRow(Base):
    """Numbers that sent STOP: never a vote, and no reply until they send START."""

    __tablename__ = "opt_outs"

    phone: Mapped[str] = mapped_column("phone_digest", Digest(), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OperatorRow(Base):
    """A person who runs consultations: viewer, operator or admin."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(12))  # viewer | operator | admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OperatorActionRow(Base):
    """Who did what, and when: every lifecycle change and every operator action."""

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultations.id"))
    actor: Mapped[str] = mapped_column(String(80))  # an operator's username, or "cli:<user>"
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ActaRow(Base):
    """A paper tally: votes per option at one voting table of a circuit."""

    __tablename__ = "actas"
    __table_args__ = (UniqueConstraint("consultation_id", "circuit_id", "table_code", "option"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    circuit_id: Mapped[int] = mapped_column(ForeignKey("circuits.id"))
    table_code: Mapped[str] = mapped_column(String(32))
    option: Mapped[int] = mapped_column(Integer)
    votes: Mapped[int] = mapped_column(Integer)


class AuditEntryRow(Base):
    """One link of a consultation's hash chain: every stored vote and every operator action.

    `digest` is SHA-256 over the previous entry's digest and this entry's canonical JSON, so an
    edit, a deletion or a swap breaks every link after it. No phone and no national ID appear.
    """

    __tablename__ = "audit_log"
    __table_args__ = (UniqueConstraint("consultation_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 ... within the consultation
    kind: Mapped[str] = mapped_column(String(24))  # vote | replace | operator
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    previous: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The last link of each chain. Appending locks this row, so writers take turns."""

    __tablename__ = "audit_heads"

    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    digest: Mapped[str] = mapped_column(String(64))
