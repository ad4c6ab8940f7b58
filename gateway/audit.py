"""The tamper-evident vote log: one hash chain per consultation, in `audit_log`.

Every stored vote, every replacement and every operator action on a consultation is one entry.
An entry's digest is

    sha256(previous digest + "\\n" + canonical JSON of {seq, kind, payload, at})

in lowercase hex, where canonical JSON has sorted keys, no spaces and ASCII only, and `at` is
UTC as `2026-03-08T12:00:00.000000Z`. The first entry's `previous` is sha256("consulta:" +
slug) in hex (`genesis`), so one consultation's chain cannot be passed off as another's.
Editing, deleting, inserting or reordering entries breaks the chain at that point;
`audit_heads` keeps the last seq and digest, so cutting entries off the end shows too.

What the chain cannot show on its own: someone with write access who rewrites every entry from
some point on AND the head. Against that, publish the seal (`consulta audit seal`): a rewrite
then ends in a digest different from the published one.

Entries carry no phone number and no national ID: `append` accepts only the fields below.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.models import AuditEntryRow, AuditHeadRow, ConsultationRow
from gateway.sql import insert_ignoring_conflicts, insert_rows

# kind -> the payload's fields, exactly: nothing else gets into the log, so no phone or ID can.
FIELDS: dict[str, frozenset[str]] = {
    "vote": frozenset({"receipt", "circuit", "option"}),
    "replace": frozenset({"receipt", "replaces", "circuit", "option"}),
    "operator": frozenset({"actor", "action", "detail"}),
}

Pending = tuple[str, Mapping[str, object], datetime]  # (kind, payload, at): an entry to append


def vote_entry(receipt: str, circuit: str, option: int, at: datetime) -> Pending:
    """A first vote: `circuit` is the circuit's code, as the results print it."""
    return "vote", {"receipt": receipt, "circuit": circuit, "option": option}, at


def replace_entry(receipt: str, replaces: str, circuit: str, option: int, at: datetime) -> Pending:
    """A vote that replaced the one with receipt `replaces` (policy `last`)."""
    payload = {"receipt": receipt, "replaces": replaces, "circuit": circuit, "option": option}
    return "replace", payload, at


def operator_entry(actor: str, action: str, detail: str, at: datetime) -> Pending:
    return "operator", {"actor": actor, "action": action, "detail": detail}, at


# --- the format ----------------------------------------------------------------------------


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def iso_utc(at: datetime) -> str:
    """Always the same width and zone, so the text hashed never depends on how `at` was made."""
    if at.tzinfo is None:
        raise ValueError("naive datetimes are refused: say which zone they are in")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def genesis(slug: str) -> str:
    """The `previous` of a consultation's first entry."""
    return hashlib.sha256(f"consulta:{slug}".encode()).hexdigest()


def link_digest(previous: str, seq: int, kind: str, payload: object, at: datetime) -> str:
    body = canonical_json({"seq": seq, "kind": kind, "payload": payload, "at": iso_utc(at)})
    return hashlib.sha256(f"{previous}\n{body}".encode("ascii")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One entry as stored or exported; `payload` is its canonical JSON text."""

    seq: int
    kind: str
    payload: str
    at: datetime
    previous: str
    digest: str


@dataclass(frozen=True)
class Head:
    """Where the chain ends: the last seq and its digest (seq 0 and genesis when empty)."""

    seq: int
    digest: str


# --- writing -------------------------------------------------------------------------------


def append(
    session: Session, consultation_id: int, kind: str, payload: Mapping[str, object], at: datetime
) -> None:
    """Append one entry in the caller's transaction."""
    append_many(session, consultation_id, [(kind, payload, at)])


def append_many(session: Session, consultation_id: int, entries: Sequence[Pending]) -> None:
    """Append entries in this order, in the caller's transaction, locking the head once.

    Call it once per transaction, after the transaction's other writes: the head lock is then
    held only until the commit, and every writer takes its locks in one order (the consultation,
    then the head), so writers wait for each other instead of deadlocking. A batch touching
    several consultations appends to them in order of their IDs, for the same reason.
    Build entries with `vote_entry`, `replace_entry` and `operator_entry`; any other shape is
    refused with ValueError.
    """
    if not entries:
        return
    new = list(links(_locked_head(session, consultation_id), entries))
    insert_rows(session, AuditEntryRow, [_row(consultation_id, entry) for entry in new])
    session.execute(
        update(AuditHeadRow)
        .where(AuditHeadRow.consultation_id == consultation_id)
        .values(seq=new[-1].seq, digest=new[-1].digest)
    )


def _row(consultation_id: int, entry: Entry) -> dict[str, object]:
    # By hand: `asdict` deep-copies every field, and this runs once per vote.
    return {"consultation_id": consultation_id, "seq": entry.seq, "kind": entry.kind,
            "payload": entry.payload, "at": entry.at, "previous": entry.previous,
            "digest": entry.digest}  # fmt: skip


def links(head: Head, entries: Iterable[Pending]) -> Iterator[Entry]:
    """The entries that follow `head`, each linked to the one before it. Pure."""
    for kind, payload, at in entries:
        _check_shape(kind, payload)
        seq = head.seq + 1
        digest = link_digest(head.digest, seq, kind, payload, at)
        yield Entry(seq, kind, canonical_json(payload), at, head.digest, digest)
        head = Head(seq, digest)


def _check_shape(kind: str, payload: Mapping[str, object]) -> None:
    expected = FIELDS.get(kind)
    if expected is None:
        raise ValueError(f"no audit entry of kind {kind!r}; the kinds are {sorted(FIELDS)}")
    if set(payload) != expected:
        raise ValueError(f"a {kind} entry has exactly {sorted(expected)}, not {sorted(payload)}")


def _locked_head(session: Session, consultation_id: int) -> Head:
    # The consultation first (FOR KEY SHARE, which a worker's inserts take anyway), then the
    # head: the order lifecycle moves take too. SQLite's BEGIN IMMEDIATE already serialises.
    slug = session.scalar(
        select(ConsultationRow.slug)
        .where(ConsultationRow.id == consultation_id)
        .with_for_update(read=True, key_share=True)
    )
    if slug is None:
        raise LookupError(f"there is no consultation with id {consultation_id}")
    # The first writer creates the head; a racing one finds it made, and both then lock it.
    session.execute(
        insert_ignoring_conflicts(session, AuditHeadRow).values(
            consultation_id=consultation_id, seq=0, digest=genesis(slug)
        )
    )
    seq, digest = session.execute(
        select(AuditHeadRow.seq, AuditHeadRow.digest)
        .where(AuditHeadRow.consultation_id == consultation_id)
        .with_for_update()
    ).one()
    return Head(seq, digest)


# --- checking ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Broken:
    """The first entry at which the chain fails, and why."""

    seq: int
    why: str


@dataclass(frozen=True)
class Verdict:
    checked: int  # entries read
    last: Head  # the last entry that verified
    broken: Broken | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def verify(entries: Iterable[Entry], genesis_digest: str, head: Head | None = None) -> Verdict:
    """Check entries in the order given, stopping at the first that fails.

    A forged entry made with the right formula verifies itself; the chain then breaks at the
    entry after it (or at the head), and that is the entry named.
    """
    last, checked = Head(0, genesis_digest), 0
    for entry in entries:
        checked += 1
        fault = _link_fault(entry, last)
        if fault is not None:
            return Verdict(checked, last, fault)
        last = Head(entry.seq, entry.digest)
    verdict = Verdict(checked, last, None)
    return verdict if head is None else against_head(verdict, head)


def against_head(verdict: Verdict, head: Head) -> Verdict:
    """An intact chain must also end where the head says: else entries were cut or added."""
    fault = _head_fault(verdict.last, head) if verdict.intact else None
    return verdict if fault is None else Verdict(verdict.checked, verdict.last, fault)


def _head_fault(last: Head, head: Head) -> Broken | None:
    if head.seq > last.seq:
        why = f"missing: the log ends at seq {last.seq}, the head says {head.seq}"
        return Broken(last.seq + 1, why)
    if head.seq < last.seq:
        return Broken(head.seq + 1, f"beyond the head, which says the log ends at {head.seq}")
    if head.digest != last.digest:
        return Broken(last.seq, "its digest is not the one the head holds")
    return None


def _link_fault(entry: Entry, last: Head) -> Broken | None:
    expected = last.seq + 1
    if entry.seq != expected:
        return Broken(expected, f"missing here: after seq {last.seq} comes seq {entry.seq}")
    payload = _parsed(entry.payload)
    if payload is None:
        return Broken(entry.seq, "its payload is not canonical JSON: it was edited")
    if link_digest(entry.previous, entry.seq, entry.kind, payload, entry.at) != entry.digest:
        return Broken(entry.seq, "its digest does not match its contents: it was edited")
    if entry.previous != last.digest:
        before = f"entry {last.seq}" if last.seq else "the genesis value"
        return Broken(entry.seq, f"its `previous` is not the digest of {before}")
    return None


def _parsed(text: str) -> object | None:
    """The payload, if `text` is exactly its canonical JSON (a reformatted one is an edit too)."""
    try:
        value: object = json.loads(text)
    except ValueError:
        return None
    return value if canonical_json(value) == text else None
