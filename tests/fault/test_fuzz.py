"""Fuzz: the vote grammar, the USSD path folding and the CSV importers, fed random input.

What each must do with anything at all:

- the grammar reads every text as exactly one thing, and never guesses (see `check_parse`);
- every USSD callback gets a screen: `CON ` or `END `, within 182 characters on the wire and
  the 160 plain ASCII characters the menu promises, or a clear 4xx for a request that is not a
  callback at all; walking a path hop by hop or in one crafted hop ends on the same screen;
- a CSV import either loads the whole file, and exactly what its report says, or is refused
  with line numbers and writes nothing; a refusal never repeats a national ID or a phone.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from gateway.imports import ImportRefused, ImportReport, import_ballots, import_registry
from gateway.models import ConsultationRow
from gateway.settings import Settings
from tests.fault.scale import full, n, report
from tests.support.factories import seed
from tests.support.webhooks import FORM, africastalking_ussd, counts, without_flood_limits
from voting import grammar
from voting.grammar import Ambiguous, Command, Keyword, ReceiptCheck, Unrecognised, Vote, parse
from workers.runtime import Runtime

pytestmark = [pytest.mark.fault]

AT_SECRET = "fuzz-at-secret"
SCREEN_WIRE = 182  # GSM 03.38 USSD: 182 seven-bit characters, prefix included
SCREEN_TEXT = 160  # what the menu promises its screens fit, in plain ASCII
RECEIPT = re.compile(r"\b[2-9A-Z]{3}-[2-9A-Z]{3}-[2-9A-Z]{3}\b")


def fuzz_settings(examples: int) -> Callable[[Any], Any]:
    """The same examples every ordinary run, so that it passes or fails alike; new ones in a
    full run (FAULT_SCALE=full), which is where fuzzing explores."""
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        derandomize=not full(),
        database=None,  # nothing written to the shared working tree; failures print a blob
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# -- the vote grammar -------------------------------------------------------------------------

# Pieces people type, and pieces that sit on the grammar's edges.
TOKENS = [
    "VOTO", "voto", "Vóto", "VOTE", "votar", "vota", "V", "v", "E", "V3", "voto3", "VOTA12",
    "3", "03", "12", "99", "100", "0", "٣", "３", "3️⃣", "tres", "TRES", "una", "nine",
    "#", ":", ".", ",", "-", "!", "?", "(", ")", "¡", "¿",
    "V-12.345.678", "12345678", "v12345678", "E-81234567", "1.234", "12345678901", "V1",
    "RECIBO", "recibo", "RECEIPT", "K7Q-2M9-XAB", "k7q2m9xab",
    "STOP", "stop", "Baja", "BAJA", "END", "start", "ALTA", "YES", "AYUDA", "help", "info",
    "OPCIONES", "opciones", "ESTADO", "STATUS", "IDIOMA", "LANGUAGE", "EN", "es", "inglés",
    "por", "la", "gracias", "á", "ñ", "Ç", "ß", "ﬁ", "\u200b", "\u0301",
]  # fmt: skip
SEPARATORS = st.sampled_from([" ", "", "  ", "\t", "\n", ", ", ".", "-", "\u00a0", "\u3000"])
texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.tuples(st.sampled_from(TOKENS) | st.text(max_size=3), SEPARATORS), max_size=7).map(
        lambda parts: "".join(token + sep for token, sep in parts)
    ),
)
KINDS = (Vote, Keyword, Ambiguous, Unrecognised, ReceiptCheck, Command)
ID_FORM = re.compile(r"^[VE][1-9]\d{4,9}$")  # what normalise_national_id gives back


def words_of(text: str) -> list[str]:
    """The normalised text's words and digit runs, as the grammar sees them."""
    return re.findall(r"[A-Z]+|\d+", grammar._normalise(text))


def check_parse(text: str) -> list[str]:
    """What is wrong with how `text` parses; empty if nothing.

    A parse is unambiguous when: it is exactly one of the six kinds, and the same every time;
    a Keyword is exactly Twilio's rule (the whole body is one keyword, any case); a Vote for k
    spells k in the text and names no other option, so that adding any other option number, in
    front or behind, makes it a question (Ambiguous) or unreadable, never a vote for either;
    an ID it reads is spelled in the text; Ambiguous holds two or more different options.
    """
    parsed, problems = parse(text), []
    if type(parsed) not in KINDS or parse(text) != parsed:
        return [f"not exactly one stable kind: {parsed!r}"]
    normal = grammar._normalise(text)
    is_keyword = any(normal in words for words in grammar.KEYWORDS.values())
    if isinstance(parsed, Keyword) != is_keyword:
        problems.append(f"keyword rule broken: {parsed!r} for {normal!r}")
    if isinstance(parsed, Vote):
        problems += _vote_problems(text, parsed)
    if isinstance(parsed, Ambiguous) and (
        len(set(parsed.options)) < 2 or len(set(parsed.options)) != len(parsed.options)
    ):
        problems.append(f"Ambiguous without two different options: {parsed!r}")
    return problems


def _vote_problems(text: str, vote: Vote) -> list[str]:
    problems = []
    words = words_of(text)
    spelled = [w for w in words if w.isdigit() and int(w) == vote.option]
    named = [w for w in words if grammar.NUMBER_WORDS.get(w) == str(vote.option)]
    if not 0 <= vote.option <= grammar.MAX_OPTION or not (spelled or named):
        problems.append(f"option {vote.option} is not spelled in the text")
    if vote.national_id is not None and (
        not ID_FORM.match(vote.national_id)
        or vote.national_id[1:] not in re.sub(r"\D", "", grammar._normalise(text))
    ):
        problems.append(f"ID {vote.national_id} is not spelled in the text")
    for other in _other_options(vote.option):
        for joined in (f"{text} {other}", f"{other} {text}"):
            if isinstance(parse(joined), Vote):
                problems.append(f"{joined!r} guessed {parse(joined)!r}")
    return problems


def _other_options(option: int) -> list[str]:
    """Other options, in digits and in words: each a second number the vote must not swallow."""
    digits = [option + 1, (option + 7) % 100, 0 if option else 1]
    spelled = {"3": "tres", "4": "cuatro", "7": "seven"}
    return [str(d) for d in digits] + [w for n, w in spelled.items() if n != str(option)]


# Two options in one message, the second in words: a question back, never a vote for the first.
SECOND_OPTION_IN_WORDS = ["4 VOTO TRES", "5, vota tres", "3 cuatro"]


@pytest.mark.parametrize("text", SECOND_OPTION_IN_WORDS)
def test_an_option_in_words_after_an_option_in_digits_is_not_dropped(text: str) -> None:
    parsed = parse(text)
    report(f"fuzz: grammar, {text!r}", n=1, failures=int(isinstance(parsed, Vote)), parsed=parsed)
    assert not isinstance(parsed, Vote), f"{text!r} was read as {parsed!r}"


def test_the_vote_grammar_reads_any_text_as_exactly_one_thing_and_never_guesses() -> None:
    seen: Counter[str] = Counter()

    @fuzz_settings(n(1500, 50_000))
    @given(text=texts)
    def one(text: str) -> None:
        problems = check_parse(text)
        seen[type(parse(text)).__name__] += 1
        seen["failures"] += bool(problems)
        assert not problems, problems

    try:
        one()
    finally:
        failures = seen.pop("failures", 0)
        report("fuzz: vote grammar", n=sum(seen.values()), failures=failures, **dict(seen))


def test_every_keyword_is_read_as_itself_whatever_its_case_accents_and_spacing() -> None:
    words = [(name, w) for name, group in grammar.KEYWORDS.items() for w in group]
    variants: list[tuple[str, str]] = []
    for name, word in words:
        variants += [
            (name, word.lower()), (name, word.title()), (name, f"  {word}\n"),
            (name, "".join(ch + "\u0301" if ch in "AEIOU" else ch for ch in word)),
            (name, word.translate(str.maketrans("AEIOU", "ÁÉÍÓÚ"))),
        ]  # fmt: skip
    wrong = [(text, parse(text)) for name, text in variants if parse(text) != Keyword(name)]
    vocabularies = [
        {w for group in grammar.KEYWORDS.values() for w in group},
        set(grammar.COMMANDS), set(grammar.VOTE_WORDS), set(grammar.NUMBER_WORDS),
    ]  # fmt: skip
    shared = [a & b for i, a in enumerate(vocabularies) for b in vocabularies[i + 1 :] if a & b]
    report("fuzz: keywords", n=len(variants), failures=len(wrong) + len(shared))
    assert not wrong, wrong
    assert not shared, f"one word in two vocabularies: {shared}"


# -- USSD path folding ------------------------------------------------------------------------

ANA, SHARED, STRANGER = "+584141234567", "+584241112233", "+584269998877"
KEYS = ["", "0", "00", "1", "2", "3", "4", "9", "99", "1", "1", "V-20.111.222", "25333444", "V1"]
# Anything a request can carry: every character but a lone surrogate, which no client can send.
sendable = st.characters(blacklist_categories=("Cs",))
inputs = st.lists(
    st.sampled_from(KEYS) | st.text(alphabet=sendable.filter(lambda ch: ch != "*"), max_size=6),
    max_size=10,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return without_flood_limits(settings.with_(africastalking_secret=AT_SECRET))


def screen_problems(status: int, body: str, path: str) -> list[str]:
    if status == 400 and len(path) > 200:
        return []  # a path no session could type: refused plainly, as the adapter documents
    if status != 200 or not body.startswith(("CON ", "END ")):
        return [f"HTTP {status} {body[:80]!r} for {path!r}"]
    problems = []
    if len(body) > SCREEN_WIRE:
        problems.append(f"{len(body)} characters on the wire for {path!r}")
    if len(body) - 4 > SCREEN_TEXT or not body.isascii():
        problems.append(f"screen not {SCREEN_TEXT} ASCII characters for {path!r}: {body!r}")
    return problems


def hop(app: Flask, session: str, phone: str, path: str) -> tuple[int, str]:
    answer = africastalking_ussd(AT_SECRET, session, phone, path).send(app.test_client())
    return answer.status_code, answer.get_data(as_text=True)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the menu is the point
def test_any_africastalking_path_gets_a_screen_and_folds_like_the_same_keys_hop_by_hop(
    app: Flask, rt: Runtime
) -> None:
    seed(
        rt.sessions, ballots={"C1": 5, "C2": 9},
        people=[
            ("V12345678", "C1", date(1990, 5, 1), [ANA]),
            ("V20111222", "C2", date(2001, 7, 30), [SHARED]),
            ("V25333444", "C2", date(2015, 1, 5), [SHARED]),  # too young
        ],
    )  # fmt: skip
    seen: Counter[str] = Counter()

    @fuzz_settings(n(40, 1000))
    @given(keys=inputs, phone=st.sampled_from([ANA, SHARED, STRANGER]))
    def one(keys: list[str], phone: str) -> None:
        rt.redis.flushdb()  # no session of an earlier example to resume
        problems: list[str] = []
        session = "F" + secrets.token_hex(6)
        paths = [""] + ["*".join(keys[: i + 1]) for i in range(len(keys))]
        last, ended_at = "", None
        for path in paths:  # hop by hop, as a handset sends them, and on past an END
            status, body = hop(app, session, phone, path)
            problems += screen_problems(status, body, path)
            seen["hops"] += 1
            if ended_at is None:
                last = body
                ended_at = path if body.startswith("END ") else None
        folded = paths[-1] if ended_at is None else ended_at  # the aggregator stops at an END
        if folded and len(folded) <= 200:
            status, crafted = hop(app, "F" + secrets.token_hex(6), phone, folded)
            problems += screen_problems(status, crafted, folded)
            if _same_screen(last) != _same_screen(crafted):
                problems.append(f"folded differently: {last!r} and {crafted!r} for {folded!r}")
        seen["paths"] += 1
        seen["failures"] += bool(problems)
        assert not problems, problems

    try:
        one()
    finally:
        report(
            "fuzz: USSD path folding", n=seen["paths"], failures=seen["failures"], hops=seen["hops"]
        )


def _same_screen(body: str) -> str:
    """A screen with its receipt blanked: two sessions that vote get two receipts."""
    return RECEIPT.sub("RECEIPT", body)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_any_bytes_posted_as_a_ussd_callback_get_a_screen_or_a_clear_4xx(
    app: Flask, rt: Runtime
) -> None:
    seen: Counter[str] = Counter()
    values = st.one_of(
        st.text(sendable, max_size=8), st.text(sendable, min_size=100, max_size=300),
        st.sampled_from(KEYS),
    )  # fmt: skip
    callbacks = st.fixed_dictionaries(
        dict.fromkeys(("sessionId", "phoneNumber", "serviceCode", "text"), values),
        optional={"networkCode": values, "extra": values},
    ).map(lambda form: urlencode(form).encode())
    bodies = st.one_of(callbacks, st.binary(max_size=200))

    @fuzz_settings(n(150, 3000))
    @given(body=bodies)
    def one(body: bytes) -> None:
        answer = app.test_client().post(
            f"/ussd/africastalking/{AT_SECRET}", data=body, content_type=FORM
        )
        text = answer.get_data(as_text=True)
        ok = (answer.status_code == 200 and not screen_problems(200, text, "")) or (
            400 <= answer.status_code < 500 and not text.lstrip().startswith("<")
        )
        seen[str(answer.status_code)] += 1
        seen["failures"] += not ok
        assert ok, (answer.status_code, text[:200])

    try:
        one()
    finally:
        failures = seen.pop("failures", 0)
        report("fuzz: USSD callback bodies", n=sum(seen.values()), failures=failures, **dict(seen))


# -- the CSV importers ------------------------------------------------------------------------

Example = tuple[bytes, list[str], list[str]]  # (file, corruptions applied, personal values)
GoodFile = tuple[list[list[str]], list[str]]  # (rows, the personal values in them)
BALLOT_HEADER = ["circuit_code", "circuit_name", "option", "title"]
REGISTRY_HEADER = ["national_id", "circuit_code", "birth_date", "phones"]
cell_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=24
).filter(lambda t: bool(t.strip()))


@st.composite
def ballot_files(draw: st.DrawFn) -> GoodFile:
    """A good ballots file: 1 to 3 circuits of 2 to 9 options, in any order. (rows, no PII)."""
    rows = []
    for c in range(draw(st.integers(1, 3))):
        name = draw(cell_text)
        rows += [
            [f"C{c + 1}", name, str(option), draw(cell_text)]
            for option in range(1, draw(st.integers(2, 9)) + 1)
        ]
    return [BALLOT_HEADER, *draw(st.permutations(rows))], []


ID_SPELLINGS = ["V{d}", "V-{dotted}", "{d}", "v{d}", "E-{d}"]
PHONE_SPELLINGS = ["0414-{a}.{b}.{c}", "+58 414 {a}{b}{c}", "58414{a}{b}{c}", "0414{a}{b}{c}"]


@st.composite
def registry_files(draw: st.DrawFn) -> GoodFile:
    """A good registry file, and the IDs and phones in it as written (which no error repeats)."""
    language = draw(st.booleans())
    numbers = draw(
        st.lists(st.integers(1_000_000, 99_999_999), min_size=1, max_size=8, unique=True)
    )
    rows, personal = [], []
    for number in numbers:
        spelling = draw(st.sampled_from(ID_SPELLINGS))
        national_id = spelling.format(d=number, dotted=f"{number:,}".replace(",", "."))
        phones = [
            draw(st.sampled_from(PHONE_SPELLINGS)).format(a=p[:3], b=p[3:5], c=p[5:])
            for p in draw(st.lists(st.integers(0, 9_999_999).map("{:07d}".format), max_size=2))
        ]
        born = draw(st.dates(date(1920, 1, 1), date(2008, 1, 1))).isoformat()
        row = [national_id, draw(st.sampled_from(["C1", "C2"])), born, ";".join(phones)]
        if language:
            row.append(draw(st.sampled_from(["", "es", "en", "español", "English"])))
        rows.append(row)
        personal += [national_id, *phones]
    header = REGISTRY_HEADER + (["language"] if language else [])
    return [header, *rows], personal


def _csv_bytes(rows: list[list[str]]) -> bytes:
    """As a spreadsheet saves CSV: CRLF line ends, fields with a comma, quote or CR quoted."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


# Corruptions of a good file, each from the rows or the bytes and a random source.
def _swap_cells(rows: list[list[str]], r: Random) -> list[list[str]]:
    row = r.choice(rows[1:] or rows)
    i, j = r.randrange(len(row)), r.randrange(len(row))
    row[i], row[j] = row[j], row[i]
    return rows


def _drop_cell(rows: list[list[str]], r: Random) -> list[list[str]]:
    row = r.choice(rows)
    del row[r.randrange(len(row))]
    return rows


def _blank_cells(rows: list[list[str]], r: Random) -> list[list[str]]:
    return [["" if r.random() < 0.3 else cell for cell in row] for row in rows]


def _junk_cells(rows: list[list[str]], r: Random) -> list[list[str]]:
    junk = ["0", "-1", "V", "1e3", "٣", "2026-02-30", " ", "C9", "x" * 300]
    return [[r.choice(junk) if r.random() < 0.2 else cell for cell in row] for row in rows]


ROW_CORRUPTIONS: dict[str, Callable[[list[list[str]], Random], list[list[str]]]] = {
    "swap two cells": _swap_cells,
    "drop a cell": _drop_cell,
    "add a cell": lambda rows, r: [*rows[:-1], [*rows[-1], "extra"]],
    "repeat a row": lambda rows, r: [*rows, list(r.choice(rows))],
    "blank cells": _blank_cells,
    "junk in cells": _junk_cells,
}


def _insert(data: bytes, r: Random, piece: bytes) -> bytes:
    at = r.randrange(len(data) + 1)
    return data[:at] + piece + data[at:]


def _flip(data: bytes, r: Random) -> bytes:
    if not data:
        return data
    at = r.randrange(len(data))
    return data[:at] + bytes([data[at] ^ r.randrange(1, 256)]) + data[at + 1 :]


def _delete(data: bytes, r: Random) -> bytes:
    at = r.randrange(len(data) + 1)
    return data[:at] + data[at + r.randrange(1, 12) :]


BYTE_CORRUPTIONS: dict[str, Callable[[bytes, Random], bytes]] = {
    "flip a byte": _flip,
    "insert bytes": lambda d, r: _insert(d, r, r.randbytes(r.randrange(1, 6))),
    "delete a slice": _delete,
    "cut short": lambda d, r: d[: r.randrange(len(d) + 1)],
    "a NUL": lambda d, r: _insert(d, r, b"\x00"),
    "not UTF-8": lambda d, r: _insert(d, r, b"\xff\xfe"),
    "a stray quote": lambda d, r: _insert(d, r, b'"'),
    "a lone CR": lambda d, r: _insert(d, r, b"\r"),
    "an empty line": lambda d, r: _insert(d, r, b"\n\n"),
    "a BOM": lambda d, r: b"\xef\xbb\xbf" + d,
    "LF only": lambda d, r: d.replace(b"\r\n", b"\n"),
}
CORRUPTIONS = [*ROW_CORRUPTIONS, *BYTE_CORRUPTIONS]


@st.composite
def files(draw: st.DrawFn, good: st.SearchStrategy[GoodFile]) -> Example:
    """A good file, corrupted 0 to 3 times; now and then nothing but random bytes."""
    rows, personal = draw(good)
    r = draw(st.randoms(use_true_random=False))
    applied = draw(st.lists(st.sampled_from(CORRUPTIONS), max_size=3))
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=300)), ["random bytes"], personal
    for name in applied:
        if name in ROW_CORRUPTIONS:
            rows = ROW_CORRUPTIONS[name]([list(row) for row in rows], r)
    data = _csv_bytes(rows)
    for name in applied:
        if name in BYTE_CORRUPTIONS:
            data = BYTE_CORRUPTIONS[name](data, r)
    return data, applied, personal


def outcome_problems(
    outcome: ImportReport | ImportRefused, data: bytes, personal: list[str], delta: dict[str, int]
) -> list[str]:
    """What is wrong with how an import ended, given the rows it added to each table."""
    if isinstance(outcome, ImportReport):
        wrote = {  # the report's figures, by the table they count
            "circuits": outcome.circuits, "options": outcome.options,
            "people": outcome.people, "phones": outcome.phones,
        }  # fmt: skip
        expected = {table: rows for table, rows in wrote.items() if rows}
        return [] if delta == expected else [f"report {wrote} but the tables changed by {delta}"]
    problems = [f"refused, yet the tables changed by {delta}"] if delta else []
    last_line = data.count(b"\n") + 1
    for line, why in outcome.errors or [(None, "no reason given")]:
        if not isinstance(line, int) or not 1 <= line <= last_line or not why.strip():
            problems.append(f"error without a line of the file: {line!r} {why!r}")
        problems += [f"line {line} repeats {value!r}: {why}" for value in personal if value in why]
    return problems


def run_import(call: Callable[[Path], ImportReport], path: Path) -> ImportReport | ImportRefused:
    try:
        return call(path)
    except ImportRefused as refused:
        return refused


Start = Callable[[sessionmaker[Session], str], Callable[[Path], ImportReport]]


def import_problems(rt: Runtime, tmp_path: Path, start: Start, file: Example) -> list[str]:
    """Import one file into a fresh consultation; what went wrong, if anything."""
    data, applied, personal = file
    call = start(rt.sessions, f"fz-{secrets.token_hex(6)}")
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    before = counts(rt.engine)
    try:
        outcome = run_import(call, path)
    except Exception as crash:  # noqa: BLE001 - any other exception is the finding
        return [f"{type(crash).__name__}, not a refusal, after {applied}: {crash}"]
    after = counts(rt.engine)
    delta = {t: after[t] - before[t] for t in after if after[t] != before[t]}
    problems = outcome_problems(outcome, data, personal, delta)
    if not applied and isinstance(outcome, ImportRefused):
        problems.append(f"a good file was refused: {outcome}")
    return problems


def fuzz_importer(
    name: str, rt: Runtime, tmp_path: Path, good: st.SearchStrategy[GoodFile]
) -> None:
    seen: Counter[str] = Counter()

    @fuzz_settings(n(20, 400))
    @given(file=files(good))
    def one(file: Example) -> None:
        problems = import_problems(rt, tmp_path, STARTS[name], file)
        seen["files"] += 1
        seen["failures"] += bool(problems)
        assert not problems, (file[1], problems)

    try:
        one()
    finally:
        report(
            f"fuzz: {name} CSV ({rt.engine.dialect.name})",
            n=seen["files"], failures=seen["failures"],
        )  # fmt: skip


def _bare_consultation(sessions: sessionmaker[Session], slug: str) -> None:
    now = datetime.now(UTC)
    with sessions() as session, session.begin():
        session.add(
            ConsultationRow(
                slug=slug, name="Fuzz", opens_at=now, closes_at=now + timedelta(hours=8)
            )
        )


def _ballots(sessions: sessionmaker[Session], slug: str) -> Callable[[Path], ImportReport]:
    _bare_consultation(sessions, slug)
    return lambda path: import_ballots(sessions, slug, path)


def _registry(sessions: sessionmaker[Session], slug: str) -> Callable[[Path], ImportReport]:
    seed(sessions, slug=slug, ballots={"C1": 3, "C2": 2})
    return lambda path: import_registry(sessions, slug, path, "VE")


STARTS: dict[str, Start] = {"ballots": _ballots, "registry": _registry}


@pytest.mark.timeout(1800 if full() else 300)
def test_any_ballots_file_loads_whole_or_is_refused_with_lines_and_writes_nothing(
    rt: Runtime, tmp_path: Path
) -> None:
    fuzz_importer("ballots", rt, tmp_path, ballot_files())


@pytest.mark.timeout(1800 if full() else 300)
def test_any_registry_file_loads_whole_or_is_refused_with_lines_and_writes_nothing(
    rt: Runtime, tmp_path: Path
) -> None:
    fuzz_importer("registry", rt, tmp_path, registry_files())


# A NUL in a title is legal CSV and UTF-8, but PostgreSQL cannot store it: the importers refuse
# it on every database, by line, rather than load it on one and crash on the other.
CONTROL_IN_A_TITLE: Example = (
    b"circuit_code,circuit_name,option,title\r\nC1,Uno,1,Agua\r\nC1,Uno,2,Luz\x00\r\n",
    ["a NUL character"],
    [],
)
# Columns in the wrong order, an operator's usual slip: the phone lands in circuit_code.
PHONE_IN_THE_CIRCUIT: Example = (
    b"national_id,circuit_code,birth_date,phones\r\nV-12.345.678,0414-123.45.67,1990-01-01,C1\r\n",
    ["swap two cells"],
    ["V-12.345.678", "0414-123.45.67"],
)


@pytest.mark.parametrize(
    ("importer", "file"),
    [
        pytest.param("ballots", CONTROL_IN_A_TITLE, id="a control character in a title"),
        pytest.param("registry", PHONE_IN_THE_CIRCUIT, id="a phone in the circuit column"),
    ],
)
def test_files_operators_do_write_are_loaded_or_refused_cleanly(
    rt: Runtime, tmp_path: Path, importer: str, file: Example
) -> None:
    problems = import_problems(rt, tmp_path, STARTS[importer], file)
    report(f"fuzz: {importer} CSV, {file[1] or 'legal'} file", n=1, failures=len(problems))
    assert not problems, problems
