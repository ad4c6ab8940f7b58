"""Ballot and registry CSV imports: good files load whole, a file with any bad row loads nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from gateway import privacy
from gateway.db import make_engine, make_sessionmaker
from gateway.imports import ImportRefused, ImportReport, chunking, import_ballots, import_registry
from gateway.models import CircuitRow, ConsultationRow, OptionRow, PersonRow, PhoneRow
from messages.catalogue import locales
from tests.support.factories import seed

SLUG = "cpn-2026"
BALLOT_HEADER = "circuit_code,circuit_name,option,title"
REGISTRY_HEADER = "national_id,circuit_code,birth_date,phones"
LANGUAGE_HEADER = f"{REGISTRY_HEADER},language"
GOOD_BALLOTS = [BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Uno,2,Luz", "C2,Dos,2,Vía", "C2,Dos,1,Cancha"]
TOMORROW = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    # Our own engine rather than `rt`: imports need no Redis, and the run flushes none.
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def bare(sessions: sessionmaker[Session]) -> None:
    """A consultation with no ballots and no registry yet."""
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        session.add(
            ConsultationRow(
                slug=SLUG, name="Consulta", opens_at=now, closes_at=now + timedelta(hours=8)
            )
        )


@pytest.fixture
def ballots(sessions: sessionmaker[Session]) -> None:
    """A consultation whose ballots are loaded: circuits C1 and C2."""
    seed(sessions, slug=SLUG, ballots={"C1": 3, "C2": 2})


def csv_file(tmp_path: Path, lines: list[str] | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    data = lines if isinstance(lines, bytes) else "".join(f"{line}\n" for line in lines).encode()
    path.write_bytes(data)
    return path


def count(sessions: sessionmaker[Session], table: type) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def refusal(call: Callable[..., object], *args: object) -> list[tuple[int, str]]:
    """The errors of the ImportRefused that the import raises."""
    with pytest.raises(ImportRefused) as refused:
        call(*args)
    return refused.value.errors


# --- ballots -------------------------------------------------------------------------------


def test_a_good_ballot_file_creates_every_circuit_and_option(
    sessions: sessionmaker[Session], bare: None, tmp_path: Path
) -> None:
    report = import_ballots(sessions, SLUG, csv_file(tmp_path, GOOD_BALLOTS))
    assert (report.rows, report.circuits, report.options) == (4, 2, 4)
    with sessions() as session:
        rows = session.execute(
            select(CircuitRow.code, CircuitRow.name, OptionRow.number, OptionRow.title)
            .join(OptionRow, OptionRow.circuit_id == CircuitRow.id)
            .order_by(CircuitRow.code, OptionRow.number)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("C1", "Uno", 1, "Agua"),
        ("C1", "Uno", 2, "Luz"),
        ("C2", "Dos", 1, "Cancha"),
        ("C2", "Dos", 2, "Vía"),
    ]


BAD_BALLOTS = [
    ([], 1, "the file is empty"),
    (["C1,Uno,1,Agua", "C1,Uno,2,Luz"], 1, "expected the header"),
    (["circuit,name,option,title", "C1,Uno,1,Agua"], 1, "expected the header"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Uno,2"], 3, "expected 4 columns, found 3"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Uno,2,Luz,extra"], 3, "expected 4 columns, found 5"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Uno,dos,Luz"], 3, "option must be a number"),
    ([BALLOT_HEADER, "C1,Uno,0,Agua", "C1,Uno,1,Luz"], 2, "option must be a number"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Uno,2, "], 3, "title is empty"),
    ([BALLOT_HEADER, ",Uno,1,Agua"], 2, "circuit_code is empty"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Uno,2,Luz", "C1,Uno,2,Gas"], 4, "already on line 3"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Uno,2,Luz", "C1,Uno,4,Gas"], 2, "must run 1..n"),
    ([BALLOT_HEADER, "C1,Uno,2,Agua", "C1,Uno,3,Luz"], 2, "must run 1..n"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua"], 2, "a ballot needs at least 2"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Otro,2,Luz"], 3, "was named 'Uno' on line 2"),
    (f"{BALLOT_HEADER}\nC1,Uno,1,Agua\nC1,Uno,2,V\xeda\n".encode("latin-1"), 3, "not UTF-8"),
    ([BALLOT_HEADER, "C1,Uno,1,Agua", 'C1,"Uno,2,Luz'], 3, "not valid CSV"),
]


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    BAD_BALLOTS,
    ids=[
        "an empty file is refused",
        "a file without its header is refused",
        "a misspelt header is refused",
        "a row with too few columns is refused",
        "a row with too many columns is refused",
        "an option that is not a number is refused",
        "an option numbered zero is refused",
        "an empty title is refused",
        "an empty circuit code is refused",
        "an option given twice is refused",
        "a gap in the option numbers is refused at the circuit's first line",
        "options that do not start at one are refused",
        "a ballot of one option is refused",
        "a circuit given two names is refused",
        "a file that is not UTF-8 is refused at its first bad line",
        "an unclosed quote is refused",
    ],
)
def test_a_bad_ballot_file_is_refused_with_its_line_and_writes_nothing(
    sessions: sessionmaker[Session],
    bare: None,
    tmp_path: Path,
    lines: list[str] | bytes,
    line: int,
    reason: str,
) -> None:
    errors = refusal(import_ballots, sessions, SLUG, csv_file(tmp_path, lines))
    [(found_line, why)] = errors  # the one bad row, and no echo of it elsewhere
    assert found_line == line
    assert reason in why
    assert count(sessions, CircuitRow) == 0
    assert count(sessions, OptionRow) == 0


def test_every_bad_ballot_row_is_reported_not_only_the_first(
    sessions: sessionmaker[Session], bare: None, tmp_path: Path
) -> None:
    lines = [BALLOT_HEADER, "C1,Uno,1,Agua", "C1,Uno,x,Luz", "C1,Uno,2,Gas", "C1,Uno,3"]
    errors = refusal(import_ballots, sessions, SLUG, csv_file(tmp_path, lines))
    assert [n for n, _ in errors] == [3, 5]  # and no gap reported for the spoilt circuit


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbf" + "\n".join(GOOD_BALLOTS).encode(),
        "\r\n".join(GOOD_BALLOTS).encode(),
        "\n\n".join(GOOD_BALLOTS).encode() + b"\n\n\n",
        "\n".join([" Circuit_Code , CIRCUIT_NAME,option,title", *GOOD_BALLOTS[1:]]).encode(),
    ],
    ids=[
        "a byte order mark is read as nothing",
        "Windows line ends are read as line ends",
        "blank lines are skipped",
        "a header in capitals and with spaces is accepted",
    ],
)
def test_a_good_file_in_a_common_variant_imports(
    sessions: sessionmaker[Session], bare: None, tmp_path: Path, data: bytes
) -> None:
    assert import_ballots(sessions, SLUG, csv_file(tmp_path, data)).circuits == 2


def test_a_second_ballot_import_is_refused_and_changes_nothing(
    sessions: sessionmaker[Session], bare: None, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, GOOD_BALLOTS)
    import_ballots(sessions, SLUG, path)
    [(line, why)] = refusal(import_ballots, sessions, SLUG, path)
    assert line == 0
    assert "already has ballots" in why
    assert (count(sessions, CircuitRow), count(sessions, OptionRow)) == (2, 4)


def test_an_unknown_consultation_is_refused_by_both_importers(
    sessions: sessionmaker[Session], bare: None, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, GOOD_BALLOTS)
    [(_, why)] = refusal(import_ballots, sessions, "nope", path)
    assert "no consultation 'nope'" in why
    [(_, why)] = refusal(import_registry, sessions, "nope", path, "VE")
    assert "no consultation 'nope'" in why


def test_the_refusal_shows_twenty_problems_and_the_total(
    sessions: sessionmaker[Session], bare: None, tmp_path: Path
) -> None:
    lines = [BALLOT_HEADER] + [f"C{n},Uno,x,Agua" for n in range(25)]
    with pytest.raises(ImportRefused) as refused:
        import_ballots(sessions, SLUG, csv_file(tmp_path, lines))
    text = str(refused.value)
    assert "(25 problem(s))" in text
    assert text.count("\nline ") == 20
    assert text.endswith("... and 5 more")


# --- the registry --------------------------------------------------------------------------


def people(sessions: sessionmaker[Session]) -> dict[str, tuple[str, date, list[str]]]:
    """national ID -> (circuit code, birth date, phone digests), read as the gateway reads them.

    The ID is read from its sealed copy, and must hash to the digest stored beside it.
    """
    with sessions() as session:
        rows = session.execute(
            select(
                PersonRow.national_id_clear,
                PersonRow.national_id,
                CircuitRow.code,
                PersonRow.birth_date,
                PhoneRow.phone,
            )
            .join(CircuitRow, CircuitRow.id == PersonRow.circuit_id)
            .outerjoin(PhoneRow, PhoneRow.person_id == PersonRow.id)
            .order_by(PersonRow.id, PhoneRow.phone)
        ).all()
    found: dict[str, tuple[str, date, list[str]]] = {}
    for national_id, stored_digest, code, born, phone in rows:
        assert stored_digest == privacy.digest(national_id)
        found.setdefault(national_id, (code, born, []))[2].extend([phone] if phone else [])
    return found


def digests(*phones: str) -> list[str]:
    """What the registry stores for these phones: their keyed hashes, in the order read back."""
    return sorted(privacy.digest(phone) for phone in phones)


def test_a_good_registry_file_adds_people_and_their_phones(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path
) -> None:
    lines = [
        REGISTRY_HEADER,
        "V-12.345.678,C1,1990-05-01,0414-123.45.67;0424 765 4321",
        "e81234567,C2,2008-02-29,",
        ' 7654321 ,C2,1950-12-31,"+58 412 000 1122"',
    ]
    report = import_registry(sessions, SLUG, csv_file(tmp_path, lines), "VE")
    assert (report.rows, report.people, report.phones) == (3, 3, 3)
    registry = people(sessions)
    assert registry["V12345678"] == (
        "C1",
        date(1990, 5, 1),
        digests("+584141234567", "+584247654321"),
    )
    assert registry["E81234567"] == ("C2", date(2008, 2, 29), [])
    assert registry["V7654321"] == ("C2", date(1950, 12, 31), digests("+584120001122"))


def test_after_an_import_the_planner_knows_how_big_the_registry_is(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path
) -> None:
    """Analysed at once: autovacuum would leave the first votes planned for empty tables."""
    lines = [
        REGISTRY_HEADER,
        *(f"V{10_000_000 + n},C1,1990-05-01,+58414{n:07d}" for n in range(40)),
    ]
    import_registry(sessions, SLUG, csv_file(tmp_path, lines), "VE")
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            sizes = "SELECT relname, reltuples FROM pg_class WHERE relname IN ('people', 'phones')"
        else:
            sizes = "SELECT tbl, CAST(stat AS INTEGER) FROM sqlite_stat1"  # "40 1 …": rows first
        known = dict(session.execute(text(sizes)).all())
    assert known["people"] == 40
    assert known["phones"] == 40


def test_the_registry_stores_no_id_and_no_phone_in_the_clear(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path
) -> None:
    lines = [REGISTRY_HEADER, "V12345678,C1,1990-05-01,+584141234567"]
    import_registry(sessions, SLUG, csv_file(tmp_path, lines), "VE")
    with sessions() as session:
        [(stored_digest, sealed)] = session.execute(
            text("SELECT national_id_digest, national_id_sealed FROM people")
        ).all()
        [phone] = session.scalars(text("SELECT phone_digest FROM phones")).all()
    assert stored_digest == privacy.digest("V12345678")
    assert "12345678" not in sealed
    assert privacy.keys().open(sealed) == "V12345678"
    assert phone == privacy.digest("+584141234567")


@pytest.mark.parametrize(
    "written",
    ["0414-123.45.67", "+58 414 1234567", "584141234567", "0414 1234567;+584141234567"],
    ids=[
        "a national number with dashes and dots",
        "an international number with spaces",
        "an international number without its plus",
        "one number written twice is one phone",
    ],
)
def test_a_phone_in_any_common_spelling_is_stored_in_e164(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path, written: str
) -> None:
    lines = [REGISTRY_HEADER, f'V12345678,C1,1990-05-01,"{written}"']
    import_registry(sessions, SLUG, csv_file(tmp_path, lines), "VE")
    assert people(sessions)["V12345678"][2] == digests("+584141234567")


GOOD_ROW = "V1000001,C1,1990-01-01,04141234567"
BAD_REGISTRIES = [
    ([GOOD_ROW], 1, "expected the header"),
    ([f"{REGISTRY_HEADER},idioma", f"{GOOD_ROW},es"], 1, "expected the header"),
    ([REGISTRY_HEADER, GOOD_ROW, "V1000002,C1,1990-01-01"], 3, "expected 4 columns"),
    ([REGISTRY_HEADER, GOOD_ROW, "V1000002,C1,1990-01-01,,es"], 3, "expected 4 columns, found 5"),
    ([LANGUAGE_HEADER, f"{GOOD_ROW},es", "V1000002,C1,1990-01-01,"], 3, "expected 5 columns"),
    (
        [LANGUAGE_HEADER, f"{GOOD_ROW},es", "V1000002,C1,1990-01-01,,klingon"],
        3,
        f"language must be one of: {', '.join(locales())}",
    ),
    ([REGISTRY_HEADER, GOOD_ROW, "X-12,C1,1990-01-01,"], 3, "not a cédula number"),
    ([REGISTRY_HEADER, GOOD_ROW, "V1000002,C9,1990-01-01,"], 3, "'C9' is not on this"),
    ([REGISTRY_HEADER, GOOD_ROW, "V1000002,C1,01/02/1990,"], 3, "must be written YYYY-MM-DD"),
    ([REGISTRY_HEADER, GOOD_ROW, "V1000002,C1,1990-02-30,"], 3, "not a real calendar date"),
    ([REGISTRY_HEADER, GOOD_ROW, f"V1000002,C1,{TOMORROW},"], 3, "in the future"),
    ([REGISTRY_HEADER, GOOD_ROW, "V1000002,C1,1990-01-01,12;04141234567"], 3, "phone 1 of 2"),
    ([REGISTRY_HEADER, GOOD_ROW, "V1000002,C1,1990-01-01,04141234567;abc"], 3, "phone 2 of 2"),
    ([REGISTRY_HEADER, GOOD_ROW, "V-1.000.001,C2,1980-01-01,"], 3, "appears earlier"),
    (
        f"{REGISTRY_HEADER}\n{GOOD_ROW}\nV1000002,C1,1990-01-01,Jos\xe9\n".encode("latin-1"),
        3,
        "UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    BAD_REGISTRIES,
    ids=[
        "a file without its header is refused",
        "a header with an unknown fifth column is refused",
        "a row with a missing column is refused",
        "a language on a row under the four-column header is refused",
        "a row without its language under the five-column header is refused",
        "a language the gateway does not speak is refused",
        "an unreadable national ID is refused",
        "a circuit that is not on the ballots is refused",
        "a birth date that is not ISO is refused",
        "a birth date that does not exist is refused",
        "a birth date in the future is refused",
        "an unreadable phone is refused",
        "one unreadable phone among several is refused",
        "an ID given twice in the file, however spelt, is refused",
        "a file that is not UTF-8 is refused",
    ],
)
def test_a_bad_registry_file_is_refused_with_its_line_and_writes_nothing(
    sessions: sessionmaker[Session],
    ballots: None,
    tmp_path: Path,
    lines: list[str] | bytes,
    line: int,
    reason: str,
) -> None:
    errors = refusal(import_registry, sessions, SLUG, csv_file(tmp_path, lines), "VE")
    [(found_line, why)] = errors  # the one bad row, and no echo of it elsewhere
    assert found_line == line
    assert reason in why
    assert count(sessions, PersonRow) == 0
    assert count(sessions, PhoneRow) == 0


def languages(sessions: sessionmaker[Session]) -> dict[str, str | None]:
    """national ID -> the language the registry gave, if any."""
    with sessions() as session:
        query = select(PersonRow.national_id_clear, PersonRow.language)
        return dict(session.execute(query).all())


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            [LANGUAGE_HEADER, "V1000001,C1,1990-01-01,,es", "V1000002,C2,1990-01-01,,en"],
            {"V1000001": "es", "V1000002": "en"},
        ),
        ([LANGUAGE_HEADER, "V1000001,C1,1990-01-01,04141234567,"], {"V1000001": None}),
        (
            [
                LANGUAGE_HEADER,
                "V1000001,C1,1990-01-01,,English",
                "V1000002,C1,1990-01-01,, ES ",
                "V1000003,C2,1990-01-01,,español",
            ],
            {"V1000001": "en", "V1000002": "es", "V1000003": "es"},
        ),
        (
            [
                " National_ID,circuit_code,birth_date,phones , LANGUAGE",
                "V1000001,C1,1990-01-01,,en",
            ],
            {"V1000001": "en"},
        ),
        ([REGISTRY_HEADER, "V1000001,C1,1990-01-01,04141234567"], {"V1000001": None}),
    ],
    ids=[
        "the five-column header imports each row's language",
        "an empty language is no preference",
        "a language's name or code in any case is normalised",
        "the five-column header in capitals and with spaces is accepted",
        "the four-column header still imports, with no language",
    ],
)
def test_the_optional_language_column_is_stored_as_a_locale(
    sessions: sessionmaker[Session],
    ballots: None,
    tmp_path: Path,
    lines: list[str],
    expected: dict[str, str | None],
) -> None:
    report = import_registry(sessions, SLUG, csv_file(tmp_path, lines), "VE")
    assert report.people == len(expected)
    assert languages(sessions) == expected


def numbered_people(first: int, total: int) -> list[str]:
    return [f"V{n},C{1 + n % 2},1990-01-01,0414{n:07d}" for n in range(first, first + total)]


def registered(sessions: sessionmaker[Session], tmp_path: Path, rows: list[str]) -> None:
    """People already in the registry, put there by an earlier import."""
    path = csv_file(tmp_path, [REGISTRY_HEADER, *rows], name="earlier.csv")
    import_registry(sessions, SLUG, path, "VE")


def test_an_id_already_in_the_registry_is_refused_and_nothing_is_added(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path
) -> None:
    registered(sessions, tmp_path, ["V1000001,C1,1990-01-01,+584141234567"])
    lines = [REGISTRY_HEADER, "V1000002,C1,1990-01-01,", "1000001,C1,1990-01-01,04241234567"]
    [(line, why)] = refusal(import_registry, sessions, SLUG, csv_file(tmp_path, lines), "VE")
    assert (line, why) == (3, "national_id is already in this consultation's registry")
    assert (count(sessions, PersonRow), count(sessions, PhoneRow)) == (1, 1)


def test_the_same_people_may_be_registered_in_another_consultation(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path
) -> None:
    seed(sessions, slug="otra", ballots={"C1": 2, "C2": 2})
    path = csv_file(tmp_path, [REGISTRY_HEADER, *numbered_people(1_000_000, 3)])
    for slug in (SLUG, "otra"):
        assert import_registry(sessions, slug, path, "VE").people == 3
    assert (count(sessions, PersonRow), count(sessions, PhoneRow)) == (6, 6)


def test_a_registry_before_its_ballots_is_refused(
    sessions: sessionmaker[Session], bare: None, tmp_path: Path
) -> None:
    path = csv_file(tmp_path, [REGISTRY_HEADER, GOOD_ROW])
    [(_, why)] = refusal(import_registry, sessions, SLUG, path, "VE")
    assert "has no ballots yet" in why


def test_a_file_longer_than_one_chunk_is_written_whole_and_checked_against_the_registry(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunking, "CHUNK_ROWS", 7)
    registered(sessions, tmp_path, ["V10001,C1,1990-01-01,"])
    seen: list[int] = []
    path = csv_file(tmp_path, [REGISTRY_HEADER, *numbered_people(1_000_000, 30)])
    report = import_registry(sessions, SLUG, path, "VE", seen.append)
    assert (report.people, report.phones) == (30, 30)
    assert (count(sessions, PersonRow), count(sessions, PhoneRow)) == (31, 30)
    assert seen == sorted(seen)
    assert seen[-1] == 60  # each row is counted once checked and once written


def test_each_phone_stays_with_its_person_across_imports_and_consultations(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bulk writers number people themselves: the numbers must follow on from what is there.
    monkeypatch.setattr(chunking, "CHUNK_ROWS", 5)
    seed(sessions, slug="otra", ballots={"C1": 2, "C2": 2})
    for slug, first in ((SLUG, 1_000_000), ("otra", 2_000_000), (SLUG, 3_000_000)):
        path = csv_file(tmp_path, [REGISTRY_HEADER, *numbered_people(first, 12)])
        assert import_registry(sessions, slug, path, "VE").phones == 12
    registry = people(sessions)
    assert len(registry) == 36
    for national_id, (code, _, phones) in registry.items():
        n = int(national_id[1:])
        assert (code, phones) == (f"C{1 + n % 2}", digests(f"+58414{n:07d}"))


def test_every_bad_row_is_reported_with_its_line_across_chunks(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunking, "CHUNK_ROWS", 5)
    rows = numbered_people(1_000_000, 40)  # lines 2 to 41
    rows[0] = "V99999,C1,1990-02-30,"  # line 2, in the first chunk
    rows[15] = "V99998,C9,1990-01-01,"  # line 17
    rows[28] = "V-1.000.003,C2,1990-01-01,"  # line 30: the ID of line 5
    rows.append("V99997,C1,1990-01-01,04141234567;12")  # line 42, the last
    errors = refusal(
        import_registry, sessions, SLUG, csv_file(tmp_path, [REGISTRY_HEADER, *rows]), "VE"
    )
    assert errors == [
        (2, "birth_date is not a real calendar date"),
        (17, "circuit_code 'C9' is not on this consultation's ballots"),
        (30, "national_id appears earlier in the file"),
        (42, "phone 2 of 2 is not a phone number"),
    ]
    assert (count(sessions, PersonRow), count(sessions, PhoneRow)) == (0, 0)


@pytest.mark.parametrize(
    ("earlier", "last", "why"),
    [
        ([], "not,a,good,row", "not a cédula number"),
        (
            ["V70001,C1,1990-01-01,04241234567"],
            "V-70.001,C2,1980-01-01,",
            "already in this consultation",
        ),
    ],
    ids=[
        "a bad last row",
        "a last row whose ID is already registered",
    ],
)
def test_a_refusal_on_the_last_line_undoes_every_chunk_written_before_it(
    sessions: sessionmaker[Session],
    ballots: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    earlier: list[str],
    last: str,
    why: str,
) -> None:
    if earlier:
        registered(sessions, tmp_path, earlier)
    monkeypatch.setattr(chunking, "CHUNK_ROWS", 5)
    path = csv_file(tmp_path, [REGISTRY_HEADER, *numbered_people(1_000_000, 60), last])
    [(line, reason)] = refusal(import_registry, sessions, SLUG, path, "VE")
    assert line == 62
    assert why in reason
    assert (count(sessions, PersonRow), count(sessions, PhoneRow)) == (len(earlier), len(earlier))


def test_a_failure_half_way_through_the_writes_leaves_nothing(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chunking, "CHUNK_ROWS", 5)
    path = csv_file(tmp_path, [REGISTRY_HEADER, *numbered_people(1_000_000, 40)])

    def fail_in_the_middle(done: int) -> None:
        if done >= 2 * 22:  # four chunks of people and phones are written by now
            raise RuntimeError("the lights went out")

    with pytest.raises(RuntimeError, match="lights"):
        import_registry(sessions, SLUG, path, "VE", fail_in_the_middle)
    assert (count(sessions, PersonRow), count(sessions, PhoneRow)) == (0, 0)


FUZZ_ROW = st.text(alphabet='C12,"\r\n V-.;+0x\xe1', max_size=40)


@settings(
    max_examples=40,
    deadline=None,
    database=None,  # nothing written to the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example is independent
)
@given(rows=st.lists(FUZZ_ROW, max_size=5), junk=st.binary(max_size=12))
def test_any_registry_file_is_imported_or_refused_and_never_crashes(
    sessions: sessionmaker[Session], ballots: None, tmp_path: Path, rows: list[str], junk: bytes
) -> None:
    data = "\n".join([REGISTRY_HEADER, *rows]).encode() + junk
    before = count(sessions, PersonRow)
    try:
        outcome: ImportReport | ImportRefused = import_registry(
            sessions, SLUG, csv_file(tmp_path, data), "VE"
        )
    except ImportRefused as refused:
        outcome = refused
    if isinstance(outcome, ImportRefused):
        assert outcome.errors
        assert count(sessions, PersonRow) == before
