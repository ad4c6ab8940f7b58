"""The vote log in the database: appending, writers at once, operator actions, seal, export.

The `consulta audit` command is tested in test_audit_cli.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from gateway.audit import (
    Pending,
    append,
    append_many,
    genesis,
    replace_entry,
    vote_entry,
)
from gateway.audit_export import check_export, export
from gateway.audit_store import Check, check_stored, seal, stored_entries, stored_head
from gateway.db import make_engine, make_sessionmaker, transaction
from gateway.lifecycle import TransitionRefused, transition
from gateway.models import AuditEntryRow, OperatorActionRow, VoteRow
from tests.support.factories import Seeded, seed

SLUG = "cpn-2026"
T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def consultation(sessions: sessionmaker[Session]) -> Seeded:
    return seed(sessions, slug=SLUG, ballots={"C1": 3, "C2": 3})


def write(sessions: sessionmaker[Session], consultation_id: int, entries: list[Pending]) -> None:
    with transaction(sessions) as session:
        append_many(session, consultation_id, entries)


def cast(sessions: sessionmaker[Session], seeded: Seeded, *votes: tuple[str, str, int]) -> None:
    """Votes as the booth stores them: the `votes` rows and their entries in one transaction."""
    with transaction(sessions) as session:
        session.add_all(
            VoteRow(
                receipt=receipt,
                consultation_id=seeded.consultation_id,
                circuit_id=seeded.circuits[code],
                option=option,
                cast_at=T0,
            )
            for receipt, code, option in votes
        )
        entries = [vote_entry(r, c, o, T0) for r, c, o in votes]
        append_many(session, seeded.consultation_id, entries)


def checked(sessions: sessionmaker[Session], slug: str = SLUG) -> Check:
    with sessions() as session:
        return check_stored(session, slug)


def sql(sessions: sessionmaker[Session], statement: str) -> None:
    """Tampering as someone with a database console would do it."""
    with transaction(sessions) as session:
        session.execute(text(statement))


def votes(n: int, prefix: str = "R") -> list[Pending]:
    return [
        vote_entry(f"{prefix}{i}", "C1", i % 3 + 1, T0 + timedelta(seconds=i)) for i in range(n)
    ]


def receipts(sessions: sessionmaker[Session], consultation_id: int) -> list[str]:
    with sessions() as session:
        rows = session.scalars(
            select(AuditEntryRow.payload)
            .where(AuditEntryRow.consultation_id == consultation_id)
            .order_by(AuditEntryRow.seq)
        )
        return [payload.split('"receipt":"')[1].split('"')[0] for payload in rows]


# --- appending -----------------------------------------------------------------------------


def test_entries_appended_in_several_transactions_make_one_intact_chain(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    write(sessions, consultation.consultation_id, votes(3))
    with transaction(sessions) as session:
        append(session, consultation.consultation_id, *vote_entry("LAST", "C2", 2, T0))
    check = checked(sessions)
    assert check.verdict.intact
    assert check.verdict.last.seq == 4
    assert receipts(sessions, consultation.consultation_id) == ["R0", "R1", "R2", "LAST"]


def test_the_head_holds_the_last_seq_and_digest_and_the_chain_starts_at_genesis(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    write(sessions, consultation.consultation_id, votes(5))
    with sessions() as session:
        entries = list(stored_entries(session, consultation.consultation_id))
        head = stored_head(session, consultation.consultation_id, SLUG)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].previous == genesis(SLUG)
    assert (head.seq, head.digest) == (5, entries[-1].digest)


def test_each_consultation_has_its_own_chain(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    other = seed(sessions, slug="otra", ballots={"C1": 2})
    write(sessions, consultation.consultation_id, votes(3))
    write(sessions, other.consultation_id, votes(2, prefix="O"))
    assert checked(sessions).verdict.last.seq == 3
    assert checked(sessions, "otra").verdict.last.seq == 2


def test_a_rolled_back_transaction_leaves_no_entry(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    def failing_batch() -> None:
        with transaction(sessions) as session:
            append_many(session, consultation.consultation_id, votes(3))
            raise RuntimeError("the batch failed after its entries were written")

    with pytest.raises(RuntimeError):
        failing_batch()
    check = checked(sessions)
    assert (check.verdict.intact, check.verdict.checked) == (True, 0)


# --- writers at the same moment -------------------------------------------------------------


def test_a_second_writer_waits_for_the_first_and_follows_it(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    write(sessions, consultation.consultation_id, votes(1))
    done, errors = threading.Event(), []

    def second() -> None:
        try:
            write(sessions, consultation.consultation_id, [vote_entry("SECOND", "C1", 1, T0)])
            done.set()
        except Exception as exc:  # noqa: BLE001 - reported to the test thread below
            errors.append(exc)

    with sessions() as first, first.begin():
        append(first, consultation.consultation_id, *vote_entry("FIRST", "C1", 2, T0))
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not done.wait(0.5), "the second writer did not wait for the head"
    waiter.join(timeout=30)
    assert (errors, done.is_set()) == ([], True)
    assert receipts(sessions, consultation.consultation_id) == ["R0", "FIRST", "SECOND"]
    assert checked(sessions).verdict.intact


def test_writers_racing_from_an_empty_log_give_one_gapless_chain(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    writers, batches, size = 4, 20, 10
    start, errors = threading.Barrier(writers), []

    def writer(name: str) -> None:
        try:
            start.wait()  # every writer meets the missing head at once
            for batch in range(batches):
                write(sessions, consultation.consultation_id, votes(size, f"{name}-{batch}-"))
        except Exception as exc:  # noqa: BLE001 - reported to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"W{i}",)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    check = checked(sessions)
    assert check.verdict.intact
    assert check.verdict.last.seq == writers * batches * size
    found = receipts(sessions, consultation.consultation_id)
    assert len(set(found)) == writers * batches * size
    for name in (f"W{i}" for i in range(writers)):  # each writer's batches stay in its order
        mine = [r for r in found if r.startswith(f"{name}-")]
        assert mine == [f"{name}-{b}-{i}" for b in range(batches) for i in range(size)]


# --- operator actions ------------------------------------------------------------------------


def test_every_lifecycle_move_is_chained_with_its_operator_action(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    transition(sessions, SLUG, "closed", "cli:ana")
    transition(sessions, SLUG, "certified", "luis")
    with sessions() as session:
        entries = list(stored_entries(session, consultation.consultation_id))
        actions = session.execute(
            select(OperatorActionRow.at).order_by(OperatorActionRow.id)
        ).scalars()
        times = list(actions)
    assert [(e.kind, e.payload) for e in entries] == [
        ("operator", '{"action":"close","actor":"cli:ana","detail":"open -> closed"}'),
        ("operator", '{"action":"certify","actor":"luis","detail":"closed -> certified"}'),
    ]
    assert [e.at for e in entries] == times
    assert checked(sessions).verdict.intact


def test_a_refused_move_chains_nothing(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    with pytest.raises(TransitionRefused):
        transition(sessions, SLUG, "certified", "cli:ana")
    assert checked(sessions).verdict.checked == 0


# --- the seal and the export ---------------------------------------------------------------


def test_the_seal_is_the_head_and_the_count_of_each_kind(
    sessions: sessionmaker[Session], consultation: Seeded
) -> None:
    transition(sessions, SLUG, "closed", "cli:ana")
    write(sessions, consultation.consultation_id, votes(4))
    write(sessions, consultation.consultation_id, [replace_entry("N", "R1", "C1", 3, T0)])
    with sessions() as session:
        found = seal(session, SLUG)
        head = stored_head(session, consultation.consultation_id, SLUG)
    assert (found.seq, found.digest) == (6, head.digest)
    assert found.kinds == {"operator": 1, "vote": 4, "replace": 1}


def test_an_export_rechecks_and_recounts_without_the_database(
    sessions: sessionmaker[Session], consultation: Seeded, tmp_path: Path
) -> None:
    write(sessions, consultation.consultation_id, votes(6))
    write(sessions, consultation.consultation_id, [replace_entry("N", "R0", "C2", 3, T0)])
    path = tmp_path / "log.jsonl"
    with sessions() as session, path.open("w") as out:
        written, head = export(session, SLUG, out)
    assert written == 7
    assert len(path.read_text().splitlines()) == 8  # and the head line
    from_file, from_database = check_export(path, SLUG), checked(sessions)
    assert from_file.verdict == from_database.verdict
    assert from_file.verdict.last == head
    assert from_file.recount.votes == from_database.recount.votes
    assert dict(from_file.recount.votes) == {("C1", 1): 1, ("C1", 2): 2, ("C1", 3): 2, ("C2", 3): 1}
