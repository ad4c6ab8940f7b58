"""Tamper: random edits made straight in the database, and the audit check that must catch them.

A chain of N entries is written with the log's own API, then each round makes one tampering
with SQL, as someone at a database console would: edit a payload, a kind or a time, delete a
middle row or the last rows, swap two rows' seqs, insert a forged row (carelessly, or with the
right formula, at the end or in the middle with the rest moved up), or edit a row and recompute
its digest to hide the edit. `consulta audit verify`'s check must catch every one and name the
first entry where the chain breaks. The chain is restored between rounds.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from sqlalchemy import Delete, Update, delete, insert, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit import (
    Head,
    Pending,
    append_many,
    canonical_json,
    link_digest,
    links,
    operator_entry,
    replace_entry,
    vote_entry,
)
from gateway.audit_store import check_stored, stored_entries
from gateway.db import make_engine, make_sessionmaker, transaction
from gateway.models import AuditEntryRow
from tests.fault import scale
from tests.support.factories import seed

pytestmark = [pytest.mark.fault]

SLUG = "cpn-2026"
ENTRIES = scale.n(200, 5000)
ROUNDS = scale.n(66, 220)  # six of each kind of tampering, or twenty
BATCH = 200  # entries per transaction, as the worker commits them
T0 = datetime(2026, 3, 8, 11, 0, tzinfo=UTC)


@dataclass
class Chain:
    consultation_id: int
    rows: list[dict[str, object]]  # the pristine rows, to restore after each round

    @property
    def last(self) -> int:
        return len(self.rows)

    def row(self, seq: int) -> dict[str, object]:
        return self.rows[seq - 1]


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def pending(n: int) -> list[Pending]:
    """The opening, then votes; every seventh replaces the vote just before it."""
    entries = [operator_entry("cli:ana", "open", "draft -> open", T0)]
    for i in range(2, n + 1):
        at = T0 + timedelta(seconds=i)
        if i % 7 == 0:
            entries.append(replace_entry(f"R{i}", f"R{i - 1}", "C1", 1, at))
        else:
            entries.append(vote_entry(f"R{i}", f"C{i % 3 + 1}", i % 5 + 1, at))
    return entries


def build(sessions: sessionmaker[Session]) -> Chain:
    seeded = seed(sessions, slug=SLUG, ballots={"C1": 5, "C2": 5, "C3": 5})
    entries = pending(ENTRIES)
    for start in range(0, len(entries), BATCH):
        with transaction(sessions) as session:
            append_many(session, seeded.consultation_id, entries[start : start + BATCH])
    with sessions() as session:
        stored = stored_entries(session, seeded.consultation_id)
        rows = [{"consultation_id": seeded.consultation_id, **asdict(e)} for e in stored]
    return Chain(seeded.consultation_id, rows)


def restore(sessions: sessionmaker[Session], chain: Chain, start: int = 1) -> None:
    """Put back every row from seq `start` on, and drop any row a tampering added."""
    # No tampering here reaches below the entry just before the one it must be named at, which
    # is what the caller passes as `start`: a restore of that tail is a full restore.
    with transaction(sessions) as session:
        statement = mine(delete(AuditEntryRow), chain)
        session.execute(statement.where((AuditEntryRow.seq >= start) | (AuditEntryRow.seq < 0)))
        session.execute(insert(AuditEntryRow), chain.rows[start - 1 :])


def mine(statement: Statement, chain: Chain, seq: int | None = None) -> Statement:
    """The statement narrowed to this chain, and to one seq if given."""
    statement = statement.where(AuditEntryRow.consultation_id == chain.consultation_id)
    return statement if seq is None else statement.where(AuditEntryRow.seq == seq)


Statement = TypeVar("Statement", Update, Delete)
Tampering = Callable[[Session, Chain, random.Random], int]  # makes it; the seq it must name


def _set(session: Session, chain: Chain, row_seq: int, **values: object) -> None:
    """UPDATE the row that has seq `row_seq`."""
    session.execute(mine(update(AuditEntryRow), chain, row_seq).values(**values))


def _edited_payload(row: dict[str, object]) -> str:
    payload = json.loads(str(row["payload"]))
    if "option" in payload:
        payload["option"] = payload["option"] % 5 + 1  # another option on the same ballot
    else:
        payload["detail"] += "; and something else"
    return canonical_json(payload)


def edit_payload(session: Session, chain: Chain, rng: random.Random) -> int:
    seq = rng.randint(1, chain.last)
    _set(session, chain, seq, payload=_edited_payload(chain.row(seq)))
    return seq


def edit_kind(session: Session, chain: Chain, rng: random.Random) -> int:
    seq = rng.randint(1, chain.last)
    _set(session, chain, seq, kind="replace" if chain.row(seq)["kind"] == "vote" else "vote")
    return seq


def edit_time(session: Session, chain: Chain, rng: random.Random) -> int:
    seq = rng.randint(1, chain.last)
    at = chain.row(seq)["at"]
    assert isinstance(at, datetime)
    _set(session, chain, seq, at=at - timedelta(seconds=rng.randint(1, 3600)))
    return seq


def delete_middle_row(session: Session, chain: Chain, rng: random.Random) -> int:
    seq = rng.randint(1, chain.last - 1)
    session.execute(mine(delete(AuditEntryRow), chain, seq))
    return seq


def delete_last_rows(session: Session, chain: Chain, rng: random.Random) -> int:
    first = chain.last - rng.randint(1, 5) + 1
    statement = mine(delete(AuditEntryRow), chain)
    session.execute(statement.where(AuditEntryRow.seq >= first))
    return first


def swap_two_seqs(session: Session, chain: Chain, rng: random.Random) -> int:
    i, j = sorted(rng.sample(range(1, chain.last + 1), 2))
    _set(session, chain, i, seq=-1)  # the unique (consultation, seq) allows no direct swap
    _set(session, chain, j, seq=i)
    _set(session, chain, -1, seq=j)
    return i


def _forged(chain: Chain, after: int) -> dict[str, object]:
    """A vote linked to entry `after` with the right formula, as a row."""
    before = Head(after, str(chain.row(after)["digest"]))
    [entry] = links(before, [vote_entry("FORGED", "C1", 1, T0)])
    return {"consultation_id": chain.consultation_id, **asdict(entry)}


def forge_careless_row_at_end(session: Session, chain: Chain, rng: random.Random) -> int:
    row = _forged(chain, chain.last) | {"digest": f"{rng.getrandbits(256):064x}"}
    session.execute(insert(AuditEntryRow), [row])
    return chain.last + 1


def forge_well_made_row_at_end(session: Session, chain: Chain, rng: random.Random) -> int:
    session.execute(insert(AuditEntryRow), [_forged(chain, chain.last)])
    return chain.last + 1


def forge_well_made_row_in_middle(session: Session, chain: Chain, rng: random.Random) -> int:
    seq = rng.randint(2, chain.last)
    rows = mine(update(AuditEntryRow), chain)
    # Up by one in two steps: the unique (consultation, seq) is checked row by row.
    session.execute(rows.where(AuditEntryRow.seq >= seq).values(seq=-AuditEntryRow.seq - 1))
    session.execute(rows.where(AuditEntryRow.seq < 0).values(seq=-AuditEntryRow.seq))
    session.execute(insert(AuditEntryRow), [_forged(chain, seq - 1)])
    return seq + 1  # the forged row verifies itself; the row it displaced does not


def hide_an_edit_by_recomputing_its_digest(
    session: Session, chain: Chain, rng: random.Random
) -> int:
    seq = rng.randint(1, chain.last)
    row = chain.row(seq)
    payload = _edited_payload(row)
    at, kind, previous = row["at"], str(row["kind"]), str(row["previous"])
    assert isinstance(at, datetime)
    digest = link_digest(previous, seq, kind, json.loads(payload), at)
    _set(session, chain, seq, payload=payload, digest=digest)
    return seq + 1 if seq < chain.last else seq  # the next link, or the head, shows it


def hide_an_edit_and_relink_the_next_row(session: Session, chain: Chain, rng: random.Random) -> int:
    seq = rng.randint(1, chain.last - 1)
    row = chain.row(seq)
    payload = _edited_payload(row)
    at = row["at"]
    assert isinstance(at, datetime)
    digest = link_digest(str(row["previous"]), seq, str(row["kind"]), json.loads(payload), at)
    _set(session, chain, seq, payload=payload, digest=digest)
    _set(session, chain, seq + 1, previous=digest)
    return seq + 1


TAMPERINGS: list[Tampering] = [
    edit_payload,
    edit_kind,
    edit_time,
    delete_middle_row,
    delete_last_rows,
    swap_two_seqs,
    forge_careless_row_at_end,
    forge_well_made_row_at_end,
    forge_well_made_row_in_middle,
    hide_an_edit_by_recomputing_its_digest,
    hide_an_edit_and_relink_the_next_row,
]


@pytest.mark.timeout(900)  # FAULT_SCALE=full: 220 rounds over 5,000 entries, per database
def test_every_tampering_of_the_log_is_detected_at_the_first_entry_it_breaks(
    sessions: sessionmaker[Session], database_url: str
) -> None:
    chain = build(sessions)
    rng = random.Random(7)  # fixed: a failure can be replayed
    missed: list[str] = []
    misnamed: list[str] = []
    for round_ in range(ROUNDS):
        tampering = TAMPERINGS[round_ % len(TAMPERINGS)]
        with transaction(sessions) as session:
            expected = tampering(session, chain, rng)
        with sessions() as session:
            broken = check_stored(session, SLUG).verdict.broken
        if broken is None:
            missed.append(f"{tampering.__name__} (seq {expected})")
        elif broken.seq != expected:
            misnamed.append(f"{tampering.__name__}: named {broken.seq}, expected {expected}")
        restore(sessions, chain, start=max(expected - 1, 1))
    with sessions() as session:
        assert check_stored(session, SLUG).verdict.intact, "the restore left the chain broken"
    failures = len(missed) + len(misnamed)
    detected = 100 * (ROUNDS - len(missed)) / ROUNDS
    scale.report(
        "tamper",
        n=ROUNDS,
        failures=failures,
        database=database_url.split(":")[0],
        entries=ENTRIES,
        kinds=len(TAMPERINGS),
        detected=f"{detected:g}%",
        named_correctly=f"{ROUNDS - failures}/{ROUNDS}",
    )
    assert missed == []
    assert misnamed == []
