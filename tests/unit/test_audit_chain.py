"""The vote log's chain, checked without a database: every kind of edit, and where it shows."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.audit import (
    Entry,
    Head,
    Pending,
    genesis,
    iso_utc,
    link_digest,
    links,
    operator_entry,
    replace_entry,
    verify,
    vote_entry,
)
from gateway.audit_recount import Recount

SLUG = "cpn-2026"
T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
Log = tuple[list[Entry], Head]


def pending(n: int) -> list[Pending]:
    """An operator opening the consultation, then votes, with a replacement every fifth."""
    entries: list[Pending] = [operator_entry("cli:ana", "open", "draft -> open", T0)]
    for i in range(2, n + 1):
        at = T0 + timedelta(seconds=i)
        if i % 5 == 0:
            entries.append(replace_entry(f"R{i}", f"R{i - 1}", "C1", 2, at))
        else:
            entries.append(vote_entry(f"R{i}", f"C{i % 3 + 1}", i % 4 + 1, at))
    return entries


def chain(n: int = 10, slug: str = SLUG) -> Log:
    entries = list(links(Head(0, genesis(slug)), pending(n)))
    return entries, Head(entries[-1].seq, entries[-1].digest)


def relinked(entry: Entry) -> Entry:
    """The entry with its digest recomputed: a forger who knows the formula."""
    payload = json.loads(entry.payload)
    digest = link_digest(entry.previous, entry.seq, entry.kind, payload, entry.at)
    return dataclasses.replace(entry, digest=digest)


def changed(n: int, log: Log, **changes: object) -> Log:
    """Entry `n` with some fields changed, nothing else touched."""
    entries, head = log
    entries = list(entries)
    entries[n - 1] = dataclasses.replace(entries[n - 1], **changes)  # type: ignore[arg-type]
    return entries, head


def without(seqs: set[int], log: Log) -> Log:
    return [e for e in log[0] if e.seq not in seqs], log[1]


def swapped_seq(i: int, j: int, log: Log) -> Log:
    """Two rows trade their seq, then are read back in seq order, as the database reads them."""
    entries = [dataclasses.replace(e, seq={i: j, j: i}.get(e.seq, e.seq)) for e in log[0]]
    return sorted(entries, key=lambda e: e.seq), log[1]


def swapped_lines(i: int, j: int, log: Log) -> Log:
    """Two lines of an export trade places."""
    entries = list(log[0])
    entries[i - 1], entries[j - 1] = entries[j - 1], entries[i - 1]
    return entries, log[1]


def forged_after(log: Log) -> Log:
    entries, head = log
    last = entries[-1]
    [forged] = links(Head(last.seq, last.digest), [vote_entry("FAKE", "C1", 1, T0)])
    return [*entries, forged], head


def forged_in_middle(seq: int, log: Log) -> Log:
    """A well-formed entry slipped in at `seq`, the rest moved one place up."""
    entries, head = log
    before = entries[seq - 2]
    [forged] = links(Head(before.seq, before.digest), [vote_entry("FAKE", "C1", 1, T0)])
    moved = [dataclasses.replace(e, seq=e.seq + 1) for e in entries[seq - 1 :]]
    return [*entries[: seq - 1], forged, *moved], head


def edited_and_relinked(seq: int, log: Log) -> Log:
    entries, head = changed(seq, log, payload='{"circuit":"C1","option":1,"receipt":"R4"}')
    entries[seq - 1] = relinked(entries[seq - 1])
    return entries, head


def rewritten_from(seq: int, log: Log) -> Log:
    """Everything from `seq` on rewritten and relinked, the head too: what the seal is for."""
    entries, _ = log
    kept = entries[: seq - 1]
    start = Head(kept[-1].seq, kept[-1].digest)
    tail = list(links(start, [vote_entry(f"X{i}", "C1", 1, T0) for i in range(3)]))
    return [*kept, *tail], Head(tail[-1].seq, tail[-1].digest)


OTHER_CHOICE = '{"circuit":"C2","option":9,"receipt":"R4"}'
SPACED = '{"circuit": "C2", "option": 1, "receipt": "R4"}'  # the same entry 4, with spaces
EDITS: list[tuple[str, Callable[[Log], Log], int, str]] = [
    ("a changed option", lambda g: changed(4, g, payload=OTHER_CHOICE), 4, "edited"),
    ("a changed kind", lambda g: changed(4, g, kind="replace"), 4, "edited"),
    ("a changed time", lambda g: changed(4, g, at=T0 + timedelta(hours=1)), 4, "edited"),
    ("a changed seq on one row", lambda g: changed(4, g, seq=40), 4, "missing here"),
    ("a reformatted payload", lambda g: changed(4, g, payload=SPACED), 4, "not canonical"),
    ("a payload that is not JSON", lambda g: changed(4, g, payload="R4 C2 1"), 4, "not canonical"),
    ("a changed previous", lambda g: changed(4, g, previous="0" * 64), 4, "edited"),
    ("a changed digest", lambda g: changed(4, g, digest="0" * 64), 4, "edited"),
    ("the first entry deleted", lambda g: without({1}, g), 1, "missing here"),
    ("a middle entry deleted", lambda g: without({6}, g), 6, "missing here"),
    ("three middle entries deleted", lambda g: without({3, 4, 5}, g), 3, "missing here"),
    ("the last entry deleted", lambda g: without({10}, g), 10, "the head says 10"),
    ("the last three entries deleted", lambda g: without({8, 9, 10}, g), 8, "the head says"),
    ("every entry deleted", lambda g: ([], g[1]), 1, "the head says 10"),
    ("two rows' seqs swapped", lambda g: swapped_seq(3, 7, g), 3, "edited"),
    ("neighbouring rows' seqs swapped", lambda g: swapped_seq(9, 10, g), 9, "edited"),
    ("two export lines swapped", lambda g: swapped_lines(3, 7, g), 3, "missing here"),
    ("an entry repeated", lambda g: (g[0][:5] + g[0][4:], g[1]), 6, "after seq 5 comes seq 5"),
    ("a well-formed entry added at the end", forged_after, 11, "beyond the head"),
    ("a well-formed entry slipped into the middle", lambda g: forged_in_middle(5, g), 6,
     "edited"),
    ("an edit hidden by a recomputed digest", lambda g: edited_and_relinked(4, g), 5,
     "not the digest of entry 4"),
    ("an edit of the last entry hidden by a recomputed digest",
     lambda g: edited_and_relinked(10, g), 10, "the head holds"),
    ("the first entry relinked to another start", lambda g: changed(1, g, previous="0" * 64), 1,
     "edited"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "first_broken", "why"),
    [pytest.param(edit, seq, why, id=label) for label, edit, seq, why in EDITS],
)
def test_an_edit_is_caught_at_the_first_entry_it_breaks(
    edit: Callable[[Log], Log], first_broken: int, why: str
) -> None:
    entries, head = edit(chain(10))
    verdict = verify(entries, genesis(SLUG), head)
    assert verdict.broken is not None
    assert verdict.broken.seq == first_broken
    assert why in verdict.broken.why


def test_an_intact_chain_verifies_and_ends_at_its_head() -> None:
    entries, head = chain(10)
    verdict = verify(entries, genesis(SLUG), head)
    assert verdict.intact
    assert (verdict.checked, verdict.last) == (10, head)


def test_an_empty_log_with_no_head_is_intact() -> None:
    assert verify([], genesis(SLUG), Head(0, genesis(SLUG))).intact


def test_a_chain_checked_against_another_consultation_breaks_at_its_first_entry() -> None:
    entries, head = chain(10, slug="other")
    broken = verify(entries, genesis(SLUG), head).broken
    assert broken is not None
    assert (broken.seq, "genesis" in broken.why) == (1, True)


def test_without_the_head_cutting_the_end_goes_unseen_which_is_why_the_head_is_kept() -> None:
    entries, _ = without({9, 10}, chain(10))
    assert verify(entries, genesis(SLUG)).intact


def test_a_rewrite_of_the_tail_and_the_head_verifies_but_ends_in_another_digest() -> None:
    original = chain(10)
    entries, head = rewritten_from(4, original)
    assert verify(entries, genesis(SLUG), head).intact
    assert head.digest != original[1].digest  # what the published seal shows


def test_the_digest_is_the_documented_formula() -> None:
    """Pinned, so that anyone can write their own checker from the module's docstring."""
    [entry] = links(Head(0, genesis(SLUG)), [vote_entry("K7Q-2M9-XAB", "C1", 3, T0)])
    start = hashlib.sha256(b"consulta:cpn-2026").hexdigest()
    body = (
        '{"at":"2026-03-08T12:00:00.000000Z","kind":"vote",'
        '"payload":{"circuit":"C1","option":3,"receipt":"K7Q-2M9-XAB"},"seq":1}'
    )
    assert entry.previous == start
    assert entry.digest == hashlib.sha256(f"{start}\n{body}".encode()).hexdigest()
    assert entry.payload == '{"circuit":"C1","option":3,"receipt":"K7Q-2M9-XAB"}'


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        pytest.param(T0, "2026-03-08T12:00:00.000000Z", id="UTC is written with a Z"),
        pytest.param(
            datetime(2026, 3, 8, 8, 0, tzinfo=timezone(timedelta(hours=-4))),
            "2026-03-08T12:00:00.000000Z",
            id="another zone is written as the same UTC moment",
        ),
        pytest.param(
            T0.replace(microsecond=5), "2026-03-08T12:00:00.000005Z", id="microseconds are kept"
        ),
    ],
)
def test_times_are_hashed_as_utc_with_a_fixed_width(moment: datetime, text: str) -> None:
    assert iso_utc(moment) == text


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        iso_utc(datetime(2026, 3, 8, 12, 0))  # noqa: DTZ001 - the naive time is the point


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        pytest.param("vote", {"receipt": "R", "circuit": "C1", "option": 1, "phone": "+58414"},
                     id="a vote carrying a phone"),
        pytest.param("vote", {"receipt": "R", "circuit": "C1", "option": 1, "national_id": "V1"},
                     id="a vote carrying a national ID"),
        pytest.param("vote", {"receipt": "R", "circuit": "C1"}, id="a vote without its option"),
        pytest.param("operator", {"actor": "ana", "action": "open"},
                     id="an operator action without its detail"),
        pytest.param("login", {"actor": "ana"}, id="a kind the log does not know"),
    ],
)  # fmt: skip
def test_only_the_known_fields_get_into_the_log(kind: str, payload: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=kind):
        list(links(Head(0, genesis(SLUG)), [(kind, payload, T0)]))


# --- the recount ---------------------------------------------------------------------------


def recount(*entries: Pending) -> Recount:
    counted = Recount()
    for entry in links(Head(0, genesis(SLUG)), entries):
        counted.add(entry)
    return counted


@pytest.mark.parametrize(
    ("entries", "votes"),
    [
        pytest.param([vote_entry("A", "C1", 1, T0), vote_entry("B", "C1", 1, T0),
                      vote_entry("C", "C2", 3, T0)], {("C1", 1): 2, ("C2", 3): 1},
                     id="votes add one each"),
        pytest.param([vote_entry("A", "C1", 1, T0), replace_entry("B", "A", "C1", 2, T0)],
                     {("C1", 2): 1}, id="a replacement moves the vote"),
        pytest.param([vote_entry("A", "C1", 1, T0), replace_entry("B", "A", "C1", 2, T0),
                      replace_entry("C", "B", "C1", 1, T0)], {("C1", 1): 1},
                     id="a replacement of a replacement moves it again"),
        pytest.param([replace_entry("B", "A", "C1", 2, T0), vote_entry("A", "C1", 1, T0)],
                     {("C1", 2): 1}, id="a replacement logged before its vote still moves it"),
        pytest.param([operator_entry("cli:ana", "open", "draft -> open", T0)], {},
                     id="operator actions count nothing"),
    ],
)  # fmt: skip
def test_the_recount_follows_votes_and_replacements(
    entries: list[Pending], votes: dict[tuple[str, int], int]
) -> None:
    counted = recount(*entries)
    assert dict(counted.votes) == votes
    assert counted.anomalies == []


@pytest.mark.parametrize(
    ("entries", "anomaly"),
    [
        pytest.param([replace_entry("B", "A", "C1", 2, T0)],
                     "seq 1: replaces A, which no vote in the log carries",
                     id="replacing a receipt never logged"),
        pytest.param([vote_entry("A", "C1", 1, T0), replace_entry("B", "A", "C1", 2, T0),
                      replace_entry("C", "A", "C1", 3, T0)],
                     "seq 3: replaces A, which seq 2 replaced", id="replacing the same vote twice"),
        pytest.param([vote_entry("A", "C1", 1, T0), vote_entry("A", "C2", 1, T0)],
                     "seq 2: receipt A was already logged", id="one receipt logged twice"),
    ],
)  # fmt: skip
def test_the_recount_names_what_no_correct_writer_logs(
    entries: list[Pending], anomaly: str
) -> None:
    assert any(anomaly in a for a in recount(*entries).anomalies)


def test_the_recount_prints_one_sorted_line_per_circuit_and_option() -> None:
    counted = recount(vote_entry("B", "C2", 1, T0), vote_entry("A", "C1", 2, T0))
    assert counted.table() == ["C1\t2\t1", "C2\t1\t1"]
