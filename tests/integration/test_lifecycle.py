"""The lifecycle as an operator drives it: draft -> open -> closed -> certified, on the record."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.cli import main
from gateway.db import make_engine, make_sessionmaker
from gateway.lifecycle import TransitionRefused, cli_actor, transition
from gateway.models import ConsultationRow, OperatorActionRow, VoteRow
from tests.conftest import SECRET
from tests.integration.test_sms_pipeline import post_sms, replies_to
from tests.support.factories import seed
from tests.support.pipeline import drain
from workers.runtime import Runtime

SLUG = "cpn-2026"
WINDOW = ["--opens", "2020-01-01T00:00", "--closes", "2099-12-31T23:59"]
ANA, LUIS = "+584141234567", "+584247654321"
Action = tuple[str, str, str]  # (actor, action, detail)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def consulta(database_url: str) -> CliRunner:
    return CliRunner(env={"DATABASE_URL": database_url, "CONSULTA_SECRET": SECRET})


def run(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args))


def create(runner: CliRunner, *rules: str) -> None:
    result = run(runner, "consultation", "create", SLUG, "--name", "Consulta", *WINDOW, *rules)
    assert result.exit_code == 0, result.output


def status(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        return session.scalars(select(ConsultationRow.status)).one()


def set_status(sessions: sessionmaker[Session], to: str) -> None:
    with sessions() as session, session.begin():
        session.execute(update(ConsultationRow).values(status=to))


def actions(sessions: sessionmaker[Session]) -> list[Action]:
    with sessions() as session:
        rows = session.scalars(select(OperatorActionRow).order_by(OperatorActionRow.id))
        return [(r.actor, r.action, r.detail) for r in rows]


def seed_of(sessions: sessionmaker[Session]) -> str | None:
    with sessions() as session:
        return session.scalars(select(ConsultationRow.lot_seed)).one()


def test_a_new_consultation_is_a_draft_and_its_creation_is_on_the_record(
    consulta: CliRunner, sessions: sessionmaker[Session]
) -> None:
    create(consulta, "--winners", "2", "--tie-break", "runoff", "--quorum", "0.15")
    assert status(sessions) == "draft"
    with sessions() as session:
        row = session.scalars(select(ConsultationRow)).one()
    assert (row.winners, row.tie_break, row.quorum, row.lot_seed) == (2, "runoff", 0.15, None)
    assert actions(sessions) == [
        (cli_actor(), "create", "winners 2; tie-break runoff; quorum 0.15")
    ]


def test_the_defaults_are_earliest_and_a_ten_percent_quorum(
    consulta: CliRunner, sessions: sessionmaker[Session]
) -> None:
    create(consulta)
    with sessions() as session:
        row = session.scalars(select(ConsultationRow)).one()
    assert (row.tie_break, row.quorum) == ("earliest", 0.10)


def test_a_draw_by_lot_gets_its_seed_at_creation_and_prints_it(
    consulta: CliRunner, sessions: sessionmaker[Session]
) -> None:
    result = run(
        consulta, "consultation", "create", SLUG, "--name", "C", *WINDOW, "--tie-break", "lot"
    )
    seed = seed_of(sessions)
    assert seed is not None
    assert len(seed) == 32
    int(seed, 16)  # hex
    assert f"seed {seed}" in result.stdout
    assert f"seed {seed}" in actions(sessions)[0][2]


def test_opening_keeps_the_published_seed(
    consulta: CliRunner, sessions: sessionmaker[Session]
) -> None:
    create(consulta, "--tie-break", "lot")
    published = seed_of(sessions)
    assert run(consulta, "consultation", "open", SLUG).exit_code == 0
    assert seed_of(sessions) == published
    assert actions(sessions)[-1][2] == "draft -> open"


def test_a_lot_consultation_made_without_a_seed_gets_one_when_it_opens(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, slug=SLUG)
    with sessions() as session, session.begin():
        session.execute(update(ConsultationRow).values(status="draft", tie_break="lot"))
    transition(sessions, SLUG, "open", "ops:ana")
    fixed = seed_of(sessions)
    assert fixed is not None
    assert actions(sessions) == [("ops:ana", "open", f"draft -> open; lot seed {fixed}")]


@pytest.mark.parametrize(
    "rule",
    [
        ["--quorum", "-0.1"],
        ["--quorum", "1.5"],
        ["--quorum", "diez"],
        ["--tie-break", "coin"],
    ],
    ids=[
        "a negative quorum is refused",
        "a quorum above one is refused",
        "a quorum in words is refused",
        "an unknown tie-break rule is refused",
    ],
)
def test_a_rule_outside_its_range_is_refused_and_nothing_is_written(
    consulta: CliRunner, sessions: sessionmaker[Session], rule: list[str]
) -> None:
    result = run(consulta, "consultation", "create", SLUG, "--name", "C", *WINDOW, *rule)
    assert result.exit_code == 2  # click's usage error, before anything is written
    assert rule[0] in result.output
    assert actions(sessions) == []
    with sessions() as session:
        assert session.scalars(select(ConsultationRow)).all() == []


@pytest.mark.parametrize(
    ("start", "command", "after", "action"),
    [
        ("draft", "open", "open", "open"),
        ("open", "close", "closed", "close"),
        ("closed", "certify", "certified", "certify"),
    ],
    ids=[
        "a draft opens",
        "an open consultation closes",
        "a closed consultation is certified",
    ],
)
def test_each_allowed_move_is_made_and_recorded_with_who_and_when(
    consulta: CliRunner,
    sessions: sessionmaker[Session],
    start: str,
    command: str,
    after: str,
    action: str,
) -> None:
    create(consulta)
    set_status(sessions, start)
    before = datetime.now(UTC)
    result = run(consulta, "consultation", command, SLUG)
    assert (result.exit_code, result.stdout) == (0, f"{SLUG} is now {after}\n")
    assert status(sessions) == after
    with sessions() as session:
        last = session.scalars(select(OperatorActionRow).order_by(OperatorActionRow.id)).all()[-1]
    assert (last.actor, last.action, last.detail) == (cli_actor(), action, f"{start} -> {after}")
    assert before <= last.at <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("start", "command", "message"),
    [
        ("draft", "close", "draft, so it cannot be closed: it can only be opened"),
        ("draft", "certify", "draft, so it cannot be certified: it can only be opened"),
        ("open", "open", "open, so it cannot be opened: it can only be closed"),
        ("open", "certify", "open, so it cannot be certified: it can only be closed"),
        ("closed", "open", "closed, so it cannot be opened: it can only be certified"),
        ("closed", "close", "closed, so it cannot be closed: it can only be certified"),
        ("certified", "open", "certified, so it cannot be opened: that is final"),
        ("certified", "close", "certified, so it cannot be closed: that is final"),
        ("certified", "certify", "certified, so it cannot be certified: that is final"),
    ],
    ids=[
        "a draft cannot be closed without opening",
        "a draft cannot be certified",
        "an open consultation cannot be opened again",
        "an open consultation cannot be certified before it closes",
        "a closed consultation is never reopened",
        "a closed consultation cannot be closed twice",
        "a certified consultation cannot be reopened",
        "a certified consultation cannot be closed",
        "a certified consultation cannot be certified twice",
    ],
)
def test_a_refused_move_exits_1_and_changes_nothing(
    consulta: CliRunner, sessions: sessionmaker[Session], start: str, command: str, message: str
) -> None:
    create(consulta)
    set_status(sessions, start)
    recorded = actions(sessions)
    result = run(consulta, "consultation", command, SLUG)
    assert result.exit_code == 1
    assert f"{SLUG} is {message}; nothing changed" in result.stderr
    assert "Traceback" not in result.output
    assert status(sessions) == start
    assert actions(sessions) == recorded


@pytest.mark.parametrize("command", ["open", "close", "certify"])
def test_moving_an_unknown_consultation_is_a_clear_error(consulta: CliRunner, command: str) -> None:
    result = run(consulta, "consultation", command, "nope")
    assert result.exit_code == 1
    assert "no consultation 'nope'" in result.stderr


def test_the_whole_lifecycle_leaves_a_full_record_in_order(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, slug=SLUG)
    set_status(sessions, "draft")
    for to in ("open", "closed", "certified"):
        transition(sessions, SLUG, to, "ops:ana")
    assert actions(sessions) == [
        ("ops:ana", "open", "draft -> open"),
        ("ops:ana", "close", "open -> closed"),
        ("ops:ana", "certify", "closed -> certified"),
    ]
    with pytest.raises(TransitionRefused, match="that is final"):
        transition(sessions, SLUG, "open", "ops:ana")


def test_two_operators_closing_at_once_make_one_move_and_one_record(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, slug=SLUG)
    start = threading.Barrier(2)
    refused: list[str] = []

    def close(actor: str) -> None:
        start.wait()
        try:
            transition(sessions, SLUG, "closed", actor)
        except TransitionRefused:
            refused.append(actor)

    threads = [threading.Thread(target=close, args=(f"ops:{n}",)) for n in ("ana", "luis")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [(actor, action, _)] = actions(sessions)
    assert action == "close"
    assert refused == [{"ops:ana": "ops:luis", "ops:luis": "ops:ana"}[actor]]


def test_the_list_shows_each_consultation_s_status(consulta: CliRunner) -> None:
    create(consulta)
    run(consulta, "consultation", "open", SLUG)
    _, row = run(consulta, "consultation", "list").stdout.splitlines()
    assert row.split()[:3] == [SLUG, "Consulta", "open"]


# --- votes through the SMS pipeline -----------------------------------------------------------


@pytest.fixture
def voters(rt: Runtime) -> None:
    born = date(1990, 5, 1)
    seed(rt.sessions, slug=SLUG, people=[("V1", "C1", born, [ANA]), ("V2", "C1", born, [LUIS])])


def counted(rt: Runtime) -> list[int]:
    with rt.sessions() as session:
        return list(session.scalars(select(VoteRow.option).where(VoteRow.replaced_at.is_(None))))


def vote_then_close_then_vote(client: FlaskClient, rt: Runtime) -> None:
    post_sms(client, ANA, "VOTO 3")
    drain(rt)
    transition(rt.sessions, SLUG, "closed", "ops:ana")
    post_sms(client, LUIS, "VOTO 2")
    drain(rt)


def test_a_vote_sent_after_the_close_is_not_counted(
    client: FlaskClient, rt: Runtime, voters: None
) -> None:
    vote_then_close_then_vote(client, rt)
    assert counted(rt) == [3]
    [reply] = replies_to(rt, LUIS)
    assert "registrado" not in reply


def test_a_vote_sent_after_the_close_gets_the_closed_reply(
    client: FlaskClient, rt: Runtime, voters: None
) -> None:
    vote_then_close_then_vote(client, rt)
    [reply] = replies_to(rt, LUIS)
    assert "ya cerro" in reply  # GSM-7 has no ó: the catalogue's SMS text drops the accent


def test_a_vote_received_before_the_close_but_still_queued_counts(
    client: FlaskClient, rt: Runtime, voters: None
) -> None:
    """Close is judged on the provider's receive time, not on when the worker gets to it."""
    post_sms(client, LUIS, "VOTO 2")  # received while open; the worker has not run yet
    transition(rt.sessions, SLUG, "closed", "cli:test")
    drain(rt)
    assert counted(rt) == [2]


def test_a_vote_to_a_draft_is_not_counted_until_it_opens(
    client: FlaskClient, rt: Runtime, voters: None
) -> None:
    set_status(rt.sessions, "draft")
    post_sms(client, ANA, "VOTO 3")
    drain(rt)
    assert counted(rt) == []
    transition(rt.sessions, SLUG, "open", "ops:ana")
    post_sms(client, ANA, "VOTO 3")
    drain(rt)
    assert counted(rt) == [3]
    refused, confirmed = replies_to(rt, ANA)
    assert "registrado" not in refused
    assert "registrado" in confirmed
