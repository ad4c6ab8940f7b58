"""Every keyword through the real pipeline: webhook, batch job, reply rows."""

from __future__ import annotations

from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from gateway.models import InboundRow, OutboundRow, VoteRow
from messages.catalogue import render
from tests.integration.test_sms_pipeline import ANA, post_sms, replies_to
from tests.support.factories import seed
from tests.support.pipeline import drain
from workers.runtime import Runtime

SHARED = "+584241112233"  # two people on one phone
STRANGER = "+584269998877"
NAME = "Consulta de prueba"


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(
        rt.sessions,
        ballots={"C1": 5, "C2": 7},
        people=[
            ("V12345678", "C1", date(1990, 5, 1), [ANA]),
            ("V20111222", "C2", date(2001, 7, 30), [SHARED]),
            ("V25333444", "C2", date(2008, 1, 5), [SHARED]),
        ],
    )


def exchange(client: FlaskClient, rt: Runtime, sender: str, *bodies: str) -> list[str]:
    """Send each body in turn (each processed before the next) and return the new replies."""
    before = len(replies_to(rt, sender))
    for body in bodies:
        post_sms(client, sender, body)
        drain(rt)
    return replies_to(rt, sender)[before:]


def outcomes(rt: Runtime) -> list[str | None]:
    with rt.sessions() as session:
        return list(session.scalars(select(InboundRow.outcome).order_by(InboundRow.id)))


@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param("AYUDA", "help", id="AYUDA explains how to vote"),
        pytest.param("help", "help", id="HELP explains how to vote"),
        pytest.param("Ayúda", "help", id="keywords ignore accents and case"),
    ],
)
def test_help_keywords_explain_how_to_vote(
    client: FlaskClient, rt: Runtime, registry: None, body: str, key: str
) -> None:
    assert exchange(client, rt, ANA, body) == [render(key, "es")]


def test_opciones_lists_the_senders_own_ballot(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    [listing] = exchange(client, rt, ANA, "OPCIONES")
    assert render("options_header", "es", name=NAME) in listing
    for n in range(1, 6):
        assert f"{n} Proyecto C1-{n}" in listing
    assert "C2-" not in listing


def test_opciones_on_a_shared_phone_asks_for_the_id_then_lists_that_ballot(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    asked, *listing = exchange(client, rt, SHARED, "OPCIONES", "OPCIONES V-20.111.222")
    assert asked == render("id_needed", "es", name=NAME)
    assert "7 Proyecto C2-7" in "\n".join(listing)


def test_estado_says_not_voted_then_gives_the_receipt(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    before, _, after = exchange(client, rt, ANA, "ESTADO", "VOTO 2", "status")
    with rt.sessions() as session:
        receipt = session.scalar(select(VoteRow.receipt))
    assert before == render("status_not_voted", "es", name=NAME)
    assert after == render("status_voted", "es", name=NAME, receipt=receipt)


def test_estado_from_a_stranger_reveals_nothing(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    [answer] = exchange(client, rt, STRANGER, "ESTADO V12345678")
    assert answer == render("not_registered", "es", name=NAME)


def test_recibo_confirms_a_counted_receipt_without_the_choice(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    exchange(client, rt, ANA, "VOTO 4")
    with rt.sessions() as session:
        receipt = session.scalar(select(VoteRow.receipt))
    assert receipt
    [answer] = exchange(client, rt, STRANGER, f"RECIBO {receipt}")
    assert answer == render("receipt_counted", "es", receipt=receipt, name=NAME)


def test_stop_is_never_a_vote_silences_replies_and_start_lifts_it(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    assert exchange(client, rt, ANA, "STOP", "AYUDA", "VOTO 3") == []
    with rt.sessions() as session:
        votes = session.scalars(select(VoteRow)).all()
    assert len(votes) == 1  # the later VOTO 3 counts; only replies are silenced
    assert outcomes(rt)[:2] == ["stop", "help"]
    assert exchange(client, rt, ANA, "ALTA") == [render("opted_in", "es")]
    assert exchange(client, rt, ANA, "AYUDA") == [render("help", "es")]


def test_baja_alone_is_an_opt_out_and_not_a_vote(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    assert exchange(client, rt, ANA, "baja") == []
    with rt.sessions() as session:
        assert session.scalars(select(VoteRow)).all() == []
        assert session.scalars(select(OutboundRow)).all() == []


def test_idioma_switches_the_phone_to_english_and_back(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    switched, helped, back = exchange(client, rt, ANA, "IDIOMA EN", "HELP", "LANGUAGE ES")
    assert switched == render("language_set", "en")
    assert helped == render("help", "en")
    assert back == render("language_set", "es")


def test_an_unknown_language_lists_the_available_ones(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    [answer] = exchange(client, rt, ANA, "IDIOMA klingon")
    assert answer == render("language_unknown", "es", choices="EN, ES")


def test_every_reply_records_its_encoding_and_segments(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    exchange(client, rt, ANA, "AYUDA", "VOTO 9", "VOTO 1")
    with rt.sessions() as session:
        billed = session.execute(select(OutboundRow.encoding, OutboundRow.segments)).all()
    assert billed == [("GSM-7", 1)] * 3


def test_with_ucs2_allowed_replies_keep_accents_and_record_the_cost(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    rt.settings = rt.settings.with_(allow_ucs2=True)
    [answer] = exchange(client, rt, ANA, "VOTO 1")
    with rt.sessions() as session:
        encoding, segments = session.execute(
            select(OutboundRow.encoding, OutboundRow.segments)
        ).one()
    assert "Envía" in answer
    assert (encoding, segments) == ("UCS-2", 3)


def test_a_message_with_dozens_of_numbers_gets_a_one_segment_question_back(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    [answer] = exchange(client, rt, ANA, "VOTO " + " ".join(str(n) for n in range(1, 40)))
    with rt.sessions() as session:
        billed = session.execute(select(OutboundRow.segments)).scalar_one()
    assert "1, 2, 3, 4, 5, 6, 7, 8, 9, ..." in answer
    assert billed == 1
    assert outcomes(rt) == ["ambiguous"]
