"""The USSD menu: the screens a person walks, each one fitting, and no vote without a Yes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ussd.menu import Context, Say, State, Voter, ballot_pages, screen, start, step
from messages.catalogue import render
from messages.gsm import to_ascii

RECEIPT = "K7Q-2M9-XAB"
EARLIER = "AB3-CD4-EF5"  # a receipt from a vote cast before this session
NAME = "Presupuesto Participativo 2025"
LONG_NAME = "Consulta Pública Nacional de Proyectos Comunales de Año 2026"  # 60, accented

LONG = "Rehabilitación integral del ambulatorio, la cancha y la casa comunal"


def _long_titled(count: int) -> dict[int, str]:
    return {n: f"{LONG} número {n}" for n in range(1, count + 1)}


BALLOTS = {
    10: {1: "Cancha techada", 2: "Alumbrado público", 3: "Parque infantil"},
    20: {1: "Dispensario", 2: "Biblioteca", 3: "Transporte", 4: "Escuela"},
    70: _long_titled(7),
    90: _long_titled(9),
}
ANA = Voter(1, "V12345678", circuit_id=10)
BETO = Voter(2, "V20111222", circuit_id=20)
MINOR = Voter(3, "V30444555", circuit_id=20, age_ok=False)
SEVEN = Voter(7, "V7000000", circuit_id=70)
NINE = Voter(9, "V9000000", circuit_id=90)


def phone(*voters: Voter, **changes: object) -> Context:
    """The context of a phone registered to `voters` (Ana alone by default)."""
    base = Context(name=NAME, voters=voters or (ANA,), ballots=BALLOTS, consultation_id=1)
    return replace(base, **changes)  # type: ignore[arg-type]


SHARED = phone(ANA, BETO)
STRANGER = phone(voters=())


@dataclass
class FakeLedger:
    """Records every cast and answers with one fixed receipt; earlier votes are set per person."""

    standing: dict[int, str] = field(default_factory=dict)
    casts: list[tuple[int, int]] = field(default_factory=list)

    def standing_receipt(self, person_id: int) -> str | None:
        return self.standing.get(person_id)

    def cast(self, voter: Voter, option: int) -> str:
        self.casts.append((voter.person_id, option))
        return RECEIPT

    def fingerprint(self, national_id: str) -> str:
        return national_id  # the menu only compares; the real one is a keyed hash


def say_in(locale: str) -> Say:
    def say(key: str, **params: object) -> str:
        return render(key, locale, **params)

    return say


def walk(
    context: Context,
    inputs: Sequence[str],
    locale: str = "es",
    ledger: FakeLedger | None = None,
) -> tuple[State, list[str], FakeLedger]:
    """Dial, then type each input; the screens are the first one and one after each input."""
    ledger = FakeLedger() if ledger is None else ledger
    state = start(context, locale)
    screens = [screen(state, context, say_in(state.locale))[0]]
    for entry in inputs:
        state = step(state, context, entry, say_in(state.locale), ledger)
        screens.append(screen(state, context, say_in(state.locale))[0])
    return state, screens, ledger


def es(key: str, **params: object) -> str:
    return render(key, "es", **params)


def assert_fits(text: str) -> None:
    """Plain ASCII within the 160 characters aggregators advise for a USSD screen."""
    assert text.isascii(), text
    assert len(text) <= 160, f"{len(text)} characters: {text}"


def pages_of(voter: Voter, locale: str = "es") -> list[str]:
    return ballot_pages(phone(voter), voter, say_in(locale))


# -- how a session ends -----------------------------------------------------------------------

ENDINGS = [
    pytest.param(
        phone(), ["1", "2", "1"], {}, "ussd_voted", RECEIPT, [(1, 2)],
        id="a one person phone votes with 1 then the option then 1",
    ),
    pytest.param(
        SHARED, ["1", "V-20.111.222", "4", "1"], {}, "ussd_voted", RECEIPT, [(2, 4)],
        id="a shared phone votes on the ballot of the ID typed",
    ),
    pytest.param(
        phone(require_id=True), ["1", "12.345.678", "3", "1"], {}, "ussd_voted", RECEIPT,
        [(1, 3)], id="a consultation that requires the ID votes once it is typed",
    ),
    pytest.param(
        SHARED, ["1", "V1", "V99999999", "nonsense"], {}, "ussd_too_many_tries", "", [],
        id="a wrong ID three times ends the session",
    ),
    pytest.param(
        SHARED, ["1", "V1", "V2", "v20111222", "1", "1"], {}, "ussd_voted", RECEIPT, [(2, 1)],
        id="two wrong IDs and then the right one still vote",
    ),
    pytest.param(
        STRANGER, ["1"], {}, "ussd_not_registered", NAME, [],
        id="an unregistered phone is told so when it tries to vote",
    ),
    pytest.param(
        STRANGER, ["2"], {}, "ussd_not_registered", NAME, [],
        id="an unregistered phone is told so when it checks its vote",
    ),
    pytest.param(
        phone(MINOR), ["1"], {}, "ussd_age", NAME, [],
        id="a voter outside the allowed age is told so",
    ),
    pytest.param(
        phone(), ["1"], {1: EARLIER}, "ussd_already_voted", EARLIER, [],
        id="a voter who already voted gets their receipt under the first vote policy",
    ),
    pytest.param(
        phone(revote_last=True), ["1", "3", "1"], {1: EARLIER}, "ussd_voted", RECEIPT,
        [(1, 3)], id="a voter who already voted votes again under the last vote policy",
    ),
    pytest.param(
        phone(), ["2"], {1: EARLIER}, "ussd_status_voted", EARLIER, [],
        id="checking shows the receipt of a voter who voted",
    ),
    pytest.param(
        phone(), ["2"], {}, "ussd_status_not_voted", "", [],
        id="checking tells a voter who has not voted",
    ),
    pytest.param(
        SHARED, ["2", "V-20.111.222"], {2: EARLIER}, "ussd_status_voted", EARLIER, [],
        id="checking on a shared phone shows the receipt of the ID typed",
    ),
    pytest.param(
        phone(), ["0"], {}, "ussd_goodbye", "", [],
        id="0 at the main menu says goodbye",
    ),
    pytest.param(
        phone(), ["1", "00", "0"], {}, "ussd_goodbye", "", [],
        id="0 at the main menu after leaving the ballot says goodbye",
    ),
    pytest.param(
        phone(closed="ussd_closed"), [], {}, "ussd_closed", NAME, [],
        id="a closed consultation ends as soon as it is dialled",
    ),
    pytest.param(
        phone(closed="ussd_not_open", opens="01/03/2026 08:00"), [], {}, "ussd_not_open",
        "01/03/2026 08:00", [], id="a consultation not open yet says when it opens",
    ),
    pytest.param(
        phone(closed="ussd_closed"), ["1", "1", "1"], {}, "ussd_ended", "", [],
        id="a closed consultation casts nothing whatever is typed",
    ),
    pytest.param(
        phone(), ["0", "1"], {}, "ussd_ended", "", [],
        id="any input after goodbye says the session ended",
    ),
    pytest.param(
        phone(), ["1", "2", "1", "1", "3", "1"], {}, "ussd_ended", "", [(1, 2)],
        id="any input after the vote says the session ended and casts nothing more",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("context", "inputs", "standing", "key", "shows", "casts"), ENDINGS)
def test_a_session_ends_with_the_right_screen(
    context: Context,
    inputs: list[str],
    standing: dict[int, str],
    key: str,
    shows: str,
    casts: list[tuple[int, int]],
) -> None:
    state, screens, ledger = walk(context, inputs, ledger=FakeLedger(standing))
    assert (state.step, state.end_key) == ("end", key)
    assert screen(state, context, say_in("es"))[1] is True
    assert shows in screens[-1]
    assert ledger.casts == casts


# -- screens while the session is open --------------------------------------------------------

OPEN = [
    pytest.param(phone(), [], "main", "Consulta " + NAME, id="the welcome names the consultation"),
    pytest.param(phone(), ["1"], "ballot", "3 Parque infantil", id="1 shows the ballot"),
    pytest.param(
        phone(), ["1", "2"], "confirm", "Confirmas tu voto por 2 Alumbrado publico?\n1 Si\n2 No",
        id="the confirmation names the option and its title in plain ascii",
    ),
    pytest.param(
        phone(), ["1", "2", "2"], "ballot", "2 Alumbrado publico",
        id="2 at the confirmation goes back to the ballot",
    ),
    pytest.param(
        phone(), ["1", "2", "0"], "ballot", "1 Cancha techada",
        id="0 at the confirmation goes back to the ballot",
    ),
    pytest.param(
        phone(), ["1", "00"], "main", "1 Votar", id="00 returns to the main menu from the ballot"
    ),
    pytest.param(
        phone(), ["1", "2", "00"], "main", "1 Votar",
        id="00 returns to the main menu from the confirmation",
    ),
    pytest.param(
        phone(), ["1", "0"], "main", "1 Votar", id="0 on the first ballot page returns to the menu"
    ),
    pytest.param(SHARED, ["1"], "id", es("ussd_ask_id"), id="a shared phone asks the ID"),
    pytest.param(
        SHARED, ["1", "00"], "main", "1 Votar",
        id="00 on the ID screen returns to the menu and is not a wrong ID",
    ),
    pytest.param(
        phone(require_id=True), ["1"], "id", es("ussd_ask_id"),
        id="a consultation that requires the ID asks it even of a phone with one person",
    ),
    pytest.param(
        SHARED, ["1", "V20111222"], "ballot", "4 Escuela",
        id="a shared phone shows the ballot of the circuit of the ID typed",
    ),
    pytest.param(
        SHARED, ["1", "V1"], "id", f"{es('ussd_wrong_id')}\n{es('ussd_ask_id')}",
        id="a wrong ID asks again with the error above",
    ),
    pytest.param(
        SHARED, ["1", "0"], "main", "1 Votar", id="0 at the ID screen returns to the menu"
    ),
    pytest.param(phone(), ["3"], "language", "2 English", id="3 shows the languages"),
    pytest.param(
        phone(), ["3", "2"], "main", render("ussd_welcome", "en", name=NAME),
        id="choosing english makes the next screen english",
    ),
    pytest.param(
        phone(), ["3", "2", "1"], "ballot", "Choose your project:",
        id="after choosing english the ballot is english",
    ),
    pytest.param(
        phone(), ["3", "2", "3", "1"], "main", es("ussd_welcome", name=NAME),
        id="choosing spanish again makes the menu spanish",
    ),
    pytest.param(
        phone(), ["3", "0"], "main", es("ussd_welcome", name=NAME),
        id="0 at the languages keeps the language",
    ),
    pytest.param(
        phone(), ["1", "7", "1"], "confirm", "por 1 Cancha techada",
        id="a crafted path through an option not on the ballot stops at a confirmation",
    ),
    pytest.param(
        phone(), ["1", "03"], "confirm", "por 3 Parque infantil",
        id="a leading zero on an option is the same option",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("context", "inputs", "where", "shows"), OPEN)
def test_an_open_session_shows_the_right_screen(
    context: Context, inputs: list[str], where: str, shows: str
) -> None:
    state, screens, ledger = walk(context, inputs)
    assert state.step == where
    assert shows in screens[-1]
    assert screen(state, context, say_in(state.locale))[1] is False
    assert ledger.casts == []


@pytest.mark.parametrize(
    "typed",
    [
        pytest.param("V-20.111.222", id="the printed form"),
        pytest.param("V20111222", id="the compact form"),
        pytest.param("v20111222", id="a lower case v"),
        pytest.param("20111222", id="the bare number"),
        pytest.param("20.111.222", id="the dotted number"),
        pytest.param(" V 20 111 222 ", id="spaces inside and around"),
    ],
)
def test_a_shared_phone_accepts_the_id_written_any_way(typed: str) -> None:
    state, _, _ = walk(SHARED, ["1", typed])
    assert (state.step, state.person_id) == ("ballot", BETO.person_id)


# -- invalid input ----------------------------------------------------------------------------

BAD = [
    pytest.param("abc", id="letters"),
    pytest.param("**", id="two stars"),
    pytest.param("", id="nothing"),
    pytest.param("1" * 200, id="200 digits"),
    pytest.param("x" * 200, id="200 letters"),
    pytest.param("1*2", id="a whole path"),
    pytest.param("ñ", id="a non ascii letter"),
    pytest.param("²", id="a superscript two"),
    pytest.param("٣", id="an arabic indic three"),
    pytest.param("３", id="a fullwidth three"),
    pytest.param("7", id="an option not on the ballot"),
]
WHERE = [
    pytest.param([], id="the main menu"),
    pytest.param(["1"], id="the ballot"),
    pytest.param(["1", "2"], id="the confirmation"),
    pytest.param(["3"], id="the languages"),
]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("before", WHERE)
def test_invalid_input_keeps_the_screen_with_a_one_line_error_above(
    before: list[str], bad: str
) -> None:
    state, screens, ledger = walk(phone(), [*before, bad])
    assert screens[-1] == f"{es('ussd_invalid')}\n{screens[-2]}"
    assert state.step != "end"
    assert ledger.casts == []


@pytest.mark.parametrize(
    "entry",
    [*"023456789", "00", "01", "11", "1*1", "Si", "yes", "１"],
    ids=lambda e: f"typing {e!r} is not yes",
)
def test_nothing_but_1_at_the_confirmation_casts_a_vote(entry: str) -> None:
    state, _, ledger = walk(phone(), ["1", "2", entry])
    assert state.step in {"ballot", "main", "confirm"}
    assert ledger.casts == []


@pytest.mark.parametrize("bad", BAD)
def test_invalid_input_at_the_id_screen_counts_as_a_wrong_id(bad: str) -> None:
    state, screens, _ = walk(SHARED, ["1", bad])
    assert (state.step, state.tries) == ("id", 1)
    assert screens[-1] == f"{es('ussd_wrong_id')}\n{es('ussd_ask_id')}"


def test_the_error_goes_away_on_the_next_good_input() -> None:
    _, screens, _ = walk(phone(), ["x", "1"])
    assert not screens[-1].startswith(es("ussd_invalid"))


# -- a ballot over several pages --------------------------------------------------------------

PAGED = [
    pytest.param(SEVEN, locale, id=f"seven long titles in {locale}") for locale in ("es", "en")
] + [pytest.param(NINE, locale, id=f"nine long titles in {locale}") for locale in ("es", "en")]


@pytest.mark.parametrize(("voter", "locale"), PAGED)
def test_a_long_ballot_is_paged_and_every_page_fits_with_an_error_above(
    voter: Voter, locale: str
) -> None:
    pages = pages_of(voter, locale)
    assert len(pages) >= 3
    shown = [line.split(" ")[0] for page in pages for line in page.splitlines()[1:-1]]
    assert shown == [str(n) for n in BALLOTS[voter.circuit_id]]
    for page in pages:
        for notice in ("ussd_invalid", "ussd_resumed"):
            assert_fits(f"{render(notice, locale)}\n{page}")
    assert all(page.endswith(render("ussd_nav_more", locale)) for page in pages[:-1])
    assert pages[-1].endswith(render("ussd_nav_last", locale))


@pytest.mark.parametrize("voter", [pytest.param(SEVEN, id="seven"), pytest.param(NINE, id="nine")])
def test_9_pages_forward_and_0_back(voter: Voter) -> None:
    pages = pages_of(voter)
    state, screens, _ = walk(phone(voter), ["1", "9", "9", "0"])
    assert screens[1:] == [pages[0], pages[1], pages[2], pages[1]]
    assert (state.step, state.page) == ("ballot", 1)


def test_on_a_ballot_of_nine_9_is_more_until_the_last_page_and_option_9_there() -> None:
    pages = pages_of(NINE)
    forward = ["9"] * (len(pages) - 1)
    state, screens, ledger = walk(phone(NINE), ["1", *forward, "9", "1"])
    assert screens[1 : len(pages) + 1] == pages
    assert "por 9 Rehabilitacion integral" in screens[-2]
    assert ledger.casts == [(NINE.person_id, 9)]


def test_9_on_the_last_page_of_seven_is_invalid() -> None:
    pages = pages_of(SEVEN)
    state, screens, _ = walk(phone(SEVEN), ["1", *["9"] * len(pages)])
    assert (state.step, state.page) == ("ballot", len(pages) - 1)
    assert screens[-1] == f"{es('ussd_invalid')}\n{pages[-1]}"


def test_an_option_on_another_page_may_be_typed_and_the_confirmation_names_it() -> None:
    state, screens, _ = walk(phone(SEVEN), ["1", "7"])
    assert (state.step, state.option) == ("confirm", 7)
    assert "por 7 Rehabilitacion integral" in screens[-1]


def test_a_long_title_is_cut_to_one_line_with_an_ellipsis() -> None:
    lines = pages_of(SEVEN)[0].splitlines()
    assert lines[1].startswith("1 Rehabilitacion integral del")
    assert lines[1].endswith("...")
    assert len(lines[1]) <= len("1 ") + 40


def test_2_at_the_confirmation_returns_to_the_page_it_came_from() -> None:
    pages = pages_of(NINE)
    state, screens, _ = walk(phone(NINE), ["1", "9", "3", "2"])
    assert screens[-1] == pages[1]
    assert (state.step, state.option) == ("ballot", None)


# -- names and titles that anyone typed -------------------------------------------------------

NAMED = [
    pytest.param(phone(name=LONG_NAME), [], id="the welcome"),
    pytest.param(phone(name=LONG_NAME, closed="ussd_closed"), [], id="a closed consultation"),
    pytest.param(
        phone(name=LONG_NAME, closed="ussd_not_open", opens="01/03/2026 08:00"), [],
        id="a consultation not open yet",
    ),
    pytest.param(phone(name=LONG_NAME, voters=()), ["1"], id="an unregistered phone"),
    pytest.param(phone(MINOR, name=LONG_NAME), ["1"], id="a voter outside the age"),
]  # fmt: skip


@pytest.mark.parametrize("locale", ["es", "en"])
@pytest.mark.parametrize(("context", "inputs"), NAMED)
def test_a_sixty_character_name_is_cut_so_the_screen_still_fits(
    context: Context, inputs: list[str], locale: str
) -> None:
    _, screens, _ = walk(context, inputs, locale)
    assert "Consulta Publica Nacional" in screens[-1]
    assert_fits(screens[-1])


def test_accents_and_line_breaks_in_a_title_become_one_line_of_ascii() -> None:
    voter = Voter(5, "V5555555", circuit_id=5)
    context = phone(voter, ballots={5: {1: "Pavimentación\nde la calle Ñ", 2: "Straße…"}})
    _, screens, _ = walk(context, ["1"])
    assert "\n1 Pavimentacion de la calle N\n2 Strasse...\n" in screens[-1]


# -- properties over random menus and random thumbs -------------------------------------------

IDS = ("V12345678", "V20111222", "V9876543")
TYPED_IDS = [*IDS, "V-20.111.222", "9.876.543"]
RANDOM = "<random text>"
KEYS = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "00", "1", "2", RANDOM, RANDOM]
SPANISH_TITLES = [
    "Pavimentación de la calle Ñ",
    "Construcción del acueducto comunal y rehabilitación de la escuela",
    "Ampliación del módulo de atención médica integral ¿sí o no? ¡Ya!",
]

titles = st.one_of(st.text(max_size=80), st.sampled_from(SPANISH_TITLES))
ballots = st.lists(titles, min_size=2, max_size=9).map(
    lambda found: dict(enumerate(found, start=1))
)


def _typed(key: str) -> st.SearchStrategy[str]:
    return st.text(max_size=30) if key == RANDOM else st.just(key)


entries = st.sampled_from([*KEYS, *TYPED_IDS]).flatmap(_typed)
answers = st.sampled_from(["1", "1", "1", *KEYS]).flatmap(_typed)  # at the confirmation
# Uniform thumbs seldom get past the main menu (2 in 300 reached a confirmation), so half the
# chunks are a try at voting: 1, an ID, some pages forward, an option, then one or two answers.
attempts = st.tuples(
    st.sampled_from(TYPED_IDS),
    st.integers(min_value=0, max_value=4),
    st.sampled_from("123456789"),
    st.lists(answers, min_size=1, max_size=2),
).map(lambda a: ["1", a[0], *["9"] * a[1], a[2], *a[3]])
thumbs = st.lists(st.one_of(entries.map(lambda e: [e]), attempts), max_size=8).map(
    lambda chunks: [entry for chunk in chunks for entry in chunk]
)
locales = st.sampled_from(["es", "en"])


@st.composite
def contexts(draw: st.DrawFn) -> Context:
    count = draw(st.integers(min_value=1, max_value=3))
    voters = tuple(
        Voter(
            n + 1,
            IDS[n],
            draw(st.sampled_from([1, 2, 3])),
            draw(st.sampled_from([True] * 3 + [False])),
        )
        for n in range(count)
    )
    return Context(
        name=draw(st.text(max_size=60)),
        closed=draw(st.sampled_from([None] * 5 + ["ussd_closed", "ussd_not_open"])),
        opens="01/03/2026 08:00",
        require_id=draw(st.booleans()),
        revote_last=draw(st.booleans()),
        voters=voters,
        ballots={circuit: draw(ballots) for circuit in (1, 2, 3)},
        consultation_id=1,
    )


ledgers = st.sampled_from([None, 1, 2, 3]).map(
    lambda voted: FakeLedger({} if voted is None else {voted: EARLIER})
)


@settings(max_examples=300, deadline=None)
@given(context=contexts(), inputs=thumbs, locale=locales)
def test_random_thumbs_never_crash_and_every_screen_fits(
    context: Context, inputs: list[str], locale: str
) -> None:
    _, screens, _ = walk(context, inputs, locale)
    for text in screens:
        assert_fits(text)


@settings(max_examples=300, deadline=None)
@given(
    context=contexts(),
    inputs=thumbs,
    locale=locales,
    ledger=ledgers,
)
def test_no_vote_is_cast_without_a_yes_on_its_confirmation(
    context: Context, inputs: list[str], locale: str, ledger: FakeLedger
) -> None:
    state = start(context, locale)
    for entry in inputs:
        shown, _ = screen(state, context, say_in(state.locale))
        before, earlier = state, len(ledger.casts)
        state = step(state, context, entry, say_in(state.locale), ledger)
        for person_id, option in ledger.casts[earlier:]:
            assert entry == "1"
            assert (before.step, before.option, before.person_id) == ("confirm", option, person_id)
            title = context.ballots[_voter(context, person_id).circuit_id][option]
            assert _confirms(shown, before.locale, option, title), shown
    assert len(ledger.casts) <= 1
    for person_id, _ in ledger.casts:
        voter = _voter(context, person_id)
        assert voter.age_ok
        assert context.closed is None
        assert context.revote_last or person_id not in ledger.standing


def _voter(context: Context, person_id: int) -> Voter:
    return next(v for v in context.voters if v.person_id == person_id)


def _confirms(shown: str, locale: str, option: int, title: str) -> bool:
    """Whether `shown` ends with the confirmation of `option`, naming the start of `title`."""
    before, after = render("ussd_confirm", locale, option=option, title="TITLE").split("TITLE")
    if not shown.endswith(after) or before not in shown:
        return False
    named = shown[shown.rindex(before) + len(before) : len(shown) - len(after)]
    return " ".join(to_ascii(title).split()).startswith(named.removesuffix("..."))
