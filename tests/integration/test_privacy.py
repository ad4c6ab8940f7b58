"""A database dump reveals no phone number and no national ID, and nothing joins who with what.

The registry is imported through the real CSV importer, people vote by SMS (with and without an
ID, a second vote, STOP, a language choice) and by USSD, and then every byte of the database is
searched: on SQLite the database file and its WAL, on PostgreSQL every row of every table as text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import create_engine, inspect, select, text

from gateway import privacy
from gateway.imports import import_registry
from gateway.models import ParticipationRow, PersonRow, VoteRow
from gateway.settings import Settings
from tests.integration.test_sms_pipeline import post_sms
from tests.integration.test_ussd import AT_SECRET, at_dial
from tests.support.factories import seed
from tests.support.pipeline import drain
from workers.runtime import Runtime

# (national ID as written in the registry, its normalised form, phones as written, E.164)
VOTERS = [
    ("V-12.345.678", "V12345678", "0414-123.45.67", "+584141234567"),
    ("20111222", "V20111222", "0424-765.43.21", "+584247654321"),
    ("E-8.765.432", "E8765432", "0412-555.66.77", "+584125556677"),
    ("V25333444", "V25333444", "0424-765.43.21", "+584247654321"),  # shares a phone
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(africastalking_secret=AT_SECRET)


@pytest.fixture
def voted(rt: Runtime, client: FlaskClient, tmp_path: Path) -> None:
    seeded = seed(rt.sessions, ballots={"C1": 5, "C2": 5})
    registry = tmp_path / "registry.csv"
    registry.write_text(_registry_csv())
    import_registry(rt.sessions, seeded.slug, registry, "VE")
    post_sms(client, "+584141234567", "VOTO 2")
    post_sms(client, "+584141234567", "VOTO 3")  # a second vote: refused, receipt quoted back
    post_sms(client, "+584247654321", "VOTO 1 V20111222")
    post_sms(client, "+584247654321", "IDIOMA EN")
    post_sms(client, "+584125556677", "STOP")
    post_sms(client, "+584129990000", "VOTO 1")  # not registered
    at_dial(client, "ussd-privacy-1", "+584247654321", "1", "V25333444", "1", "1")
    drain(rt)


def _registry_csv() -> str:
    rows = [f"{raw_id},C1,1990-05-01,{raw_phone}" for raw_id, _, raw_phone, _ in VOTERS]
    return "national_id,circuit_code,birth_date,phones\n" + "\n".join(rows) + "\n"


def _forbidden() -> list[str]:
    """Every way a phone or an ID could appear: as written, normalised, and as bare digits."""
    found: set[str] = set()
    for raw_id, national_id, raw_phone, e164 in VOTERS:
        found |= {raw_id, national_id, national_id[1:], raw_phone, e164, e164[1:], e164[3:]}
    found |= {"+584129990000", "584129990000"}
    return sorted(found)


def _dump(database_url: str) -> Iterator[str]:
    path = Settings(database_url=database_url).sqlite_path()
    if path is not None:
        for file in (path, Path(f"{path}-wal")):
            if file.exists():
                yield file.read_bytes().decode("latin-1")
        return
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT t::text FROM "{table}" AS t'))  # noqa: S608
            yield "\n".join(row[0] for row in rows)
    engine.dispose()


def test_the_vote_went_through_so_the_dump_below_is_not_of_an_empty_database(
    voted: None, rt: Runtime
) -> None:
    with rt.sessions() as session:
        assert len(session.scalars(select(VoteRow)).all()) == 3
        assert len(session.scalars(select(ParticipationRow)).all()) == 3


def test_a_database_dump_holds_no_phone_number_and_no_national_id(
    voted: None, settings: Settings
) -> None:
    dump = "\n".join(_dump(settings.database_url))
    leaks = [value for value in _forbidden() if value in dump]
    assert leaks == []
    assert len(dump) > 1000  # the search read real content


def test_the_registry_still_finds_people_by_id_through_the_keyed_hash(
    voted: None, rt: Runtime
) -> None:
    with rt.sessions() as session:
        person = session.scalars(select(PersonRow).where(PersonRow.national_id == "E8765432")).one()
    assert person.national_id == privacy.digest("E8765432")
    assert person.national_id_clear == "E8765432"


def test_who_voted_and_what_was_voted_share_no_column_value(voted: None, rt: Runtime) -> None:
    with rt.sessions() as session:
        who = session.execute(text("SELECT * FROM participations")).all()
        what = session.execute(text("SELECT * FROM votes")).all()
    shared = {str(v) for row in who for v in row if v is not None} & {
        str(v) for row in what for v in row if v is not None
    }
    # Only small integers may coincide (consultation id, option numbers, revision counters).
    assert {v for v in shared if not re.fullmatch(r"\d{1,3}", v)} == set()


def test_redis_holds_no_phone_number_or_id_in_its_keys_or_string_values(
    voted: None, redis: Redis
) -> None:
    keys = redis.keys("*")
    values = [redis.get(k) for k in keys if redis.type(k) == b"string"]
    kept = " ".join(str(item) for item in [*keys, *values])
    assert any(b"ussd" in k for k in keys)  # the USSD session is there to be searched
    assert [value for value in _forbidden() if value in kept] == []


@pytest.mark.parametrize("secret", [None, "", "too-short"])
def test_nothing_that_stores_personal_data_starts_without_a_proper_secret(
    secret: str | None, settings: Settings
) -> None:
    from gateway.app import create_app
    from workers.runtime import Runtime as WorkerRuntime

    with pytest.raises(privacy.MissingSecretError):
        create_app(settings.with_(secret=secret))
    with pytest.raises(privacy.MissingSecretError):
        WorkerRuntime.build(settings.with_(secret=secret))
