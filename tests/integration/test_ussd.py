"""USSD end to end: both aggregator styles, through the menu, the queue and the worker."""

from __future__ import annotations

import json
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gateway.models import InboundRow, PhonePreferenceRow, VoteRow
from gateway.settings import Settings
from gateway.sql import upsert
from tests.integration.test_sms_pipeline import ANA, post_sms, replies_to
from tests.support.factories import seed
from tests.support.pipeline import drain
from workers.runtime import Runtime

AT_SECRET = "at-secret-123"
HUBTEL_SECRET = "hubtel-secret-456"
SHARED = "+584241112233"
STRANGER = "+584269998877"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(africastalking_secret=AT_SECRET, hubtel_secret=HUBTEL_SECRET)


@pytest.fixture
def registry(rt: Runtime) -> None:
    seed(
        rt.sessions,
        ballots={"C1": 5, "C2": 9},
        people=[
            ("V12345678", "C1", date(1990, 5, 1), [ANA]),
            ("V20111222", "C2", date(2001, 7, 30), [SHARED]),
            ("V25333444", "C2", date(2008, 1, 5), [SHARED]),
        ],
    )


def at_hop(client: FlaskClient, session: str, phone: str, text: str, secret: str = AT_SECRET):  # type: ignore[no-untyped-def]
    form = {
        "sessionId": session,
        "phoneNumber": phone,
        "networkCode": "73401",
        "serviceCode": "*123#",
        "text": text,
    }
    return client.post(f"/ussd/africastalking/{secret}", data=form)


def at_dial(client: FlaskClient, session: str, phone: str, *inputs: str) -> list[str]:
    """Walk a session as Africa's Talking sends it: the whole path every time."""
    screens = [at_hop(client, session, phone, "").get_data(as_text=True)]
    for n in range(1, len(inputs) + 1):
        screens.append(at_hop(client, session, phone, "*".join(inputs[:n])).get_data(as_text=True))
    return screens


def hubtel_hop(client: FlaskClient, session: str, phone: str, kind: str, message: str = ""):  # type: ignore[no-untyped-def]
    payload = {
        "Type": kind,
        "Message": message,
        "SessionId": session,
        "Mobile": phone,
        "ServiceCode": "*123#",
        "Sequence": 1,
    }
    return client.post(f"/ussd/hubtel/{HUBTEL_SECRET}", json=payload)


def votes(rt: Runtime) -> list[int]:
    with rt.sessions() as session:
        return list(session.scalars(select(VoteRow.option).where(VoteRow.replaced_at.is_(None))))


def test_a_full_africastalking_vote_ends_in_a_stored_vote_and_an_sms(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    screens = at_dial(client, "ATs1", ANA, "1", "3", "1")
    assert screens[0].startswith("CON Consulta Consulta de prueba")
    assert "3 Proyecto C1-3" in screens[1]
    assert screens[2].startswith("CON ")
    assert "3 Proyecto C1-3" in screens[2]
    assert screens[3].startswith("END ")
    drain(rt)
    assert votes(rt) == [3]
    with rt.sessions() as session:
        receipt = session.scalar(select(VoteRow.receipt))
        inbound = session.scalar(select(InboundRow))
    assert receipt
    assert receipt in screens[3]
    assert inbound is not None
    assert inbound.channel == "ussd"
    [sms] = replies_to(rt, ANA)
    assert receipt in sms


def test_a_full_hubtel_vote_ends_in_a_stored_vote_and_an_sms(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    answers = [hubtel_hop(client, "H1", "584141234567", "Initiation", "*123#").get_json()]
    for entry in ("1", "2", "1"):
        answers.append(hubtel_hop(client, "H1", "584141234567", "Response", entry).get_json())
    assert [a["Type"] for a in answers] == ["Response", "Response", "Response", "Release"]
    drain(rt)
    assert votes(rt) == [2]
    assert len(replies_to(rt, ANA)) == 1


def test_the_menu_speaks_english_after_choosing_it(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    screens = at_dial(client, "ATen", ANA, "3", "2")
    assert "Consultation" in screens[-1]
    post_sms(client, ANA, "AYUDA")
    drain(rt)
    assert replies_to(rt, ANA)[-1].startswith("To vote")  # the SMS follow the USSD choice


@pytest.mark.parametrize(
    ("consultations", "heard"),
    [
        pytest.param(True, "Consultation", id="with a consultation open"),
        pytest.param(False, "There is no consultation", id="with no consultation at all"),
    ],
)
def test_a_phone_that_chose_english_hears_english_when_it_dials_again(
    client: FlaskClient, rt: Runtime, consultations: bool, heard: str
) -> None:
    with rt.sessions() as session, session.begin():
        upsert(session, PhonePreferenceRow, {"phone": ANA, "language": "en"}, key="phone")
    if consultations:
        seed(rt.sessions, ballots={"C1": 5}, people=[("V12345678", "C1", date(1990, 5, 1), [ANA])])
    assert heard in at_dial(client, "ATagain", ANA)[0]


def test_a_shared_phone_is_asked_for_the_id_and_votes_on_that_ballot(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    screens = at_dial(client, "ATsh", SHARED, "1", "V-20.111.222", "9", "9", "1")
    assert "cedula" in screens[1].lower()
    drain(rt)
    assert votes(rt) == [9]


def test_a_crafted_path_that_skips_steps_walks_the_menu_and_the_worker_checks(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    """Everything at once on the first hop: the same screens, the same worker rules."""
    first = at_hop(client, "ATcraft", STRANGER, "1*3*1").get_data(as_text=True)
    assert first.startswith("END No encontramos")
    # 7 is not on a five-option ballot; the 1 after it picks option 1 and asks to confirm.
    second = at_hop(client, "ATcraft2", ANA, "1*7*1").get_data(as_text=True)
    assert second.startswith("CON Confirmas tu voto por 1 ")
    drain(rt)
    assert votes(rt) == []


def test_sms_and_ussd_from_one_voter_at_the_same_moment_count_once(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    at_dial(client, "ATrace", ANA, "1", "4", "1")
    post_sms(client, ANA, "VOTO 2")
    drain(rt)
    assert len(votes(rt)) == 1
    with rt.sessions() as session:
        outcomes = sorted(session.scalars(select(InboundRow.outcome)))
    assert outcomes == ["already_voted", "confirmed"]


def test_a_dropped_voter_who_redials_resumes_where_they_were(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    at_dial(client, "ATdrop", ANA, "1", "4")  # at the confirmation when the call drops
    resumed = at_hop(client, "ATagain", ANA, "").get_data(as_text=True)
    assert "Seguimos donde quedaste" in resumed
    assert "4 Proyecto C1-4" in resumed
    done = at_hop(client, "ATagain", ANA, "1").get_data(as_text=True)
    assert done.startswith("END Voto enviado")


def test_a_session_that_ended_cannot_be_continued(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    at_dial(client, "ATend", ANA, "1", "3", "1")
    again = at_hop(client, "ATend", ANA, "1*3*1*1").get_data(as_text=True)
    assert again.startswith("END Esta sesion ya termino")
    drain(rt)
    assert votes(rt) == [3]
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundRow)) == 1


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("**", id="empty inputs between stars"),
        pytest.param("abc", id="letters"),
        pytest.param("1*" + "9" * 150, id="a very long input"),
        pytest.param("1*ñandú", id="non-ASCII input"),
        pytest.param("1*3*" + "*".join(["0"] * 40), id="forty back keys"),
    ],
)
def test_broken_ussd_input_gets_a_well_formed_screen_never_a_500(
    client: FlaskClient, rt: Runtime, registry: None, text: str
) -> None:
    response = at_hop(client, "ATbad", ANA, text)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.startswith(("CON ", "END "))
    assert len(body) - 4 <= 160
    assert body.isascii()


@pytest.mark.parametrize(
    ("path", "data", "status"),
    [
        pytest.param("/ussd/africastalking/wrong", {"sessionId": "x"}, 403, id="a wrong secret"),
        pytest.param("/ussd/africastalking/", {}, 404, id="no secret at all"),
        pytest.param(f"/ussd/africastalking/{AT_SECRET}", {"text": "1"}, 400, id="missing fields"),
        pytest.param(f"/ussd/hubtel/{HUBTEL_SECRET}", "not json", 400, id="hubtel without JSON"),
        pytest.param("/ussd/hubtel/wrong", {}, 403, id="hubtel with a wrong secret"),
    ],
)
def test_a_refused_ussd_request_changes_nothing(
    client: FlaskClient, rt: Runtime, registry: None, path: str, data: object, status: int
) -> None:
    if isinstance(data, str):
        response = client.post(path, data=data, content_type="text/plain")
    else:
        response = client.post(path, data=data)
    assert response.status_code == status
    assert rt.redis.keys("consulta:ussd:*") == []


def test_hubtel_latest_input_for_an_unknown_session_is_released(
    client: FlaskClient, rt: Runtime, registry: None
) -> None:
    answer = hubtel_hop(client, "Hnever", "584141234567", "Response", "1").get_json()
    assert answer["Type"] == "Release"
    assert json.dumps(answer).isascii()
