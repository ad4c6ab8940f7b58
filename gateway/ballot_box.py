"""The database side of voting: bulk look-ups for a batch, and the writes that count a vote."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, Text, bindparam, select, type_coerce, update
from sqlalchemy.orm import Session

from gateway import privacy
from gateway.models import (
    CircuitRow,
    ConsultationRow,
    InboundRow,
    OptionRow,
    ParticipationRow,
    PersonRow,
    PhonePreferenceRow,
    PhoneRow,
    VoteRow,
)
from gateway.sql import among, by_unique_key, insert_ignoring_conflicts, insert_rows
from voting.model import Ballot, Consultation, Participation, Person, RevotePolicy


def consultation_from_row(row: ConsultationRow | Row[Any]) -> Consultation:
    """From the ORM's row object, or from a Core row of the table's columns (same names)."""
    return Consultation(
        id=row.id,
        slug=row.slug,
        name=row.name,
        opens_at=row.opens_at,
        closes_at=row.closes_at,
        timezone=row.timezone,
        min_age=row.min_age,
        max_age=row.max_age,
        winners=row.winners,
        revote=RevotePolicy(row.revote),
        require_id=row.require_id,
        status=row.status,
        closed_at=row.closed_at,
    )


def all_consultations(session: Session) -> list[Consultation]:
    return [consultation_from_row(r) for r in session.scalars(select(ConsultationRow))]


# The USSD menu's look-ups run on a Core connection (`WebState.lookups`), with statements built
# once: through an ORM session, building the statement, its cache key and the session cost more
# CPU than the query. A dial cost 30 to 40% less this way and a vote's hop 20% less
# (`bench.ussd_cpu`, docs/performance.md, ninth session). Every value is a bound parameter.


def consultations_and_language(
    connection: Connection, phone: str
) -> tuple[list[Consultation], str | None]:
    """Every consultation, and the language this phone asked for, if any, in one round trip:
    what a USSD dial reads first. The language rides on each consultation's row, so with no
    consultation at all it takes a second query."""
    rows = connection.execute(_consultations_and_language(), {"phone": phone}).all()
    if not rows:
        return [], connection.scalar(_language(), {"phone": phone})
    return [consultation_from_row(row) for row in rows], rows[0].language


@functools.cache
def _language() -> Select[str | None]:
    return select(PhonePreferenceRow.language).where(PhonePreferenceRow.phone == bindparam("phone"))


@functools.cache
def _consultations_and_language() -> Select[*tuple[Any, ...]]:
    language = _language().scalar_subquery().label("language")
    return select(*ConsultationRow.__table__.columns, language)


def people_by_phone(
    session: Session, consultation_id: int, phones: Iterable[str]
) -> dict[str, list[Person]]:
    """Everyone registered on each phone, in one query for the whole batch."""
    # The table holds keyed hashes: the query hashes the numbers we bind, and the rows come back
    # with hashes, which we map back to the numbers we asked about.
    by_digest = {privacy.digest(phone): phone for phone in set(phones)}
    # Columns, not PersonRow entities: an entity per person cost a third of this look-up (the
    # ORM builds, identity-maps and on commit expires each one; py-spy on bench.intake_cpu),
    # and nothing here changes a person.
    rows = session.execute(
        select(
            PhoneRow.phone,
            PersonRow.id,
            PersonRow.national_id_clear,
            PersonRow.circuit_id,
            PersonRow.birth_date,
            PersonRow.language,
        )
        .join(PersonRow, PersonRow.id == PhoneRow.person_id)
        .where(
            PhoneRow.consultation_id == consultation_id,
            among(session, PhoneRow.phone, by_digest.values()),
        )
    )
    found: dict[str, list[Person]] = defaultdict(list)
    for digest, person_id, national_id, circuit_id, born, language in rows:
        found[by_digest[digest]].append(Person(person_id, national_id, circuit_id, born, language))
    return found


@dataclass(frozen=True)
class Registered:
    """A person on a phone as a USSD menu needs them: the ID's keyed hash, never the ID, and
    the registry's sealed copy of it as stored, opened only when the vote is cast."""

    person_id: int
    national_id_digest: str
    circuit_id: int
    birth_date: date
    language: str | None
    national_id_sealed: str


def registered_with_ballots(
    connection: Connection, consultation_id: int, phone: str
) -> tuple[list[Registered], dict[int, Ballot]]:
    """Everyone registered on one phone, and their circuits' ballots, in one query.

    A dial is the USSD hop that reads the database, and each round trip is a wait on a server
    busy with the peak: the people and their ballots were two (dial p99 161 ms against 57 for
    the hops that read nothing, at 400 SMS/s; docs/performance.md). A row per person and option.
    The menu only compares what the caller types, hashed, with the stored hash; the sealed copy
    is read as stored, not opened, so a dial decrypts nothing.
    """
    params = {"consultation_id": consultation_id, "phone": phone}
    people: dict[int, Registered] = {}
    options: dict[int, dict[int, str]] = defaultdict(dict)
    for row in connection.execute(_registered_with_ballots(), params):
        person_id, digest, circuit_id, born, language, sealed, number, title = row
        if person_id not in people:
            people[person_id] = Registered(person_id, digest, circuit_id, born, language, sealed)
        if number is not None:
            options[circuit_id][number] = title
    return list(people.values()), {c: Ballot(c, titles) for c, titles in options.items()}


@functools.cache
def _registered_with_ballots() -> Select[*tuple[Any, ...]]:
    return (
        select(
            PersonRow.id,
            PersonRow.national_id,
            PersonRow.circuit_id,
            PersonRow.birth_date,
            PersonRow.language,
            type_coerce(PersonRow.national_id_clear, Text()),
            OptionRow.number,
            OptionRow.title,
        )
        .join(PhoneRow, PhoneRow.person_id == PersonRow.id)
        .outerjoin(OptionRow, OptionRow.circuit_id == PersonRow.circuit_id)
        .where(
            PhoneRow.consultation_id == bindparam("consultation_id"),
            PhoneRow.phone == bindparam("phone"),
        )
        .order_by(PersonRow.id, OptionRow.number)
    )


def ballots(session: Session, circuit_ids: Iterable[int]) -> dict[int, Ballot]:
    options: dict[int, dict[int, str]] = defaultdict(dict)
    rows = session.execute(
        select(OptionRow.circuit_id, OptionRow.number, OptionRow.title).where(
            among(session, OptionRow.circuit_id, set(circuit_ids))
        )
    )
    for circuit_id, number, title in rows:
        options[circuit_id][number] = title
    return {circuit_id: Ballot(circuit_id, titles) for circuit_id, titles in options.items()}


def circuit_codes(session: Session, circuit_ids: Iterable[int]) -> dict[int, str]:
    rows = session.execute(
        select(CircuitRow.id, CircuitRow.code).where(
            among(session, CircuitRow.id, set(circuit_ids))
        )
    )
    return {row[0]: row[1] for row in rows}


def standing_votes(
    session: Session, consultation_id: int, person_ids: Iterable[int], lock: bool = False
) -> dict[int, Participation]:
    """Who among these already voted in the consultation: one probe of the key per person.

    With `lock`, their participations are locked for this transaction, in key order, waiting for
    any transaction that holds one: a batch that may replace these votes locks them in one
    statement, in the one order every batch takes them.
    """
    columns = (
        ParticipationRow.person_id,
        ParticipationRow.receipt,
        ParticipationRow.voted_at,
        ParticipationRow.revision,
    )
    query = by_unique_key(
        session, columns, ParticipationRow.person_id, set(person_ids),
        ParticipationRow.consultation_id == consultation_id,
        lock="wait" if lock else None,
    )  # fmt: skip
    return {row[0]: Participation(*row) for row in session.execute(query)}


def standing_vote(session: Session, consultation_id: int, person_id: int) -> Participation:
    found = standing_votes(session, consultation_id, [person_id])
    return found[person_id]


def claim_first_vote(  # noqa: PLR0913
    session: Session,
    consultation_id: int,
    person_id: int,
    receipt: str,
    at: datetime,
    channel: str,
) -> bool:
    """Record that this person voted, unless someone else's transaction already did."""
    statement = (
        insert_ignoring_conflicts(session, ParticipationRow)
        .values(
            consultation_id=consultation_id,
            person_id=person_id,
            receipt=receipt,
            voted_at=at,
            channel=channel,
        )
        .returning(ParticipationRow.person_id)
    )
    return session.execute(statement).first() is not None


def claim_first_votes(session: Session, claims: list[dict[str, object]]) -> int:
    """Record these first votes in one statement; how many were still unclaimed.

    Each claim holds consultation_id, person_id, receipt, voted_at and channel. A claim someone
    else's transaction made first is skipped by the unique key and not counted. The claims go in
    in key order, so that two batches claiming some of the same people wait for each other
    instead of deadlocking (as `intake.record_batch` explains).
    """
    returning = (ParticipationRow.person_id,)
    ordered = sorted(claims, key=_participation_key)
    return len(insert_rows(session, ParticipationRow, ordered, returning, True).all())


def _participation_key(claim: dict[str, Any]) -> tuple[int, int]:
    return claim["consultation_id"], claim["person_id"]


def claim_replacement(
    session: Session, consultation_id: int, standing: Participation, receipt: str, at: datetime
) -> bool:
    """Move the person's participation to the new receipt, if nobody moved it since we read it.

    The receipt is sealed (it cannot be compared in SQL), so the guard is the revision counter.
    """
    result = session.execute(
        update(ParticipationRow)
        .where(
            ParticipationRow.consultation_id == consultation_id,
            ParticipationRow.person_id == standing.person_id,
            ParticipationRow.revision == standing.revision,
        )
        .values(receipt=receipt, voted_at=at, revision=standing.revision + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def retire(session: Session, receipt: str, at: datetime) -> None:
    session.execute(update(VoteRow).where(VoteRow.receipt == receipt).values(replaced_at=at))


def receipt_status(session: Session, receipt: str) -> tuple[str, bool] | None:
    """(consultation name, replaced?) for a receipt, or None if no vote carries it."""
    row = session.execute(
        select(ConsultationRow.name, VoteRow.replaced_at)
        .join(ConsultationRow, ConsultationRow.id == VoteRow.consultation_id)
        .where(VoteRow.receipt == receipt)
    ).first()
    return None if row is None else (row[0], row[1] is not None)


def standing_receipt(connection: Connection, consultation_id: int, person_id: int) -> str | None:
    """The receipt of the vote that stands for this person, if they voted."""
    params = {"consultation_id": consultation_id, "person_id": person_id}
    return connection.scalar(_standing_receipt(), params)


@functools.cache
def _standing_receipt() -> Select[str]:
    return select(ParticipationRow.receipt).where(
        ParticipationRow.consultation_id == bindparam("consultation_id"),
        ParticipationRow.person_id == bindparam("person_id"),
    )


def inbound_receipt(connection: Connection, provider: str, external_id: str) -> str | None:
    """The receipt already given to the inbound message with this provider and external ID."""
    params = {"provider": provider, "external_id": external_id}
    return connection.scalar(_inbound_receipt(), params)


@functools.cache
def _inbound_receipt() -> Select[str | None]:
    return select(InboundRow.receipt).where(
        InboundRow.provider == bindparam("provider"),
        InboundRow.external_id == bindparam("external_id"),
    )
