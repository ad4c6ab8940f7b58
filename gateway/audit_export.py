"""The vote log as a file anyone can recheck without our database: JSON Lines.

One entry per line, `{"at", "digest", "kind", "payload", "previous", "seq"}`, then a last line
`{"head": {"digest", "seq", "slug"}}`. A file cut short has no head line, and shows as broken.

The file links each receipt with its option: hand it to auditors and observers, do not publish
it. A voter shown their own receipt (by a coercer, say) would show their choice. What is
published is the seal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.orm import Session

from gateway.audit import (
    Broken,
    Entry,
    Head,
    Verdict,
    against_head,
    canonical_json,
    genesis,
    iso_utc,
    verify,
)
from gateway.audit_recount import Recount
from gateway.audit_store import (
    Check,
    consistent_snapshot,
    consultation_id,
    stored_entries,
    stored_head,
)


class ExportUnreadable(ValueError):  # noqa: N818 - reads better than ...Error at call sites
    """A line that is not an entry or a head: the file was damaged or edited by hand."""


def export(session: Session, slug: str, out: TextIO) -> tuple[int, Head]:
    """Write SLUG's log and head to `out`, as of one moment; the entries written and the head."""
    consistent_snapshot(session)
    consultation = consultation_id(session, slug)
    head = stored_head(session, consultation, slug)
    written = 0
    # Everything stored, as stored: a damaged log must fail the file's check as it fails ours.
    for entry in stored_entries(session, consultation):
        out.write(entry_line(entry) + "\n")
        written += 1
    out.write(canonical_json({"head": {"slug": slug, "seq": head.seq, "digest": head.digest}}))
    out.write("\n")
    return written, head


def entry_line(entry: Entry) -> str:
    line = {
        "seq": entry.seq,
        "kind": entry.kind,
        "payload": _payload(entry.payload),
        "at": iso_utc(entry.at),
        "previous": entry.previous,
        "digest": entry.digest,
    }
    return canonical_json(line)


def _payload(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text  # not JSON: written as the bare text, which cannot match its digest


def check_export(path: Path, slug: str) -> Check:
    """Verify an export of SLUG against its own head line, and recount its votes."""
    head = _head_line(path, slug)
    recount = Recount()
    with path.open(encoding="utf-8") as lines:
        verdict = verify(recount.counting(_entries(lines)), genesis(slug))
    if head is not None:
        verdict = against_head(verdict, head)
    elif verdict.intact:
        why = "missing: the file has no head line after it, so it was cut short"
        verdict = Verdict(verdict.checked, verdict.last, Broken(verdict.last.seq + 1, why))
    return Check(slug, verdict, recount)


def _head_line(path: Path, slug: str) -> Head | None:
    """The head, read first, so that an export of another consultation is named as such."""
    last = ""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            last = line if line.strip() else last
    record = _record(0, last) if last.strip() else {}
    if "head" not in record:
        return None
    head = record["head"]
    try:
        found, seq, digest = str(head["slug"]), int(head["seq"]), str(head["digest"])
    except (TypeError, KeyError, ValueError):
        raise ExportUnreadable("the head line has no slug, seq and digest") from None
    if found != slug:
        raise ExportUnreadable(f"this is an export of {found!r}, not of {slug!r}")
    return Head(seq, digest)


def _entries(lines: Iterable[str]) -> Iterator[Entry]:
    """Every entry line up to the head line; a line that is neither is refused with its number."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _record(number, line)
        if "head" in record:
            return
        yield _entry(number, record)


def _record(number: int, line: str) -> dict[str, Any]:
    where = f"line {number}" if number else "the last line"
    try:
        record = json.loads(line)
    except ValueError:
        raise ExportUnreadable(f"{where}: not JSON") from None
    if not isinstance(record, dict):
        raise ExportUnreadable(f"{where}: not an entry")
    return record


def _entry(number: int, record: dict[str, Any]) -> Entry:
    try:
        return Entry(
            seq=int(record["seq"]),
            kind=str(record["kind"]),
            payload=canonical_json(record["payload"]),
            at=_moment(record["at"]),
            previous=str(record["previous"]),
            digest=str(record["digest"]),
        )
    except (TypeError, KeyError, ValueError) as exc:
        raise ExportUnreadable(f"line {number}: not an entry ({exc})") from None


def _moment(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"{text!r} has no zone")
    return at
